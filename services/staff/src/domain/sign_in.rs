//! Signing in: refresh tokens as the client holds them, the outcomes recorded for every
//! attempt, and the throttle on failed attempts.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// Marks the refresh token format, so a later format can be told apart.
const REFRESH_PREFIX: &str = "rt1";

/// A refresh token's parts. The client holds `rt1.<workspace>.<token id>.<secret>`; the
/// workspace (base64url) and id locate the row by its primary key, and only the secret's
/// hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub workspace_id: String,
    pub token_id: Uuid,
    pub secret: String,
}

impl RefreshToken {
    pub fn encode(&self) -> String {
        format!(
            "{REFRESH_PREFIX}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(self.workspace_id.as_bytes()),
            self.token_id.simple(),
            self.secret
        )
    }

    /// `None` for anything this service did not issue; the caller answers every such case
    /// alike.
    pub fn parse(token: &str) -> Option<RefreshToken> {
        let mut parts = token.split('.');
        let (prefix, workspace, id, secret) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != REFRESH_PREFIX || parts.next().is_some() || secret.len() != 43 {
            return None;
        }
        let workspace_id = String::from_utf8(URL_SAFE_NO_PAD.decode(workspace).ok()?).ok()?;
        Some(RefreshToken {
            workspace_id,
            token_id: Uuid::try_parse(id).ok()?,
            secret: secret.to_owned(),
        })
    }
}

/// How an attempt to sign in ended, as the login history records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInOutcome {
    Succeeded,
    /// Unknown e-mail or wrong password: the caller is told the same for both.
    WrongCredentials,
    /// Too many attempts for the account or the address; the password was not checked.
    Throttled,
    /// The password was right (or the ID token valid) but the agent may not sign in
    /// (deactivated, or invited without an invitation SSO could accept).
    NotActive,
    /// SSO: the ID token failed verification or was presented before.
    SsoTokenInvalid,
    /// SSO: a valid token whose person the connection does not let in (e-mail not
    /// verified, domain not allowed, another identity holds the agent).
    SsoIdentityRefused,
    /// SSO: nobody has the e-mail and the connection does not create an agent (or no
    /// seat is free for it).
    SsoNotProvisioned,
    /// SSO: the connection is disabled or not the workspace's.
    SsoConnectionUnavailable,
}

impl SignInOutcome {
    pub const ALL: [SignInOutcome; 8] = [
        SignInOutcome::Succeeded,
        SignInOutcome::WrongCredentials,
        SignInOutcome::Throttled,
        SignInOutcome::NotActive,
        SignInOutcome::SsoTokenInvalid,
        SignInOutcome::SsoIdentityRefused,
        SignInOutcome::SsoNotProvisioned,
        SignInOutcome::SsoConnectionUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignInOutcome::Succeeded => "succeeded",
            SignInOutcome::WrongCredentials => "wrong_credentials",
            SignInOutcome::Throttled => "throttled",
            SignInOutcome::NotActive => "not_active",
            SignInOutcome::SsoTokenInvalid => "sso_token_invalid",
            SignInOutcome::SsoIdentityRefused => "sso_identity_refused",
            SignInOutcome::SsoNotProvisioned => "sso_not_provisioned",
            SignInOutcome::SsoConnectionUnavailable => "sso_connection_unavailable",
        }
    }

    pub fn parse(value: &str) -> Option<SignInOutcome> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
    }
}

/// How a sign-in was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    Sso,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Sso => "sso",
        }
    }

    pub fn parse(value: &str) -> Option<SignInMethod> {
        [SignInMethod::Password, SignInMethod::Sso]
            .into_iter()
            .find(|method| method.as_str() == value)
    }
}

/// Attempts allowed per window before further ones are refused unchecked. Every attempt
/// counts when it starts; a success clears the account's count and gives the address its
/// attempt back, so only failures accumulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub per_account: i64,
    pub per_address: i64,
    pub window: Duration,
}

impl Default for Throttle {
    /// Five tries at one account's password per quarter hour stop guessing without
    /// locking out a person who mistypes; an office behind one address gets more.
    fn default() -> Self {
        Throttle {
            per_account: 5,
            per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The throttle counters an attempt counts against.
pub fn account_key(email_key: &str) -> String {
    format!("account:{email_key}")
}

pub fn address_key(ip: &str) -> String {
    format!("address:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_round_trip_and_strangers_do_not_parse() {
        let token = RefreshToken {
            workspace_id: "acme.eu".into(),
            token_id: Uuid::now_v7(),
            secret: crate::domain::secret::new(&mut rand::rng()),
        };
        let encoded = token.encode();
        assert_eq!(RefreshToken::parse(&encoded), Some(token));
        for stranger in [
            "",
            "rt1",
            "rt2.YWNtZQ.0190a0b0c0d0e0f0a0b0c0d0e0f0a0b0.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "rt1.YWNtZQ.not-a-uuid.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "rt1.YWNtZQ.0190a0b0c0d0e0f0a0b0c0d0e0f0a0b0.short",
            "rt1.!!.0190a0b0c0d0e0f0a0b0c0d0e0f0a0b0.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert_eq!(RefreshToken::parse(stranger), None, "{stranger}");
        }
        assert_eq!(RefreshToken::parse(&format!("{encoded}.extra")), None);
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in SignInOutcome::ALL {
            assert_eq!(SignInOutcome::parse(outcome.as_str()), Some(outcome));
        }
    }
}
