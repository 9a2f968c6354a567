//! Types and rules of the audit service, free of protobuf and of SQL: events and their
//! personal values, the leaf bytes the tree commits to, the tree's hashes and proofs, and
//! signed checkpoints. Time and randomness come in as arguments.

pub mod event;
pub mod json;
pub mod leaf;
pub mod note;
pub mod tree;
pub mod values;

pub use roster_core::{Clock, ShiftedClock, SystemClock};
