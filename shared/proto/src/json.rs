//! Messages as proto3 JSON (the canonical mapping: lowerCamelCase names, enums by name,
//! timestamps in RFC 3339, 64-bit integers as strings), for documents handed to people
//! rather than programs, such as a data subject's export.
//!
//! The generated types know nothing of JSON; the descriptors compiled beside them do, so a
//! message is re-read as a dynamic one of its descriptor and serialized from that. Slower
//! than generated serde code, and fine for the rare documents it serves.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string())
});

/// Why a message could not be written as JSON: every cause is a defect, not bad input.
#[derive(Debug)]
pub struct JsonError(String);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// `message`, of the fully qualified type `full_name` (`roster.directory.v1.UserExport`),
/// as indented proto3 JSON; fields with default values are left out, as the mapping says.
///
/// # Errors
///
/// `full_name` is not one of Roster's messages, or does not describe `message`.
pub fn to_json(message: &impl prost::Message, full_name: &str) -> Result<String, JsonError> {
    let pool = POOL
        .as_ref()
        .map_err(|error| JsonError(format!("the compiled descriptors do not decode: {error}")))?;
    let descriptor = pool
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError(format!("no message named '{full_name}'")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| JsonError(format!("re-reading a {full_name}: {error}")))?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut out);
    dynamic
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .map_err(|error| JsonError(format!("writing a {full_name} as JSON: {error}")))?;
    String::from_utf8(out).map_err(|error| JsonError(format!("JSON is not UTF-8: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::v1 as audit;

    #[test]
    fn a_message_follows_the_proto3_json_mapping() {
        let event = audit::AuditEvent {
            event_id: "e1".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            outcome: audit::Outcome::Success as i32,
            leaf_index: 7,
            ..Default::default()
        };
        let json = to_json(&event, "roster.audit.v1.AuditEvent").map_err(|e| e.to_string());
        let value: serde_json::Value =
            serde_json::from_str(&json.clone().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({
                "eventId": "e1",
                "occurredAt": "2023-11-14T22:13:20Z",
                "outcome": "OUTCOME_SUCCESS",
                "leafIndex": "7",
            }),
            "{json:?}"
        );
    }

    #[test]
    fn an_unknown_message_name_is_an_error_not_a_panic() {
        let event = audit::AuditEvent::default();
        assert!(to_json(&event, "roster.audit.v1.NoSuchThing").is_err());
    }
}
