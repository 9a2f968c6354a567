//! Access tokens for every Roster service: minting (staff service) and verification (all);
//! and, in [`oidc`], the ID tokens of external identity providers that SSO sign-ins bring.
//!
//! Tokens are JWTs signed with one asymmetric algorithm (Ed25519 by default, ES256 as a
//! configured alternative) and carry a `kid` naming the signing key in the staff service's
//! JWKS. Services verify locally; nothing here ever fetches keys over the network.
//!
//! A service wires it up once:
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use roster_auth::{KeySet, TokenVerifier, VerifierSettings};
//! let keys = KeySet::from_jwks_file(std::path::Path::new("dev-keys/dev-jwks.json"))?;
//! let verifier = TokenVerifier::new(VerifierSettings::default(), keys);
//! let interceptor = verifier.interceptor();
//! // XServer::with_interceptor(service, interceptor); handlers then call
//! // `roster_auth::principal_of(&request)?`.
//! # let _ = interceptor; Ok(()) }
//! ```

mod cache;
pub mod catalogues;
mod claims;
mod dev;
mod error;
mod keys;
pub mod oidc;
mod permissions;
mod principal;
mod public;
mod revocations;
mod settings;
mod sign;
mod verify;

pub use claims::{ALL_WORKSPACES, Claims, WorkspaceAccess};
pub use dev::{
    DEV_KEY_ID, DevKeys, create_private_file_once, generate_ed25519, load_or_create_dev_keys,
};
pub use error::{AuthError, ERROR_DOMAIN, KeyError};
pub use keys::{KeySet, SigningAlgorithm};
pub use permissions::{Permission, PermissionCatalogue};
pub use principal::{
    Grant, Principal, PrincipalKind, WorkspaceScope, caller, principal, principal_of,
};
pub use public::Guarded;
pub use revocations::RevocationView;
pub use settings::AuthSettings;
pub use sign::{TokenRequest, TokenSigner};
pub use verify::{TokenVerifier, VerifierSettings, unix_now};
