//! The queries, over any `ConnectionTrait` (a write transaction or the pool). Every query
//! names its workspace but the log key's, a platform row.

pub mod checkpoints;
pub mod events;
pub mod hashes;
pub mod holds;
pub mod log_key;
pub mod logs;
pub mod probe;
