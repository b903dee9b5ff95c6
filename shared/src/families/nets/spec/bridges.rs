//! Bridges: `{from, to}` between two places inserts a transition (a merge);
//! between two named transitions it inserts a place (`bridge-<i>`).

use serde_json::Value;

use super::parse::required_str;
use super::subnets::Subnets;
use super::transitions::{Names, UserTransition};
use super::{SpecError, err};

/// A transition a place → place bridge inserts: (from place, to place).
pub(super) struct Bridge {
    pub from: String,
    pub to: String,
}

/// Apply the `bridges` list: transition → transition bridges edit `user`;
/// place → place bridges are returned.
pub(super) fn apply(
    v: Option<&Value>,
    names: &Names,
    user: &mut [UserTransition],
    subnets: &Subnets,
) -> Result<Vec<Bridge>, SpecError> {
    let bs = match v {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(bs)) => bs,
        Some(_) => return err("bridges", "must be a list"),
    };
    let mut out = vec![];
    for (i, bv) in bs.iter().enumerate() {
        let at = format!("bridges[{i}]");
        let Value::Object(bo) = bv else {
            return err(at, "must be an object {from, to}");
        };
        let from = required_str(bo, "from", &at)?;
        let to = required_str(bo, "to", &at)?;
        match (names.get(from), names.get(to)) {
            (Some(&ft), Some(&tt)) => {
                let place = format!("bridge-{i}");
                user[ft].outputs.push(place.clone());
                user[tt].inputs.push(place);
            }
            (None, None) => out.push(Bridge {
                from: subnets.resolve(from, &format!("{at}.from"), true)?,
                to: subnets.resolve(to, &format!("{at}.to"), false)?,
            }),
            _ => return err(at, "a bridge joins two places or two named transitions"),
        }
    }
    Ok(out)
}
