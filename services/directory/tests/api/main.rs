#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The directory's behaviour as a caller sees it: real servers on port 0, generated
//! clients, a fresh database per test on SQLite and (when ROSTER_TEST_DATABASE_URL is set)
//! on PostgreSQL. One binary, many modules: each test binary costs a link.

mod helpers;

mod audit;
mod authz;
mod concurrency;
mod contract;
mod customers;
mod dead_letters;
mod guests_settings;
mod health;
mod identity_order;
mod import;
mod import_batches;
mod import_interrupted;
mod lifecycle;
mod merge_erase;
mod search_paging;
mod status_chain;
mod users;
mod validation;
mod widget;
