//! The pipeline's model: statuses, staged entries, natural keys, the
//! commit's date window, and the per-item rules of the Validate stage.
//! Pure functions; the store reads and writes Redis around them.

use serde_json::Value;

use super::schema::Resource;

/// Separator inside natural keys (never in a JSON string unescaped).
pub const SEP: char = '\u{1f}';

/// The transaction statuses of the seed (code and `descStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Created = 1,
    Importing = 2,
    Imported = 3,
    Validating = 4,
    Validated = 5,
    Consolidating = 6,
    Done = 7,
    Invalidated = 8,
    ImportedWithErrors = 9,
    DoneWithErrors = 10,
    ImportError = 11,
}

pub const STATUSES: [Status; 11] = [
    Status::Created,
    Status::Importing,
    Status::Imported,
    Status::Validating,
    Status::Validated,
    Status::Consolidating,
    Status::Done,
    Status::Invalidated,
    Status::ImportedWithErrors,
    Status::DoneWithErrors,
    Status::ImportError,
];

impl Status {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        STATUSES.into_iter().find(|s| s.code() == code)
    }

    /// The seed's `descStatus`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Importing => "Importing",
            Self::Imported => "Imported",
            Self::Validating => "Validating",
            Self::Validated => "Validated",
            Self::Consolidating => "Consolidating",
            Self::Done => "Done",
            Self::Invalidated => "Invalidated",
            Self::ImportedWithErrors => "ImportedWithErrors",
            Self::DoneWithErrors => "DoneWithErrors",
            Self::ImportError => "ImportError",
        }
    }

    /// Finished: nothing will change it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Invalidated | Self::DoneWithErrors | Self::ImportError
        )
    }

    /// The position in the pipeline (statuses only move forward in it):
    /// 9 sits beside 5, the final ones last.
    pub fn rank(self) -> u8 {
        match self {
            Self::ImportedWithErrors => 5,
            Self::Invalidated | Self::DoneWithErrors | Self::ImportError => 7,
            other => other.code(),
        }
    }
}

/// How a batch was sent: POST creates (replaces), PUT updates (merges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Post,
    Put,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            _ => None,
        }
    }
}

/// One item after import: where it came from and its compact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub resource: Resource,
    pub op: Op,
    /// The batch (0-based, in arrival order) and the index in it.
    pub batch: u64,
    pub index: u64,
    pub item: String,
}

impl Entry {
    /// `resource\top\tbatch\tindex\titem`.
    pub fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.resource.name(),
            self.op.as_str(),
            self.batch,
            self.index,
            self.item
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut p = s.splitn(5, '\t');
        Some(Self {
            resource: Resource::parse(p.next()?)?,
            op: Op::parse(p.next()?)?,
            batch: p.next()?.parse().ok()?,
            index: p.next()?.parse().ok()?,
            item: p.next()?.to_owned(),
        })
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.item).unwrap_or(Value::Null)
    }
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// The item's period: `date`, or `startDate`..`endDate` (a missing end is open).
pub fn period(v: &Value) -> Option<(String, String)> {
    if let Some(d) = v.get("date").and_then(Value::as_str) {
        return Some((d.to_owned(), d.to_owned()));
    }
    let start = v.get("startDate").and_then(Value::as_str)?;
    let end = v
        .get("endDate")
        .and_then(Value::as_str)
        .unwrap_or("9999-12-31");
    Some((start.to_owned(), end.to_owned()))
}

fn period_key(v: &Value) -> String {
    match (v.get("date"), v.get("startDate"), v.get("endDate")) {
        (Some(Value::String(d)), _, _) => d.clone(),
        (_, Some(Value::String(s)), e) => {
            format!("{s}..{}", e.and_then(Value::as_str).unwrap_or_default())
        }
        _ => String::new(),
    }
}

/// Attributes and hierarchies are consolidated as date intervals: per
/// collaborator (and attribute name), at most one record holds on any day.
pub fn is_interval(resource: Resource) -> bool {
    matches!(resource, Resource::Attributes | Resource::Hierarchies)
}

/// The store keys of one interval series end with its intervals' start
/// dates after this prefix: `collaborator SEP name SEP` (attributes),
/// `collaborator SEP` (hierarchies).
pub fn interval_prefix(resource: Resource, v: &Value) -> String {
    let c = text(v, "collaboratorIdentification");
    match resource {
        Resource::Attributes => format!("{c}{SEP}{}{SEP}", text(v, "name")),
        _ => format!("{c}{SEP}"),
    }
}

