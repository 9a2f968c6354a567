//! Generated code for Roster's gRPC contracts and the descriptor set that server reflection
//! serves. Only the services' `api` modules and clients depend on this crate.

/// Encoded `FileDescriptorSet` of every Roster contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/roster_descriptor.bin"));

pub mod json;

pub mod directory {
    // The generated code names other packages' messages by relative path, as
    // `super::super::audit::v1::AuditEvent`; with `roster` as the crate root that lands here.
    use super::audit;

    pub mod v1 {
        #![allow(
            clippy::all,
            clippy::pedantic,
            clippy::unwrap_used,
            clippy::expect_used,
            clippy::panic
        )]
        #[rustfmt::skip]
        mod generated {
            tonic::include_proto!("roster.directory.v1");
        }
        pub use generated::*;
    }
}

pub mod staff {
    pub mod v1 {
        #![allow(
            clippy::all,
            clippy::pedantic,
            clippy::unwrap_used,
            clippy::expect_used,
            clippy::panic
        )]
        #[rustfmt::skip]
        mod generated {
            tonic::include_proto!("roster.staff.v1");
        }
        pub use generated::*;
    }
}

pub mod audit {
    pub mod v1 {
        #![allow(
            clippy::all,
            clippy::pedantic,
            clippy::unwrap_used,
            clippy::expect_used,
            clippy::panic
        )]
        #[rustfmt::skip]
        mod generated {
            tonic::include_proto!("roster.audit.v1");
        }
        pub use generated::*;
    }
}
