//! Single sign-on rules: what a connection may be configured with, what a verified ID
//! token must say about a person before anyone is signed in, and which agent a sign-in
//! becomes ([`decide`], one pure function, so SsoLogin and its tests cannot drift).
//! Verifying the token itself is `roster_auth::oidc`'s (no service parses JWTs itself).

use std::collections::BTreeSet;

use roster_auth::oidc::{IdToken, IdTokenError, IdTokenExpectations, IdpKeys};
use roster_core::FieldViolation;
use roster_core::values::domain_name;

use super::AgentStatus;
use super::values::{self, Checked};
use crate::entity::{agent, sso_connection};

/// Connections one workspace may have: a provider or two, with room for a migration.
pub const MAX_CONNECTIONS: u64 = 20;
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
pub const MAX_ISSUER_CHARS: usize = 512;
pub const MAX_CLIENT_ID_CHARS: usize = 255;
pub const MAX_ALLOWED_DOMAINS: usize = 100;
pub const MAX_NONCE_CHARS: usize = 256;
/// Clock skew tolerated between a provider and us on `exp`, `nbf` and `iat`.
pub const ID_TOKEN_LEEWAY_SECS: i64 = 60;

/// Google's issuer, in the form connections store it and the form its tokens may also say.
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GOOGLE_ISSUER_BARE: &str = "accounts.google.com";
/// Entra ID's multi-tenant placeholders: an issuer naming one of them would accept every
/// tenant's users (or none, since tokens carry the tenant's own id).
const ENTRA_SHARED_TENANTS: [&str; 4] = ["common", "organizations", "consumers", "{tenantid}"];

/// The provider a connection trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    GoogleWorkspace,
    MicrosoftEntraId,
    Okta,
    GenericOidc,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::GoogleWorkspace,
        Provider::MicrosoftEntraId,
        Provider::Okta,
        Provider::GenericOidc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GoogleWorkspace => "google_workspace",
            Provider::MicrosoftEntraId => "microsoft_entra_id",
            Provider::Okta => "okta",
            Provider::GenericOidc => "generic_oidc",
        }
    }

    pub fn parse(value: &str) -> Option<Provider> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

/// What a sign-in does for a person without an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvisioningMode {
    /// Create the agent at its first sign-in, seats permitting.
    Jit,
    /// Only agents an administrator made may sign in.
    PreProvisioned,
    /// Agents arrive through SCIM; at sign-in like `PreProvisioned`.
    Scim,
}

impl ProvisioningMode {
    pub const ALL: [ProvisioningMode; 3] = [
        ProvisioningMode::Jit,
        ProvisioningMode::PreProvisioned,
        ProvisioningMode::Scim,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningMode::Jit => "jit",
            ProvisioningMode::PreProvisioned => "pre_provisioned",
            ProvisioningMode::Scim => "scim",
        }
    }

    pub fn parse(value: &str) -> Option<ProvisioningMode> {
        Self::ALL.into_iter().find(|m| m.as_str() == value)
    }
}

pub fn display_name(field: &str, value: &str) -> Checked<String> {
    let value = values::text(field, value, MAX_DISPLAY_NAME_CHARS, false)?;
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Ok(value)
}

/// The case-insensitive key of a display name: unique in the workspace.
pub fn display_name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// An issuer identifier: an https URL without query or fragment (OpenID Connect
/// Discovery §2), plus what `provider` requires of it.
pub fn issuer(field: &str, value: &str, provider: Provider) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_ISSUER_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_ISSUER_CHARS} characters"),
        ));
    }
    let checked = values::url(field, value)?;
    if !checked.starts_with("https://") || checked.contains(['?', '#']) {
        return Err(FieldViolation::new(
            field,
            format!("'{value}' is not an issuer: an https URL without query or fragment"),
        ));
    }
    match provider {
        Provider::GoogleWorkspace if checked != GOOGLE_ISSUER => Err(FieldViolation::new(
            field,
            format!("Google Workspace's issuer is '{GOOGLE_ISSUER}'"),
        )),
        Provider::MicrosoftEntraId => {
            let tenant = checked
                .strip_prefix("https://login.microsoftonline.com/")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_default();
            if ENTRA_SHARED_TENANTS.contains(&tenant.to_lowercase().as_str()) {
                Err(FieldViolation::new(
                    field,
                    format!(
                        "'{tenant}' is not a tenant: use your tenant's issuer, https://login.microsoftonline.com/<tenant id>/v2.0"
                    ),
                ))
            } else {
                Ok(checked)
            }
        }
        _ => Ok(checked),
    }
}

