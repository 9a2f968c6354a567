//! SeaORM reads and writes. Functions take any `ConnectionTrait`, so the service layer
//! decides what runs inside which transaction.

pub mod bulk;
pub mod customers;
pub mod identities;
pub mod request_ids;
pub mod search;
pub mod settings;
pub mod users;
pub mod views;