/// The key of an item in its resource's store: `identification`,
/// `indicatorId`, the collaborator with the indicator and date (results),
/// or an interval series' prefix with the interval's start date.
pub fn store_key(resource: Resource, v: &Value) -> String {
    let c = text(v, "collaboratorIdentification");
    match resource {
        Resource::Collaborators => text(v, "identification").to_owned(),
        Resource::Indicators => text(v, "indicatorId").to_owned(),
        Resource::Attributes | Resource::Hierarchies => format!(
            "{}{}",
            interval_prefix(resource, v),
            period(v).map(|p| p.0).unwrap_or_default()
        ),
        Resource::Results => format!("{c}{SEP}{}{SEP}{}", text(v, "indicatorId"), period_key(v)),
    }
}

/// The day before and after a `YYYY-MM-DD` date (for trimming intervals).
pub fn day_before(d: &str) -> Option<String> {
    let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
    Some(d.pred_opt()?.format("%Y-%m-%d").to_string())
}

pub fn day_after(d: &str) -> Option<String> {
    let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
    Some(d.succ_opt()?.format("%Y-%m-%d").to_string())
}

/// The natural key of an item within a transaction: resource + store key,
/// except that an interval's whole period counts (two periods starting on
/// one day are two items of the transaction; consolidated, the later wins).
pub fn natural_key(resource: Resource, v: &Value) -> String {
    let key = if is_interval(resource) {
        format!("{}{}", interval_prefix(resource, v), period_key(v))
    } else {
        store_key(resource, v)
    };
    format!("{}{SEP}{key}", resource.name())
}

/// The resource and store key of a natural key.
pub fn split_natural(key: &str) -> Option<(Resource, &str)> {
    let (r, k) = key.split_once(SEP)?;
    Some((Resource::parse(r)?, k))
}

/// The identification an item is about (for errors and lookups).
pub fn identification(resource: Resource, v: &Value) -> String {
    match resource {
        Resource::Collaborators => text(v, "identification"),
        Resource::Indicators => text(v, "indicatorId"),
        _ => text(v, "collaboratorIdentification"),
    }
    .to_owned()
}

/// The commit's date window (`startDate`, `endDate`, inclusive `YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub start: Option<String>,
    pub end: Option<String>,
}

impl Window {
    /// True when an item dated with `period` falls outside (items without
    /// a date — collaborators, indicators — are always inside).
    pub fn excludes(&self, v: &Value) -> bool {
        let Some((start, end)) = period(v) else {
            return false;
        };
        self.start.as_deref().is_some_and(|ws| end.as_str() < ws)
            || self.end.as_deref().is_some_and(|we| start.as_str() > we)
    }
}

/// A `YYYY-MM-DD` date that exists.
pub fn valid_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// A per-item failure of the Validate stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: String) -> Option<ItemError> {
    Some(ItemError {
        path: path.to_owned(),
        message,
    })
}

/// What the Validate stage knows about an item's surroundings.
pub trait Lookup {
    /// `resource` has `key` (store key) in this transaction or the store.
    fn exists(&self, resource: Resource, key: &str) -> bool;
    /// This transaction received items of `resource`.
    fn sent(&self, resource: Resource) -> bool;
    /// The item is a PUT of a key the store does not have.
    fn update_of_unknown(&self, entry: &Entry) -> bool;
    /// The hierarchy's parent chain leads back to the item.
    fn cycle(&self, entry: &Entry) -> bool;
}