/// A client id as providers issue them: printable, without spaces.
pub fn client_id(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_CLIENT_ID_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_CLIENT_ID_CHARS} characters"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldViolation::new(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(value.to_owned())
}

/// E-mail domains, lower-cased, de-duplicated and sorted.
pub fn allowed_domains(field: &str, values: &[String]) -> Result<Vec<String>, Vec<FieldViolation>> {
    if values.len() > MAX_ALLOWED_DOMAINS {
        return Err(vec![FieldViolation::new(
            field,
            format!("at most {MAX_ALLOWED_DOMAINS} domains"),
        )]);
    }
    let mut domains = BTreeSet::new();
    let mut violations = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let domain = value.trim().trim_start_matches('@').to_lowercase();
        match domain_name(&domain) {
            Ok(()) if domain.contains('.') => {
                domains.insert(domain);
            }
            Ok(()) => violations.push(FieldViolation::new(
                format!("{field}[{index}]"),
                format!("'{value}' is not a domain like example.com"),
            )),
            Err(why) => violations.push(FieldViolation::new(
                format!("{field}[{index}]"),
                format!("'{value}' is not a domain: {why}"),
            )),
        }
    }
    if violations.is_empty() {
        Ok(domains.into_iter().collect())
    } else {
        Err(violations)
    }
}

/// A JWKS document with at least one usable signing key.
pub fn jwks(field: &str, value: &str) -> Checked<(String, IdpKeys)> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new(
            field,
            "is required: the provider's JWKS document (its jwks_uri)",
        ));
    }
    IdpKeys::from_jwks_json(value)
        .map(|keys| (value.to_owned(), keys))
        .map_err(|error| FieldViolation::new(field, error.to_string()))
}

/// A sign-in's nonce: required, bounded.
pub fn nonce(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Err(FieldViolation::new(
            field,
            "is required: the nonce this sign-in was started with",
        ));
    }
    if value.chars().count() > MAX_NONCE_CHARS || value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_NONCE_CHARS} printable characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An ID token as a field: present and not absurdly long (its checks are the verifier's).
pub fn id_token(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.len() > roster_auth::oidc::MAX_ID_TOKEN_BYTES {
        return Err(FieldViolation::new(
            field,
            format!(
                "is longer than {} bytes",
                roster_auth::oidc::MAX_ID_TOKEN_BYTES
            ),
        ));
    }
    Ok(value.to_owned())
}

/// A stored connection, parsed for signing in. A row that no longer parses refuses every
/// sign-in (fail closed) with a message naming what to set again.
#[derive(Clone, Debug)]
pub struct Connection {
    pub provider: Provider,
    pub mode: ProvisioningMode,
    pub issuer: String,
    pub client_id: String,
    pub domains: Vec<String>,
    pub keys: IdpKeys,
}

impl Connection {
    pub fn from_row(row: &sso_connection::Model) -> Result<Connection, String> {
        let provider = Provider::parse(&row.provider)
            .ok_or_else(|| format!("its provider '{}' is unknown", row.provider))?;
        let mode = ProvisioningMode::parse(&row.provisioning_mode).ok_or_else(|| {
            format!(
                "its provisioning mode '{}' is unknown; set provisioning_mode again",
                row.provisioning_mode
            )
        })?;
        let domains = parse_domains(&row.allowed_email_domains).map_err(|error| {
            format!(
                "its allowed e-mail domains do not parse ({error}); set allowed_email_domains again"
            )
        })?;
        let keys = IdpKeys::from_jwks_json(&row.jwks)
            .map_err(|error| format!("its JWKS {error}; set jwks again"))?;
        Ok(Connection {
            provider,
            mode,
            issuer: row.issuer.clone(),
            client_id: row.client_id.clone(),
            domains,
            keys,
        })
    }

    /// Verifies an ID token for this connection and this sign-in's `nonce`.
    pub fn verify(
        &self,
        id_token: &str,
        nonce: &str,
        now_secs: i64,
    ) -> Result<IdToken, IdTokenError> {
        let google = [GOOGLE_ISSUER, GOOGLE_ISSUER_BARE];
        let own = [self.issuer.as_str()];
        let issuers: &[&str] = if self.provider == Provider::GoogleWorkspace {
            &google
        } else {
            &own
        };
        roster_auth::oidc::verify_id_token(
            id_token,
            &self.keys,
            &IdTokenExpectations {
                issuers,
                client_id: &self.client_id,
                nonce,
                now: now_secs,
                leeway: ID_TOKEN_LEEWAY_SECS,
            },
        )
    }

    /// The person a verified token vouches for, if this connection lets them in.
    pub fn admit(&self, token: &IdToken) -> Result<Identity, NotAdmitted> {
        let claimed = token.email.as_deref().unwrap_or_default();
        if claimed.is_empty() {
            return Err(NotAdmitted::NoEmail);
        }
        let email = values::email("email", claimed).map_err(|_| NotAdmitted::NoEmail)?;
        let verified = token.email_verified == Some(true)
            || (self.provider == Provider::MicrosoftEntraId && token.claim_is_true("xms_edov"));
        if !verified {
            return Err(NotAdmitted::EmailNotVerified(email));
        }
        let domain = email
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_lowercase())
            .unwrap_or_default();
        if !self.domains.is_empty() && !self.domains.contains(&domain) {
            return Err(NotAdmitted::DomainNotAllowed(domain));
        }
        if self.provider == Provider::GoogleWorkspace {
            let hosted = token.text_claim("hd").map(str::to_lowercase);
            let allowed = match &hosted {
                None => false,
                Some(hosted) => self.domains.is_empty() || self.domains.contains(hosted),
            };
            if !allowed {
                return Err(NotAdmitted::NotWorkspaceAccount(hosted));
            }
        }
        Ok(Identity {
            subject: token.subject.clone(),
            email_key: values::email_key(&email),
            name: display_name_of(token, &email),
            email,
        })
    }
}

