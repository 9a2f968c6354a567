//! SeaORM queries, each taking any `ConnectionTrait` (a pool or the caller's transaction).
//! Every query names its workspace; none spans workspaces, apart from those of the
//! platform's token-signing keys (`signing_keys`), which belong to no workspace.

pub mod agents;
pub mod invitations;
pub mod request_ids;
pub mod revocations;
pub mod roles;
pub mod service_accounts;
pub mod sign_in;
pub mod signing_keys;
pub mod sso;
pub mod teams;
pub mod workspaces;

/// `value` with LIKE's wildcards escaped (with `\`), inside `%…%`.
pub(crate) fn contains_pattern(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len() + 2);
    pattern.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
