//! The tower layers every Roster server runs, outermost first; see the crate docs for why in
//! this order.

pub mod concurrency;
pub mod panic;
pub mod request_context;
pub mod server_timeout;

pub use concurrency::GlobalConcurrencyLimitLayer;
pub use panic::catch_panic_layer;
pub use request_context::RequestContextLayer;
pub use server_timeout::ServerTimeoutLayer;