fn parse_domains(json: &str) -> Result<Vec<String>, serde_json::Error> {
    serde_json::from_str(json)
}

/// Domains as stored: a JSON array.
pub fn domains_json(domains: &[String]) -> String {
    serde_json::Value::from(domains.to_vec()).to_string()
}

/// Domains as stored, for answering; an unreadable value reads as none (the sign-in path
/// refuses it, see [`Connection::from_row`]).
pub fn stored_domains(row: &sso_connection::Model) -> Vec<String> {
    parse_domains(&row.allowed_email_domains).unwrap_or_default()
}

/// The name a provisioned agent starts with: the token's, else the e-mail's local part.
fn display_name_of(token: &IdToken, email: &str) -> String {
    let given = [token.given_name.as_deref(), token.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    [token.name.clone().unwrap_or_default(), given]
        .into_iter()
        .map(|name| {
            name.chars()
                .filter(|c| !c.is_control())
                .take(values::MAX_NAME_CHARS)
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned())
}

/// A person a connection admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The provider's `sub`.
    pub subject: String,
    pub email: String,
    pub email_key: String,
    pub name: String,
}

/// Why a valid token's person may not sign in through the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotAdmitted {
    NoEmail,
    EmailNotVerified(String),
    DomainNotAllowed(String),
    /// Google: not a Workspace account of an allowed domain (`hd` missing or other).
    NotWorkspaceAccount(Option<String>),
}

impl NotAdmitted {
    pub fn message(&self) -> String {
        match self {
            NotAdmitted::NoEmail => "the identity provider sent no e-mail address; add the `email` claim (scope `email`) to the sign-in".to_owned(),
            NotAdmitted::EmailNotVerified(email) => format!(
                "the identity provider does not say {email} is verified (`email_verified`), so it cannot be linked to an agent"
            ),
            NotAdmitted::DomainNotAllowed(domain) => format!(
                "e-mail addresses at {domain} may not sign in through this connection"
            ),
            NotAdmitted::NotWorkspaceAccount(None) => "this is not a Google Workspace account (no `hd` claim); sign in with your organisation's account".to_owned(),
            NotAdmitted::NotWorkspaceAccount(Some(domain)) => format!(
                "Google Workspace accounts of {domain} may not sign in through this connection"
            ),
        }
    }
}

/// What a sign-in becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The identity's linked agent, ACTIVE: sign it in.
    SignIn(uuid::Uuid),
    /// The ACTIVE agent with the identity's e-mail: link, then sign in.
    Link(uuid::Uuid),
    /// The INVITED agent with the identity's e-mail (or linked): accept its pending
    /// invitation, link, sign in.
    AcceptInvitation(uuid::Uuid),
    /// Nobody has the e-mail and the connection provisions: create the agent (seats
    /// permitting), link, sign in.
    Create,
    Refuse(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The agent is DEACTIVATED.
    NotActive(uuid::Uuid),
    /// The agent with the e-mail is linked to another identity of the connection.
    IdentityConflict(uuid::Uuid),
    /// Nobody has the e-mail and the connection does not provision.
    NotProvisioned,
}

