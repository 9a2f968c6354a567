//! The directory service: a vendor's customers (client organizations) and their end-users.
//!
//! Layers, outermost first: `api` (gRPC handlers, the only protobuf-aware code), `service`
//! (operations, transactions, audit events), `domain` (types and rules), `store` (SeaORM
//! queries), `entity` and `migration` (the schema this service owns).

pub mod api;
pub mod domain;
pub mod entity;
pub mod error;
pub mod import;
pub mod migration;
pub mod service;
pub mod startup;
pub mod store;
pub mod widget_kek;

pub use startup::{Application, prepare_database};
