//! The one text of a JSON value: what a leaf commits to and what a resent event is compared
//! by. Object keys sorted by their UTF-8 bytes, no insignificant whitespace, numbers and
//! strings as serde_json writes them. Keys are sorted here, not left to the map type, so a
//! dependency turning on serde_json's `preserve_order` cannot change a commitment.

use serde_json::Value;

/// The canonical text of `text`, or why it is not JSON.
pub fn canonical(text: &str) -> Result<String, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("is not valid JSON: {error}"))?;
    let mut out = String::with_capacity(text.len());
    write(&value, &mut out);
    Ok(out)
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // Scalars have one serde_json text; writing one to a string cannot fail.
            out.push_str(&serde_json::to_string(value).unwrap_or_default());
        }
        Value::Array(items) => {
            out.push('[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (at, (key, item)) in entries.into_iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_have_one_text() {
        assert_eq!(
            canonical(" { \"b\": [1, 2.5, null], \"a\": {\"y\": \"é\\n\", \"x\": true} } ")
                .unwrap(),
            r#"{"a":{"x":true,"y":"é\n"},"b":[1,2.5,null]}"#
        );
        assert_eq!(
            canonical(r#"{"a":1,"b":2}"#).unwrap(),
            canonical(r#"{"b":2, "a":1}"#).unwrap()
        );
        assert_eq!(
            canonical("\"kirk@example.com\"").unwrap(),
            "\"kirk@example.com\""
        );
        assert_eq!(canonical("9007199254740993").unwrap(), "9007199254740993");
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        assert!(canonical("kirk").is_err());
        assert!(canonical("{\"a\":").is_err());
        assert!(canonical("").is_err());
    }
}
