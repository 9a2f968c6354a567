//! Page sizes, sort orders and opaque keyset cursors (AIP-158).
//!
//! A cursor holds the sort value and id of the last row served, so the next page starts
//! strictly after it: rows inserted meanwhile never shift or repeat a page, unlike offsets.
//! It also holds a fingerprint of the query, so a token cannot be replayed with another
//! filter or order and silently skip rows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::values::{Checked, FieldViolation};

pub const DEFAULT_PAGE_SIZE: u64 = 30;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// 0 means the default; larger than the maximum is coerced to it, as AIP-158 asks.
pub fn page_size(value: i32) -> Checked<u64> {
    match u64::try_from(value) {
        Err(_) => Err(FieldViolation::new("page_size", "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Email,
    Status,
    Conversations,
    CreatedAt,
    LastActivityAt,
}

impl SortKey {
    pub fn is_text(self) -> bool {
        matches!(self, SortKey::Email | SortKey::Status)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserOrder {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for UserOrder {
    fn default() -> Self {
        UserOrder {
            key: SortKey::CreatedAt,
            descending: false,
        }
    }
}

pub fn user_order(value: &str) -> Checked<UserOrder> {
    let (key, descending) = parse_order(
        value,
        &[
            ("email", SortKey::Email),
            ("status", SortKey::Status),
            ("conversations", SortKey::Conversations),
            ("conversation_count", SortKey::Conversations),
            ("created_at", SortKey::CreatedAt),
            ("last_activity_at", SortKey::LastActivityAt),
        ],
        "email, status, conversations, created_at or last_activity_at",
    )?;
    Ok(key.map_or_else(UserOrder::default, |key| UserOrder { key, descending }))
}

/// What ListCustomers sorts by, before the tie-breaker `customer_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CustomerSortKey {
    #[default]
    CustomerId,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CustomerOrder {
    pub key: CustomerSortKey,
    pub descending: bool,
}

pub fn customer_order(value: &str) -> Checked<CustomerOrder> {
    let (key, descending) = parse_order(
        value,
        &[
            ("customer_id", CustomerSortKey::CustomerId),
            ("name", CustomerSortKey::Name),
            ("created_at", CustomerSortKey::CreatedAt),
            ("updated_at", CustomerSortKey::UpdatedAt),
        ],
        "customer_id, name, created_at or updated_at",
    )?;
    Ok(
        key.map_or_else(CustomerOrder::default, |key| CustomerOrder {
            key,
            descending,
        }),
    )
}

/// An AIP-132 `order_by` of one field: `field [asc|desc]`. `None` for an empty value (the
/// list's default order).
fn parse_order<K: Copy>(
    value: &str,
    keys: &[(&str, K)],
    known: &str,
) -> Checked<(Option<K>, bool)> {
    let mut words = value.split_whitespace();
    let Some(field) = words.next() else {
        return Ok((None, false));
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
    Ok((Some(key), descending))
}

/// Where the previous page ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Text sort value (e-mail key, status, customer id).
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

pub fn query_fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
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

    /// Decodes a page token and checks it belongs to this query.
    pub fn decode(token: &str, fingerprint: &str) -> Checked<Option<Cursor>> {
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

    #[test]
    fn order_by_parses() {
        assert_eq!(user_order("").ok(), Some(UserOrder::default()));
        assert_eq!(
            user_order("last_activity_at DESC").ok(),
            Some(UserOrder {
                key: SortKey::LastActivityAt,
                descending: true
            })
        );
        assert!(user_order("name").is_err());
        assert!(user_order("email sideways").is_err());
        assert_eq!(
            customer_order("Name desc").ok(),
            Some(CustomerOrder {
                key: CustomerSortKey::Name,
                descending: true
            })
        );
        assert_eq!(customer_order(" ").ok(), Some(CustomerOrder::default()));
        assert!(customer_order("email").is_err());
    }

    #[test]
    fn cursor_round_trip_and_query_binding() {
        let fingerprint = query_fingerprint(&["kirk", "email"]);
        let cursor = Cursor {
            text: Some("a@b.c".into()),
            number: None,
            id: Some("x".into()),
            query: fingerprint.clone(),
        };
        let token = cursor.encode();
        assert_eq!(
            Cursor::decode(&token, &fingerprint).ok(),
            Some(Some(cursor))
        );
        assert!(Cursor::decode(&token, &query_fingerprint(&["spock", "email"])).is_err());
        assert!(Cursor::decode("garbage!", &fingerprint).is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0).ok(), Some(30));
        assert_eq!(page_size(5000).ok(), Some(1000));
        assert!(page_size(-1).is_err());
    }
}
