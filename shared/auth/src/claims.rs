//! The JWT payload as it travels on the wire, and the rules it must satisfy.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::principal::{PrincipalKind, WorkspaceScope};

/// The `workspaces` entry that grants every workspace. Only service tokens may carry it, and
/// then as the only entry.
pub const ALL_WORKSPACES: &str = "*";

/// Claims of a Roster access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Agent id or service name.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Issue time, unix seconds.
    pub iat: i64,
    /// Token id (a UUID), for audit trails and revocation lists.
    pub jti: String,
    pub kind: PrincipalKind,
    /// Workspace ids, or `["*"]` (service tokens only) for every workspace.
    pub workspaces: Vec<String>,
    /// `admin`, `agent`, `viewer` or a custom role name.
    pub role: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

impl Claims {
    /// Checks the rules the JWT library cannot express. Minting runs the same check as
    /// verification so the staff service never hands out a token every verifier refuses.
    ///
    /// The error is a fixed sentence, safe to show to a client.
    pub(crate) fn check(&self) -> Result<WorkspaceScope, &'static str> {
        if self.sub.is_empty() {
            return Err("`sub` is empty");
        }
        if self.role.is_empty() {
            return Err("`role` is empty");
        }
        if self.jti.is_empty() {
            return Err("`jti` is empty");
        }
        if self.exp < self.iat {
            return Err("`exp` is before `iat`");
        }
        if self.permissions.iter().any(String::is_empty) {
            return Err("`permissions` contains an empty entry");
        }
        workspace_scope(self.kind, &self.workspaces)
    }
}

fn workspace_scope(
    kind: PrincipalKind,
    workspaces: &[String],
) -> Result<WorkspaceScope, &'static str> {
    if workspaces.iter().any(|w| w == ALL_WORKSPACES) {
        if workspaces.len() != 1 {
            return Err("`*` must be the only entry of `workspaces`");
        }
        return match kind {
            PrincipalKind::Service => Ok(WorkspaceScope::All),
            PrincipalKind::Agent => Err("agent tokens cannot grant every workspace (`*`)"),
        };
    }
    if workspaces.iter().any(String::is_empty) {
        return Err("`workspaces` contains an empty id");
    }
    Ok(WorkspaceScope::Only(
        workspaces.iter().cloned().collect::<BTreeSet<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: PrincipalKind, workspaces: &[&str]) -> Claims {
        Claims {
            iss: "roster-staff".into(),
            aud: "roster".into(),
            sub: "agent-1".into(),
            exp: 200,
            iat: 100,
            jti: "id".into(),
            kind,
            workspaces: workspaces.iter().map(|w| (*w).to_owned()).collect(),
            role: "agent".into(),
            permissions: vec![],
        }
    }

    #[test]
    fn star_is_every_workspace_for_services_only() {
        assert_eq!(
            claims(PrincipalKind::Service, &["*"]).check(),
            Ok(WorkspaceScope::All)
        );
        assert!(claims(PrincipalKind::Agent, &["*"]).check().is_err());
        assert!(
            claims(PrincipalKind::Service, &["*", "w1"])
                .check()
                .is_err()
        );
    }

    #[test]
    fn listed_workspaces_become_a_set() {
        let scope = claims(PrincipalKind::Agent, &["w2", "w1", "w2"]).check();
        assert_eq!(
            scope,
            Ok(WorkspaceScope::Only(
                ["w1", "w2"].iter().map(|w| (*w).to_owned()).collect()
            ))
        );
    }

    #[test]
    fn kind_serializes_lowercase() -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(claims(PrincipalKind::Service, &["*"]))?;
        assert_eq!(json["kind"], "service");
        Ok(())
    }

    #[test]
    fn missing_permissions_default_to_none() -> Result<(), serde_json::Error> {
        let json = r#"{"iss":"i","aud":"a","sub":"s","exp":2,"iat":1,"jti":"j",
            "kind":"agent","workspaces":["w"],"role":"viewer"}"#;
        let parsed: Claims = serde_json::from_str(json)?;
        assert!(parsed.permissions.is_empty());
        Ok(())
    }
}
