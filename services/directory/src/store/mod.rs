//! SeaORM reads and writes. Functions take any `ConnectionTrait`, so the service layer
//! decides what runs inside which transaction.

pub mod customers;
pub mod identities;
pub mod search;
pub mod settings;
pub mod users;
