//! The JWT payload as it travels on the wire, and the rules it must satisfy.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::principal::{Grant, PrincipalKind, WorkspaceScope};

/// The `workspaces` key that grants every workspace. Only service tokens may carry it, and
/// then as the only key.
pub const ALL_WORKSPACES: &str = "*";

/// What a token holds in one workspace: an agent may be `admin` in one workspace and
/// `viewer` in another, so role and permissions are per workspace rather than per token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceAccess {
    /// `admin`, `agent`, `viewer` or a custom role name.
    pub role: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

impl WorkspaceAccess {
    pub fn new(role: &str, permissions: &[&str]) -> Self {
        Self {
            role: role.to_owned(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// Claims of a Roster access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Agent id, service account id or service name.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Issue time, unix seconds.
    pub iat: i64,
    /// Not valid before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id (a UUID), for audit trails.
    pub jti: String,
    pub kind: PrincipalKind,
    /// Workspace id → what the token holds there; `{"*": …}` (service tokens only) for
    /// every workspace.
    pub workspaces: BTreeMap<String, WorkspaceAccess>,
    /// The subject's token generation when the token was issued. Revoking a subject's
    /// tokens raises the generation verifiers accept, which refuses exactly the tokens
    /// issued before, whatever the clocks say.
    #[serde(default, rename = "gen")]
    pub generation: u64,
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
        if self.jti.is_empty() {
            return Err("`jti` is empty");
        }
        if self.exp < self.iat {
            return Err("`exp` is before `iat`");
        }
        if self.nbf.is_some_and(|nbf| nbf > self.exp) {
            return Err("`nbf` is after `exp`");
        }
        workspace_scope(self.kind, &self.workspaces)
    }
}

fn workspace_scope(
    kind: PrincipalKind,
    workspaces: &BTreeMap<String, WorkspaceAccess>,
) -> Result<WorkspaceScope, &'static str> {
    if workspaces.is_empty() {
        return Err("`workspaces` is empty");
    }
    for (workspace, access) in workspaces {
        if workspace.is_empty() {
            return Err("`workspaces` contains an empty id");
        }
        if access.role.is_empty() {
            return Err("a workspace's `role` is empty");
        }
        if access.permissions.iter().any(String::is_empty) {
            return Err("a workspace's `permissions` contains an empty entry");
        }
    }
    if let Some(access) = workspaces.get(ALL_WORKSPACES) {
        if workspaces.len() != 1 {
            return Err("`*` must be the only key of `workspaces`");
        }
        return match kind {
            PrincipalKind::Service => Ok(WorkspaceScope::All(grant(access))),
            PrincipalKind::Agent => Err("agent tokens cannot grant every workspace (`*`)"),
        };
    }
    Ok(WorkspaceScope::Only(
        workspaces
            .iter()
            .map(|(workspace, access)| (workspace.clone(), grant(access)))
            .collect(),
    ))
}

fn grant(access: &WorkspaceAccess) -> Grant {
    Grant {
        role: access.role.clone(),
        permissions: access.permissions.iter().cloned().collect::<BTreeSet<_>>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: PrincipalKind, workspaces: &[(&str, &str)]) -> Claims {
        Claims {
            iss: "roster-staff".into(),
            aud: "roster".into(),
            sub: "agent-1".into(),
            exp: 200,
            iat: 100,
            nbf: None,
            jti: "id".into(),
            kind,
            workspaces: workspaces
                .iter()
                .map(|(w, role)| ((*w).to_owned(), WorkspaceAccess::new(role, &[])))
                .collect(),
            generation: 0,
        }
    }

    #[test]
    fn star_is_every_workspace_for_services_only() {
        assert!(matches!(
            claims(PrincipalKind::Service, &[("*", "service")]).check(),
            Ok(WorkspaceScope::All(grant)) if grant.role == "service"
        ));
        assert!(
            claims(PrincipalKind::Agent, &[("*", "admin")])
                .check()
                .is_err()
        );
        assert!(
            claims(PrincipalKind::Service, &[("*", "service"), ("w1", "admin")])
                .check()
                .is_err()
        );
    }

    #[test]
    fn each_workspace_keeps_its_own_role() -> Result<(), String> {
        let scope = claims(PrincipalKind::Agent, &[("w2", "viewer"), ("w1", "admin")]).check();
        let grants = match scope {
            Ok(WorkspaceScope::Only(grants)) => grants,
            other => return Err(format!("expected listed workspaces, got {other:?}")),
        };
        assert_eq!(grants.len(), 2);
        assert_eq!(grants.get("w1").map(|g| g.role.as_str()), Some("admin"));
        assert_eq!(grants.get("w2").map(|g| g.role.as_str()), Some("viewer"));
        Ok(())
    }

    #[test]
    fn empty_roles_ids_and_scopes_are_refused() {
        assert!(claims(PrincipalKind::Agent, &[]).check().is_err());
        assert!(
            claims(PrincipalKind::Agent, &[("", "admin")])
                .check()
                .is_err()
        );
        assert!(claims(PrincipalKind::Agent, &[("w1", "")]).check().is_err());
        let mut late_start = claims(PrincipalKind::Agent, &[("w1", "agent")]);
        late_start.nbf = Some(201);
        assert!(late_start.check().is_err());
    }

    #[test]
    fn kind_and_generation_serialize_as_claims() -> Result<(), serde_json::Error> {
        let mut claims = claims(PrincipalKind::Service, &[("*", "service")]);
        claims.generation = 3;
        let json = serde_json::to_value(claims)?;
        assert_eq!(json["kind"], "service");
        assert_eq!(json["gen"], 3);
        assert_eq!(json["workspaces"]["*"]["role"], "service");
        assert!(json.get("nbf").is_none(), "absent nbf is not written");
        Ok(())
    }

    #[test]
    fn missing_permissions_and_generation_default_to_none() -> Result<(), serde_json::Error> {
        let json = r#"{"iss":"i","aud":"a","sub":"s","exp":2,"iat":1,"jti":"j",
            "kind":"agent","workspaces":{"w":{"role":"viewer"}}}"#;
        let parsed: Claims = serde_json::from_str(json)?;
        assert!(parsed.workspaces["w"].permissions.is_empty());
        assert_eq!(parsed.generation, 0);
        Ok(())
    }
}