/// The cross-item and cross-resource rules of one staged item.
pub fn validate(entry: &Entry, lookup: &dyn Lookup) -> Option<ItemError> {
    let v = entry.value();
    if lookup.update_of_unknown(entry) {
        return err(
            "",
            format!(
                "update of an unknown {} item: send it with POST first",
                entry.resource.name()
            ),
        );
    }
    for field in ["birthDate", "admissionDate", "date", "startDate", "endDate"] {
        if let Some(d) = v.get(field).and_then(Value::as_str)
            && !valid_date(d)
        {
            return err(&format!("/{field}"), format!("{d} is not a date"));
        }
    }
    let collaborator = text(&v, "collaboratorIdentification");
    match entry.resource {
        Resource::Collaborators | Resource::Indicators => None,
        Resource::Results => {
            if !lookup.exists(Resource::Collaborators, collaborator) {
                return err(
                    "/collaboratorIdentification",
                    format!("collaborator {collaborator} does not exist"),
                );
            }
            let indicator = text(&v, "indicatorId");
            if !lookup.exists(Resource::Indicators, indicator) {
                return err(
                    "/indicatorId",
                    format!("indicator {indicator} does not exist"),
                );
            }
            None
        }
        Resource::Attributes | Resource::Hierarchies => {
            let other = if entry.resource == Resource::Attributes {
                Resource::Hierarchies
            } else {
                Resource::Attributes
            };
            if !lookup.sent(other) {
                return err(
                    "",
                    format!(
                        "{} must be sent in the same transaction as {}",
                        entry.resource.name(),
                        other.name()
                    ),
                );
            }
            match (v.get("date"), v.get("startDate"), v.get("endDate")) {
                (Some(_), None, None) => {}
                (None, Some(Value::String(s)), Some(Value::String(e))) => {
                    if s > e {
                        return err("/endDate", format!("endDate {e} is before startDate {s}"));
                    }
                }
                _ => {
                    return err(
                        "",
                        "either date, or startDate and endDate, is required".into(),
                    );
                }
            }
            if !lookup.exists(Resource::Collaborators, collaborator) {
                return err(
                    "/collaboratorIdentification",
                    format!("collaborator {collaborator} does not exist"),
                );
            }
            if entry.resource == Resource::Hierarchies {
                let weight = v.get("levelWeight").and_then(Value::as_i64).unwrap_or(1);
                let parent = text(&v, "parentIdentification");
                if parent.is_empty() {
                    if weight > 1 {
                        return err(
                            "/parentIdentification",
                            format!("levelWeight {weight} needs a parentIdentification"),
                        );
                    }
                } else if parent == collaborator || lookup.cycle(entry) {
                    return err(
                        "/parentIdentification",
                        format!("the parents of {collaborator} form a cycle"),
                    );
                } else if !lookup.exists(Resource::Collaborators, parent) {
                    return err(
                        "/parentIdentification",
                        format!("parent {parent} does not exist"),
                    );
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_have_the_seeds_codes_and_names() {
        assert_eq!(Status::from_code(1).unwrap().name(), "Created");
        assert_eq!(Status::from_code(9).unwrap().name(), "ImportedWithErrors");
        assert_eq!(Status::from_code(11).unwrap(), Status::ImportError);
        assert!(Status::from_code(12).is_none());
        assert!(Status::Done.is_final() && !Status::Validated.is_final());
        assert!(Status::ImportedWithErrors.rank() < Status::Consolidating.rank());
    }

    #[test]
    fn entries_round_trip_and_keys_are_natural() {
        let e = Entry {
            resource: Resource::Results,
            op: Op::Put,
            batch: 3,
            index: 7,
            item: r#"{"a":"x\ty"}"#.into(),
        };
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        let v =
            json!({"collaboratorIdentification": "1", "indicatorId": "i", "date": "2000-01-02"});
        assert_eq!(
            natural_key(Resource::Results, &v),
            format!("results{SEP}1{SEP}i{SEP}2000-01-02")
        );
        let k = natural_key(Resource::Collaborators, &json!({"identification": "12"}));
        assert_eq!(split_natural(&k), Some((Resource::Collaborators, "12")));
        let h = json!({"collaboratorIdentification": "1", "startDate": "2000-01-01", "endDate": "2000-02-01"});
        assert_eq!(
            store_key(Resource::Hierarchies, &h),
            format!("1{SEP}2000-01-01")
        );
        let a = json!({"collaboratorIdentification": "1", "name": "area", "date": "2000-03-01"});
        assert_eq!(
            store_key(Resource::Attributes, &a),
            format!("1{SEP}area{SEP}2000-03-01")
        );
        assert_eq!(day_before("2000-03-01").unwrap(), "2000-02-29");
        assert_eq!(day_after("1999-12-31").unwrap(), "2000-01-01");
    }

    #[test]
    fn the_window_skips_what_lies_outside() {
        let w = Window {
            start: Some("2000-01-01".into()),
            end: Some("2000-01-20".into()),
        };
        assert!(!w.excludes(&json!({"identification": "1"})));
        assert!(!w.excludes(&json!({"date": "2000-01-20"})));
        assert!(w.excludes(&json!({"date": "2000-01-21"})));
        assert!(w.excludes(&json!({"date": "1999-12-31"})));
        assert!(!w.excludes(&json!({"startDate": "1999-01-01", "endDate": "2000-01-01"})));
        assert!(w.excludes(&json!({"startDate": "1999-01-01", "endDate": "1999-12-31"})));
        assert!(!Window::default().excludes(&json!({"date": "1900-01-01"})));
    }

    struct L;
    impl Lookup for L {
        fn exists(&self, r: Resource, k: &str) -> bool {
            (r == Resource::Collaborators && (k == "1" || k == "2")) || k == "i"
        }
        fn sent(&self, r: Resource) -> bool {
            r != Resource::Attributes
        }
        fn update_of_unknown(&self, e: &Entry) -> bool {
            e.op == Op::Put
        }
        fn cycle(&self, _: &Entry) -> bool {
            false
        }
    }

    fn entry(resource: Resource, op: Op, v: Value) -> Entry {
        Entry {
            resource,
            op,
            batch: 0,
            index: 0,
            item: v.to_string(),
        }
    }

    #[test]
    fn cross_resource_rules() {
        let r = |v: Value| validate(&entry(Resource::Results, Op::Post, v), &L);
        assert_eq!(
            r(json!({"collaboratorIdentification": "1", "indicatorId": "i", "date": "2000-01-01"})),
            None
        );
        let e =
            r(json!({"collaboratorIdentification": "9", "indicatorId": "i", "date": "2000-01-01"}))
                .unwrap();
        assert_eq!(e.path, "/collaboratorIdentification");
        let e =
            r(json!({"collaboratorIdentification": "1", "indicatorId": "x", "date": "2000-01-01"}))
                .unwrap();
        assert_eq!(e.message, "indicator x does not exist");
        let e =
            r(json!({"collaboratorIdentification": "1", "indicatorId": "i", "date": "2000-02-30"}))
                .unwrap();
        assert_eq!(e.path, "/date");
        let put = validate(&entry(Resource::Collaborators, Op::Put, json!({})), &L).unwrap();
        assert!(
            put.message
                .starts_with("update of an unknown collaborators")
        );
        // Hierarchies need attributes in the same transaction (L: none sent).
        let h = |v: Value| validate(&entry(Resource::Hierarchies, Op::Post, v), &L);
        let e =
            h(json!({"collaboratorIdentification": "1", "levelWeight": 1, "date": "2000-01-01"}))
                .unwrap();
        assert_eq!(
            e.message,
            "hierarchies must be sent in the same transaction as attributes"
        );
        let a = validate(
            &entry(
                Resource::Attributes,
                Op::Post,
                json!({"collaboratorIdentification": "1", "date": "2000-01-01"}),
            ),
            &L,
        );
        assert_eq!(a, None);
    }

    struct Both;
    impl Lookup for Both {
        fn exists(&self, r: Resource, k: &str) -> bool {
            r == Resource::Collaborators && (k == "1" || k == "2")
        }
        fn sent(&self, _: Resource) -> bool {
            true
        }
        fn update_of_unknown(&self, _: &Entry) -> bool {
            false
        }
        fn cycle(&self, e: &Entry) -> bool {
            e.item.contains("\"cyc\"")
        }
    }

    #[test]
    fn hierarchy_rules() {
        let h = |v: Value| validate(&entry(Resource::Hierarchies, Op::Post, v), &Both);
        assert_eq!(
            h(json!({"collaboratorIdentification": "1", "levelWeight": 1, "date": "2000-01-01"})),
            None
        );
        assert_eq!(
            h(
                json!({"collaboratorIdentification": "2", "levelWeight": 2, "parentIdentification": "1", "startDate": "2000-01-01", "endDate": "2000-02-01"})
            ),
            None
        );
        let msg = |v: Value| h(v).unwrap().message;
        assert_eq!(
            msg(json!({"collaboratorIdentification": "2", "levelWeight": 2, "date": "2000-01-01"})),
            "levelWeight 2 needs a parentIdentification"
        );
        assert_eq!(
            msg(
                json!({"collaboratorIdentification": "2", "levelWeight": 2, "parentIdentification": "7", "date": "2000-01-01"})
            ),
            "parent 7 does not exist"
        );
        assert_eq!(
            msg(
                json!({"collaboratorIdentification": "2", "levelWeight": 2, "parentIdentification": "2", "date": "2000-01-01"})
            ),
            "the parents of 2 form a cycle"
        );
        assert_eq!(
            msg(
                json!({"collaboratorIdentification": "2", "levelWeight": 2, "parentIdentification": "1", "date": "2000-01-01", "x": "cyc"})
            ),
            "the parents of 2 form a cycle"
        );
        assert_eq!(
            msg(json!({"collaboratorIdentification": "2", "levelWeight": 1})),
            "either date, or startDate and endDate, is required"
        );
        assert_eq!(
            msg(
                json!({"collaboratorIdentification": "2", "levelWeight": 1, "startDate": "2000-02-01", "endDate": "2000-01-01"})
            ),
            "endDate 2000-01-01 is before startDate 2000-02-01"
        );
    }
}
