//! Access tokens as the staff service issues them: the shared claim set, signed with the
//! key that signs now, for a subject's role and permissions in each of its workspaces.

use std::collections::BTreeMap;
use std::time::Duration;

use roster_auth::{PrincipalKind, TokenRequest, WorkspaceAccess};

use super::keys::Keyring;
use crate::error::{Result, StaffError};

/// An issued access token and when it expires (unix microseconds).
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: i64,
}

/// Mints access tokens for the verifiers' issuer and audience. Clones share the keys.
#[derive(Clone, Debug)]
pub struct AccessTokens {
    keys: Keyring,
    issuer: String,
    audience: String,
}

impl AccessTokens {
    pub fn new(keys: Keyring, issuer: String, audience: String) -> Self {
        Self {
            keys,
            issuer,
            audience,
        }
    }

    /// How long the tokens minted here last.
    pub fn ttl(&self) -> Duration {
        self.keys.settings().access_token_ttl
    }

    /// A token for `subject` holding `workspaces` (id → role and permissions), issued under
    /// the subject's token `generation`, at `now_us`.
    pub async fn mint(
        &self,
        subject: String,
        kind: PrincipalKind,
        workspaces: BTreeMap<String, WorkspaceAccess>,
        generation: i64,
        now_us: i64,
    ) -> Result<AccessToken> {
        let now_secs = now_us.div_euclid(1_000_000);
        let ttl = self.ttl();
        let request = TokenRequest {
            subject,
            kind,
            workspaces,
            generation: u64::try_from(generation).unwrap_or_default(),
            ttl,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        };
        let token = self
            .keys
            .current_signer()
            .await?
            .mint_for(&request, now_secs)
            .map_err(|error| StaffError::Internal(format!("minting an access token: {error}")))?;
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Ok(AccessToken {
            token,
            expires_at: now_secs.saturating_add(ttl_secs).saturating_mul(1_000_000),
        })
    }
}
