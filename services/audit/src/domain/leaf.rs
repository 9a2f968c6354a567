//! The bytes a leaf of the tree holds for one event, and the commitments to personal values.
//!
//! ```text
//! leaf       = "roster-audit-leaf-v1"                 (20 bytes, the format's tag)
//!              str(workspace_id) ‖ event_id (16 bytes)
//!              i64(occurred_at µs) ‖ i64(recorded_at µs)
//!              str(source_service) ‖ u32(schema_version)
//!              str(actor_kind) ‖ str(actor_id) ‖ slot(actor display name)
//!              str(action) ‖ str(target_type) ‖ str(target_id)
//!              str(outcome) ‖ str(request_id) ‖ str(trace_id)
//!              slot(caller_ip) ‖ slot(user_agent)
//!              u32(changes) ‖ per change: str(field) ‖ slot(before) ‖ slot(after)
//! str(s)     = u32(byte length) ‖ UTF-8 bytes
//! i64, u32   = big-endian
//! slot       = 0x00 (no value) | 0x01 ‖ commitment
//! commitment = SHA-256(salt ‖ UTF-8 value), salt 32 random bytes per value
//! ```
//!
//! Every variable part is length-prefixed, so no two events share leaf bytes. The salt is
//! what keeps a commitment from being guessed: an unsalted hash of an e-mail address in a
//! proof's siblings is brute-forced from a list of addresses. Erasure deletes value and
//! salt; the commitment stays in the leaf, so the tree, every checkpoint and every proof
//! stay valid.

use sha2::{Digest, Sha256};

use crate::domain::event::{Recorded, Slot};

/// The leaf format's tag, first in every leaf.
pub const FORMAT_TAG: &[u8; 20] = b"roster-audit-leaf-v1";

/// SHA-256(salt ‖ value).
pub fn commitment(salt: &[u8; 32], value: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(value.as_bytes());
    hasher.finalize().into()
}

/// The leaf bytes of `event`.
pub fn leaf_data(event: &Recorded) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + 80 * event.change_fields.len());
    out.extend_from_slice(FORMAT_TAG);
    text(&mut out, &event.workspace_id);
    out.extend_from_slice(event.event_id.as_bytes());
    out.extend_from_slice(&event.occurred_at.to_be_bytes());
    out.extend_from_slice(&event.recorded_at.to_be_bytes());
    text(&mut out, &event.source_service);
    out.extend_from_slice(&event.schema_version.to_be_bytes());
    text(&mut out, &event.actor_kind);
    text(&mut out, &event.actor_id);
    slot(&mut out, event, Slot::ActorDisplayName);
    text(&mut out, &event.action);
    text(&mut out, &event.target_type);
    text(&mut out, &event.target_id);
    text(&mut out, &event.outcome);
    text(&mut out, &event.request_id);
    text(&mut out, &event.trace_id);
    slot(&mut out, event, Slot::CallerIp);
    slot(&mut out, event, Slot::UserAgent);
    length(&mut out, event.change_fields.len());
    for (at, field) in event.change_fields.iter().enumerate() {
        text(&mut out, field);
        slot(&mut out, event, Slot::Before(at));
        slot(&mut out, event, Slot::After(at));
    }
    out
}

/// The RFC 6962 leaf hash of `event`: SHA-256(0x00 ‖ leaf bytes).
pub fn leaf_hash(event: &Recorded) -> [u8; 32] {
    tlog_tiles::tlog::record_hash(&leaf_data(event)).0
}

