//! The audit service: each workspace's append-only audit log, as a Merkle tree with signed
//! checkpoints, inclusion and consistency proofs, so tampering is detectable and provable to
//! someone outside Roster.
//!
//! Layers, outermost first: `api` (gRPC handlers, the only protobuf-aware code, with
//! authorization in `api/authz.rs`), `service` (appends, proofs, verification), `domain`
//! (events, leaves, the tree, checkpoints), `store` (SeaORM queries), `entity` and
//! `migration` (the schema this service owns).

pub mod api;
pub mod domain;
pub mod entity;
pub mod error;
pub mod migration;
pub mod service;
pub mod settings;
pub mod startup;
pub mod store;

pub use startup::{Application, prepare_database};
