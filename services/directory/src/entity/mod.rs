//! SeaORM entities: the rows as stored. Only `store/` uses them; times are unix
//! microseconds (`BIGINT`) so that ordering, ranges and keyset cursors behave the same on
//! SQLite and PostgreSQL.

pub mod customer;
pub mod end_user;
pub mod end_user_identity;
pub mod request_id;
pub mod workspace_settings;