/// Why a stored personal value does not match the event's commitments, naming its slot:
/// a value changed by hand, or a value with no commitment (one the leaf never had).
pub fn check_values(event: &Recorded) -> Result<(), String> {
    for (name, kept) in &event.values {
        match event.commitments.get(name) {
            None => return Err(format!("{name} has a value but the leaf commits to none")),
            Some(committed) if *committed != commitment(&kept.salt, &kept.value) => {
                return Err(format!("{name} no longer matches its commitment"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn length(out: &mut Vec<u8>, len: usize) {
    // Field checks bound every length far below 4 GiB.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn text(out: &mut Vec<u8>, value: &str) {
    length(out, value.len());
    out.extend_from_slice(value.as_bytes());
}

fn slot(out: &mut Vec<u8>, event: &Recorded, slot: Slot) {
    match event.commitments.get(&slot.name()) {
        None => out.push(0),
        Some(commitment) => {
            out.push(1);
            out.extend_from_slice(commitment);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::event::{ActorKind, Change, NewEvent, Outcome};

    fn event() -> NewEvent {
        NewEvent {
            event_id: uuid::Uuid::from_u128(7),
            workspace_id: "acme".into(),
            occurred_at: 1_700_000_000_000_000,
            source_service: "directory".into(),
            schema_version: 1,
            actor_kind: ActorKind::Agent,
            actor_id: "a-1".into(),
            actor_display_name: Some("Nyota Uhura".into()),
            action: "end_user.updated".into(),
            target_type: "end_user".into(),
            target_id: "u-1".into(),
            changes: vec![Change {
                field: "email".into(),
                before: Some("\"kirk@example.com\"".into()),
                after: None,
            }],
            outcome: Outcome::Success,
            request_id: "r-1".into(),
            trace_id: String::new(),
            caller_ip: Some("192.0.2.1".into()),
            user_agent: None,
        }
    }

    fn counting_salts() -> impl FnMut() -> [u8; 32] {
        let mut next = 0u8;
        move || {
            next += 1;
            [next; 32]
        }
    }

    #[test]
    fn erasing_values_keeps_the_leaf() {
        let mut recorded = event().record(0, 5, counting_salts());
        let before = leaf_data(&recorded);
        assert!(check_values(&recorded).is_ok());
        recorded.values.clear();
        assert_eq!(leaf_data(&recorded), before);
        assert!(recorded.redacted(Slot::CallerIp));
        assert!(recorded.redacted(Slot::Before(0)));
        assert!(
            !recorded.redacted(Slot::After(0)),
            "there was no value after"
        );
        assert!(!recorded.redacted(Slot::UserAgent));
    }

    #[test]
    fn values_are_in_the_leaf_only_as_salted_commitments() {
        let recorded = event().record(0, 5, counting_salts());
        let leaf = leaf_data(&recorded);
        let contains = |needle: &[u8]| leaf.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"end_user.updated"));
        assert!(contains(uuid::Uuid::from_u128(7).as_bytes()));
        assert!(!contains(b"kirk@example.com"));
        assert!(!contains(b"Uhura"));
        assert!(!contains(b"192.0.2.1"));
        let unsalted: [u8; 32] = Sha256::digest(b"\"kirk@example.com\"").into();
        assert!(!contains(&unsalted));
    }

    #[test]
    fn every_part_changes_the_leaf() {
        let base = leaf_data(&event().record(0, 5, counting_salts()));
        let edits: [fn(&mut Recorded); 6] = [
            |e| e.action = "end_user.deleted".into(),
            |e| e.recorded_at += 1,
            |e| e.event_id = uuid::Uuid::from_u128(8),
            |e| e.change_fields[0] = "name".into(),
            |e| {
                e.commitments.remove("caller_ip");
            },
            // Two fields run together must not read as one.
            |e| {
                e.target_type = "end_useru-1".into();
                e.target_id = String::new();
            },
        ];
        for (at, edit) in edits.iter().enumerate() {
            let mut changed = event().record(0, 5, counting_salts());
            edit(&mut changed);
            assert_ne!(leaf_data(&changed), base, "edit {at}");
        }
    }

    #[test]
    fn a_changed_value_no_longer_matches_its_commitment() {
        let mut recorded = event().record(0, 5, counting_salts());
        if let Some(value) = recorded.values.get_mut("caller_ip") {
            value.value = "198.51.100.7".into();
        }
        assert_eq!(
            check_values(&recorded).unwrap_err(),
            "caller_ip no longer matches its commitment"
        );
    }
}
