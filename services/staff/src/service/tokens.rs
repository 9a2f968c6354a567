//! Access tokens as the staff service issues them: the shared claim set, signed with the
//! service's key, for an agent's role and permissions in its workspace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use roster_auth::{PrincipalKind, TokenRequest, TokenSigner, WorkspaceAccess};

use crate::error::{Result, StaffError};

/// An issued access token and when it expires (unix microseconds).
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: i64,
}

/// Mints access tokens. Clones share the signer.
#[derive(Clone)]
pub struct AccessTokens {
    signer: Arc<TokenSigner>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(signer: Arc<TokenSigner>, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            signer,
            issuer,
            audience,
            ttl,
        }
    }

    /// A token for `subject` holding `workspaces` (id → role and permissions), issued under
    /// the subject's token `generation`, at `now_us`.
    pub fn mint(
        &self,
        subject: String,
        kind: PrincipalKind,
        workspaces: BTreeMap<String, WorkspaceAccess>,
        generation: i64,
        now_us: i64,
    ) -> Result<AccessToken> {
        let now_secs = now_us.div_euclid(1_000_000);
        let request = TokenRequest {
            subject,
            kind,
            workspaces,
            generation: u64::try_from(generation).unwrap_or_default(),
            ttl: self.ttl,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        };
        let token = self
            .signer
            .mint_for(&request, now_secs)
            .map_err(|error| StaffError::Internal(format!("minting an access token: {error}")))?;
        let ttl_secs = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        Ok(AccessToken {
            token,
            expires_at: now_secs.saturating_add(ttl_secs).saturating_mul(1_000_000),
        })
    }
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("kid", &self.signer.kid())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
