//! SeaORM models of the audit schema (`migration/`). Plain data: `store/` is what touches a
//! connection and turns rows into `domain` records.

pub mod audit_checkpoint;
pub mod audit_event;
pub mod audit_legal_hold;
pub mod audit_log;
pub mod audit_log_key;
pub mod audit_tree_hash;
