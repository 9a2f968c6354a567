//! List paging as AIP-158 and AIP-132 describe it: page sizes, one-field `order_by`, and
//! opaque keyset page tokens.
//!
//! A page token holds the sort value and id of the last row served, so the next page
//! starts strictly after it: rows inserted meanwhile never shift or repeat a page, as they
//! would with offsets. It also holds a fingerprint of the query, so a token cannot be
//! replayed with another filter or order and silently skip rows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FieldViolation;

pub const DEFAULT_PAGE_SIZE: u64 = 30;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// 0 means the default; larger than the maximum is coerced to it, as AIP-158 asks.
pub fn page_size(value: i32) -> Result<u64, FieldViolation> {
    match u64::try_from(value) {
        Err(_) => Err(FieldViolation::new("page_size", "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

/// A list's order: one sort key, ascending or descending. The list breaks ties by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Order<K> {
    pub key: K,
    pub descending: bool,
}

impl<K: Copy + Default> Order<K> {
    /// Parses an `order_by` of one field, `field [asc|desc]`, against the list's
    /// `(name, key)` table; an empty value is the list's default order (`K::default()`
    /// ascending). `known` lists the names for the error message.
    pub fn parse(value: &str, keys: &[(&str, K)], known: &str) -> Result<Self, FieldViolation> {
        let mut words = value.split_whitespace();
        let Some(field) = words.next() else {
            return Ok(Order::default());
        };
        let lower = field.to_ascii_lowercase();
        let Some(key) = keys
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, key)| *key)
        else {
            return Err(FieldViolation::new(
                "order_by",
                format!("cannot order by '{field}'; use {known}"),
            ));
        };
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(FieldViolation::new(
                    "order_by",
                    format!("expected 'asc' or 'desc' after '{field}', found '{other}'"),
                ));
            }
        };
        if let Some(extra) = words.next() {
            return Err(FieldViolation::new(
                "order_by",
                format!("unexpected '{extra}': order by one field only"),
            ));
        }
        Ok(Order { key, descending })
    }
}

/// Where the previous page ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Text sort value (an e-mail key, a status, an id).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "t")]
    pub text: Option<String>,
    /// Numeric sort value (times, counters).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "n")]
    pub number: Option<i64>,
    /// Tie-breaker: the id of the last row.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "i")]
    pub id: Option<String>,
    /// Fingerprint of the query the cursor belongs to.
    #[serde(rename = "q")]
    pub query: String,
}

/// A short digest of everything that shapes a list's rows (filter, order, flags), which a
/// page token must be used with unchanged.
pub fn query_fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hasher.update([0]);
    }
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..9])
}

impl Cursor {
    pub fn encode(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a `page_token` and checks it belongs to this query; an empty token is the
    /// first page.
    pub fn decode(token: &str, fingerprint: &str) -> Result<Option<Cursor>, FieldViolation> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            FieldViolation::new(
                "page_token",
                "is not a token this list returned; start again without it",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.query != fingerprint {
            return Err(FieldViolation::new(
                "page_token",
                "belongs to a different filter, order or show_deleted; keep them unchanged while paging",
            ));
        }
        Ok(Some(cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    enum Key {
        #[default]
        Id,
        Name,
    }

    const KEYS: &[(&str, Key)] = &[("id", Key::Id), ("name", Key::Name)];

    #[test]
    fn order_by_parses_one_field_and_a_direction() {
        assert_eq!(Order::parse("", KEYS, "id or name"), Ok(Order::default()));
        assert_eq!(Order::parse("  ", KEYS, "id or name"), Ok(Order::default()));
        assert_eq!(
            Order::parse("Name DESC", KEYS, "id or name"),
            Ok(Order {
                key: Key::Name,
                descending: true
            })
        );
        assert_eq!(
            Order::parse("name asc", KEYS, "id or name").map(|o| o.descending),
            Ok(false)
        );
        let unknown = Order::parse("email", KEYS, "id or name").err();
        assert!(
            unknown
                .is_some_and(|v| v.field == "order_by" && v.description.contains("use id or name"))
        );
        assert!(Order::parse("name sideways", KEYS, "").is_err());
        assert!(Order::parse("name desc id", KEYS, "").is_err());
    }

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_query() {
        let fingerprint = query_fingerprint(&["kirk", "email"]);
        let cursor = Cursor {
            text: Some("a@b.c".into()),
            number: None,
            id: Some("x".into()),
            query: fingerprint.clone(),
        };
        let token = cursor.encode();
        assert_eq!(Cursor::decode(&token, &fingerprint), Ok(Some(cursor)));
        assert_eq!(Cursor::decode("", &fingerprint), Ok(None));
        assert!(Cursor::decode(&token, &query_fingerprint(&["spock", "email"])).is_err());
        assert!(Cursor::decode("garbage!", &fingerprint).is_err());
        assert_ne!(
            query_fingerprint(&["ab", "c"]),
            query_fingerprint(&["a", "bc"])
        );
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(5000), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_size(7), Ok(7));
        assert!(page_size(-1).is_err());
    }
}