/// The agent of a sign-in: `linked` is the agent the identity's `sub` is linked to;
/// `by_email` the agent with its e-mail and whether that agent is linked to another
/// identity of the connection.
pub fn decide(
    mode: ProvisioningMode,
    linked: Option<&agent::Model>,
    by_email: Option<(&agent::Model, bool)>,
) -> Decision {
    if let Some(agent) = linked {
        return by_status(agent, Decision::SignIn(agent.agent_id));
    }
    match by_email {
        Some((agent, true)) => Decision::Refuse(Refusal::IdentityConflict(agent.agent_id)),
        Some((agent, false)) => by_status(agent, Decision::Link(agent.agent_id)),
        None if mode == ProvisioningMode::Jit => Decision::Create,
        None => Decision::Refuse(Refusal::NotProvisioned),
    }
}

fn by_status(agent: &agent::Model, active: Decision) -> Decision {
    match AgentStatus::parse(&agent.status) {
        Some(AgentStatus::Active) => active,
        Some(AgentStatus::Invited) => Decision::AcceptInvitation(agent.agent_id),
        Some(AgentStatus::Deactivated | AgentStatus::Erased) | None => {
            Decision::Refuse(Refusal::NotActive(agent.agent_id))
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn agent(status: AgentStatus) -> agent::Model {
        agent::Model {
            workspace_id: "w".into(),
            agent_id: uuid::Uuid::now_v7(),
            email: "a@example.com".into(),
            email_key: "a@example.com".into(),
            name: String::new(),
            name_key: String::new(),
            avatar_url: String::new(),
            role: "agent".into(),
            extra_permissions: "[]".into(),
            status: status.as_str().into(),
            notification_preferences: "{}".into(),
            signature: String::new(),
            theme: String::new(),
            language: String::new(),
            created_at: 0,
            updated_at: 0,
            activated_at: None,
            deactivated_at: None,
            deactivation_reason: String::new(),
            last_sign_in_at: 0,
            version: 1,
            sign_in_count: 0,
            token_generation: 0,
        }
    }

    #[test]
    fn a_sign_in_becomes_the_linked_agent_then_the_e_mails_then_a_new_one() {
        use ProvisioningMode::*;
        let active = agent(AgentStatus::Active);
        let invited = agent(AgentStatus::Invited);
        let gone = agent(AgentStatus::Deactivated);
        for mode in ProvisioningMode::ALL {
            assert_eq!(
                decide(mode, Some(&active), None),
                Decision::SignIn(active.agent_id)
            );
            assert_eq!(
                decide(mode, Some(&gone), None),
                Decision::Refuse(Refusal::NotActive(gone.agent_id))
            );
            assert_eq!(
                decide(mode, None, Some((&active, false))),
                Decision::Link(active.agent_id)
            );
            assert_eq!(
                decide(mode, None, Some((&active, true))),
                Decision::Refuse(Refusal::IdentityConflict(active.agent_id))
            );
            assert_eq!(
                decide(mode, None, Some((&invited, false))),
                Decision::AcceptInvitation(invited.agent_id)
            );
            assert_eq!(
                decide(mode, None, Some((&gone, false))),
                Decision::Refuse(Refusal::NotActive(gone.agent_id))
            );
        }
        assert_eq!(decide(Jit, None, None), Decision::Create);
        assert_eq!(
            decide(PreProvisioned, None, None),
            Decision::Refuse(Refusal::NotProvisioned)
        );
        assert_eq!(
            decide(Scim, None, None),
            Decision::Refuse(Refusal::NotProvisioned)
        );
    }

    fn token(claims: serde_json::Value) -> IdToken {
        let claims = claims.as_object().cloned().unwrap_or_default();
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        IdToken {
            issuer: "https://idp.example.com".into(),
            subject: "s-1".into(),
            email: text("email"),
            email_verified: claims
                .get("email_verified")
                .and_then(serde_json::Value::as_bool),
            name: text("name"),
            given_name: text("given_name"),
            family_name: text("family_name"),
            issued_at: 0,
            expires_at: 0,
            claims,
        }
    }

    fn connection(provider: Provider, domains: &[&str]) -> Connection {
        Connection {
            provider,
            mode: ProvisioningMode::Jit,
            issuer: "https://idp.example.com".into(),
            client_id: "c".into(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            keys: match IdpKeys::from_jwks_json(
                r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": "2qqLVoTy44dWdLr-Y3MEj1C3bu5_6Bk055oJqTdTZz8", "y": "XrPBrgUwdpO4opmroyErp0aVjO5y1hKY-_MAkUI8xpI"}]}"#,
            ) {
                Ok(keys) => keys,
                Err(error) => panic!("{error}"),
            },
        }
    }

    #[test]
    fn a_person_is_admitted_with_a_verified_e_mail_in_an_allowed_domain() {
        use serde_json::json;
        let generic = connection(Provider::GenericOidc, &["example.com"]);
        let admitted = generic.admit(&token(json!({
            "email": " Uhura@Example.COM", "email_verified": true,
            "given_name": "Nyota", "family_name": "Uhura",
        })));
        assert_eq!(
            admitted,
            Ok(Identity {
                subject: "s-1".into(),
                email: "Uhura@Example.COM".into(),
                email_key: "uhura@example.com".into(),
                name: "Nyota Uhura".into(),
            })
        );
        let nameless = generic.admit(&token(
            json!({"email": "kirk@example.com", "email_verified": true}),
        ));
        assert_eq!(
            nameless.map(|identity| identity.name),
            Ok("kirk".to_owned())
        );
        assert_eq!(
            generic.admit(&token(json!({"email": "kirk@example.com"}))),
            Err(NotAdmitted::EmailNotVerified("kirk@example.com".into()))
        );
        assert_eq!(
            generic.admit(&token(
                json!({"email": "kirk@other.org", "email_verified": true})
            )),
            Err(NotAdmitted::DomainNotAllowed("other.org".into()))
        );
        assert_eq!(
            generic.admit(&token(json!({"email_verified": true}))),
            Err(NotAdmitted::NoEmail)
        );
        // Entra ID's domain-owner-verified claim counts there, and only there.
        let edov = json!({"email": "kirk@example.com", "xms_edov": true});
        assert!(
            connection(Provider::MicrosoftEntraId, &[])
                .admit(&token(edov.clone()))
                .is_ok()
        );
        assert!(generic.admit(&token(edov)).is_err());
        // Google: a Workspace account (`hd`) of an allowed domain.
        let google = connection(Provider::GoogleWorkspace, &["example.com"]);
        let verified = |hd: Option<&str>| {
            let mut claims = json!({"email": "kirk@example.com", "email_verified": true});
            if let Some(hd) = hd {
                claims["hd"] = hd.into();
            }
            google.admit(&token(claims))
        };
        assert!(verified(Some("example.com")).is_ok());
        assert_eq!(verified(None), Err(NotAdmitted::NotWorkspaceAccount(None)));
        assert_eq!(
            verified(Some("other.org")),
            Err(NotAdmitted::NotWorkspaceAccount(Some("other.org".into())))
        );
    }

    #[test]
    fn issuers_client_ids_domains_and_nonces_are_checked() {
        assert!(issuer("issuer", "https://acme.okta.com", Provider::Okta).is_ok());
        assert!(issuer("issuer", "http://acme.okta.com", Provider::Okta).is_err());
        assert!(issuer("issuer", "https://acme.okta.com?x=1", Provider::Okta).is_err());
        assert!(
            issuer(
                "issuer",
                "https://accounts.google.com",
                Provider::GoogleWorkspace
            )
            .is_ok()
        );
        assert!(
            issuer(
                "issuer",
                "https://evil.example.com",
                Provider::GoogleWorkspace
            )
            .is_err()
        );
        assert!(
            issuer(
                "issuer",
                "https://login.microsoftonline.com/common/v2.0",
                Provider::MicrosoftEntraId
            )
            .is_err()
        );
        assert!(
            issuer(
                "issuer",
                "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
                Provider::MicrosoftEntraId
            )
            .is_ok()
        );
        assert!(client_id("client_id", "0oa1b2 c3").is_err());
        assert_eq!(
            allowed_domains(
                "d",
                &["Example.COM".into(), "@example.com".into(), "b.io".into()]
            ),
            Ok(vec!["b.io".to_owned(), "example.com".to_owned()])
        );
        assert!(allowed_domains("d", &["localhost".into()]).is_err());
        assert!(allowed_domains("d", &["exa mple.com".into()]).is_err());
        assert!(nonce("nonce", "").is_err());
        assert!(nonce("nonce", &"n".repeat(257)).is_err());
        assert!(jwks("jwks", "").is_err());
        assert!(jwks("jwks", "{\"keys\": []}").is_err());
    }
}
