//! JSON kept as the client wrote it: compact text with the client's key
//! order (what `JSON.stringify` of the parsed body prints, which the seed's
//! answers and error messages echo), split into array items and object
//! members, and objects merged member by member. Every function here takes
//! text that `serde_json` has already accepted as JSON.

/// The text without whitespace outside strings.
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The top-level parts of a compact array or object (between its outer
/// brackets, split at the commas of depth 1).
fn parts(compact: &str) -> Vec<&str> {
    let inner = &compact[1..compact.len().saturating_sub(1).max(1)];
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in inner.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        out.push(&inner[start..]);
    }
    out
}

/// The items of a compact JSON array, each as compact text.
pub fn array_items(compact: &str) -> Vec<&str> {
    parts(compact)
}

/// One member of a compact object: the decoded name, and the raw `"name"`
/// and value texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    pub name: String,
    pub raw_name: &'a str,
    pub value: &'a str,
}

/// The members of a compact JSON object, in the client's order.
pub fn members(compact: &str) -> Vec<Member<'_>> {
    parts(compact)
        .into_iter()
        .filter_map(|p| {
            // The name is a string: its closing quote is the first `":` not escaped.
            let mut escaped = false;
            let end = p.bytes().enumerate().skip(1).find_map(|(i, b)| {
                if escaped {
                    escaped = false;
                    None
                } else if b == b'\\' {
                    escaped = true;
                    None
                } else {
                    (b == b'"').then_some(i)
                }
            })?;
            let raw_name = &p[..=end];
            let value = p[end + 1..].strip_prefix(':')?;
            let name = serde_json::from_str::<String>(raw_name).ok()?;
            Some(Member {
                name,
                raw_name,
                value,
            })
        })
        .collect()
}

/// `base` with the members of `over` laid over it: a member present in
/// both keeps its place in `base` and takes the value of `over`; the others
/// of `over` follow in their order. Both are compact objects.
pub fn merge(base: &str, over: &str) -> String {
    let mut out: Vec<(String, String, String)> = members(base)
        .into_iter()
        .map(|m| (m.name, m.raw_name.to_owned(), m.value.to_owned()))
        .collect();
    for m in members(over) {
        match out.iter_mut().find(|(n, _, _)| *n == m.name) {
            Some(slot) => slot.2 = m.value.to_owned(),
            None => out.push((m.name, m.raw_name.to_owned(), m.value.to_owned())),
        }
    }
    object(out.iter().map(|(_, n, v)| (n.as_str(), v.as_str())))
}

/// A compact object of raw `"name"` and value texts.
pub fn object<'a>(members: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(n);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn compact_keeps_strings_and_order() {
        let t = "[ {\n \"b\": \"x y\\\" ,}\" , \"a\" : [1, {\"c\": null}] } , 2 ]";
        let c = compact(t);
        assert_eq!(c, r#"[{"b":"x y\" ,}","a":[1,{"c":null}]},2]"#);
        let items = array_items(&c);
        assert_eq!(items, vec![r#"{"b":"x y\" ,}","a":[1,{"c":null}]}"#, "2"]);
        let m = members(items[0]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "b");
        assert_eq!(m[0].value, r#""x y\" ,}""#);
        assert_eq!(m[1].raw_name, r#""a""#);
        assert!(array_items("[]").is_empty());
        assert!(members("{}").is_empty());
        let esc = members(r#"{"a\"b":1}"#);
        assert_eq!(esc[0].name, "a\"b");
    }

    #[test]
    fn merge_keeps_base_order_and_appends() {
        assert_eq!(
            merge(r#"{"a":1,"b":2}"#, r#"{"c":3,"b":{"x":1}}"#),
            r#"{"a":1,"b":{"x":1},"c":3}"#
        );
    }
}
