//! The staff service: a workspace's support agents, their invitations, roles, teams and
//! seats.
//!
//! Layers, outermost first: `api` (gRPC handlers, the only protobuf-aware code, with
//! authorization in `api/authz.rs`), `service` (operations, transactions, audit events),
//! `domain` (types and rules), `store` (SeaORM queries), `entity` and `migration` (the
//! schema this service owns).

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
