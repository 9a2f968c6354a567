//! Who is calling, as established by a verified token, and how handlers read it back.

use std::collections::{BTreeMap, BTreeSet};

use roster_core::{Actor, RequestContext};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::claims::Claims;

/// Whether a token belongs to a person (support agent) or to an internal service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    Agent,
    Service,
}

impl PrincipalKind {
    /// `"agent"` or `"service"`, as in the `kind` claim and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Agent => "agent",
            PrincipalKind::Service => "service",
        }
    }
}

/// What a principal holds in one workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub role: String,
    pub permissions: BTreeSet<String>,
}

/// Role whose holder has every permission within its workspace.
const ADMIN_ROLE: &str = "admin";

impl Grant {
    pub fn is_admin(&self) -> bool {
        self.role == ADMIN_ROLE
    }

    /// Admins hold every permission.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.is_admin() || self.permissions.contains(permission)
    }
}

/// The workspaces a principal may act in, each with what it holds there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkspaceScope {
    /// Every workspace, with one grant (`{"*": …}`, service tokens only).
    All(Grant),
    Only(BTreeMap<String, Grant>),
}

impl WorkspaceScope {
    pub fn grant(&self, workspace_id: &str) -> Option<&Grant> {
        match self {
            WorkspaceScope::All(grant) => Some(grant),
            WorkspaceScope::Only(grants) => grants.get(workspace_id),
        }
    }
}

/// The verified caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Agent id, service account id or service name (`sub`).
    pub subject: String,
    pub kind: PrincipalKind,
    pub workspaces: WorkspaceScope,
    /// `jti`, for audit records.
    pub token_id: String,
    /// Token issue time, unix seconds.
    pub issued_at: i64,
    /// Token expiry, unix seconds.
    pub expires_at: i64,
    /// The subject's token generation when the token was issued (`gen`).
    pub generation: u64,
}

impl Principal {
    pub(crate) fn from_claims(claims: Claims) -> Result<Principal, &'static str> {
        let workspaces = claims.check()?;
        Ok(Principal {
            subject: claims.sub,
            kind: claims.kind,
            workspaces,
            token_id: claims.jti,
            issued_at: claims.iat,
            expires_at: claims.exp,
            generation: claims.generation,
        })
    }

    /// What the principal holds in `workspace_id`; `None`: it may not act there at all.
    pub fn grant(&self, workspace_id: &str) -> Option<&Grant> {
        self.workspaces.grant(workspace_id)
    }

    pub fn can_access_workspace(&self, workspace_id: &str) -> bool {
        self.grant(workspace_id).is_some()
    }

    /// `"agent"` or `"service"`, for audit records.
    pub fn actor_kind(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The actor this principal's changes in the request `context` are recorded under.
    pub fn actor(&self, context: RequestContext) -> Actor {
        Actor {
            kind: self.actor_kind().to_owned(),
            id: self.subject.clone(),
            context,
        }
    }
}

/// The principal the [`crate::TokenVerifier::interceptor`] stored in a request's extensions.
///
/// A missing principal means the service was wired without the interceptor; the caller gets
/// UNAUTHENTICATED rather than being served anonymously.
pub fn principal(request_extensions: &tonic::Extensions) -> Result<&Principal, Status> {
    request_extensions.get::<Principal>().ok_or_else(|| {
        tracing::error!("request reached a handler without a verified principal; is the auth interceptor installed?");
        crate::error::unauthenticated("TOKEN_MISSING", "request carries no verified access token")
    })
}

/// Like [`principal`], for handlers holding the whole request.
pub fn principal_of<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
    principal(request.extensions()).cloned()
}

/// The verified caller of a request and the actor its changes are recorded under, with the
/// request context the server runtime stored (an empty one when the request did not pass
/// through its layers).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<(Principal, Actor), Status> {
    let principal = principal_of(request)?;
    let context = request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_default();
    let actor = principal.actor(context);
    Ok((principal, actor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: &str, permissions: &[&str]) -> Grant {
        Grant {
            role: role.into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn agent_in(grants: &[(&str, Grant)]) -> Principal {
        Principal {
            subject: "agent-7".into(),
            kind: PrincipalKind::Agent,
            workspaces: WorkspaceScope::Only(
                grants
                    .iter()
                    .map(|(w, g)| ((*w).to_owned(), g.clone()))
                    .collect(),
            ),
            token_id: "t".into(),
            issued_at: 0,
            expires_at: 0,
            generation: 0,
        }
    }

    #[test]
    fn admin_has_every_permission() {
        let admin = grant("admin", &[]);
        assert!(admin.is_admin());
        assert!(admin.has_permission("end_users.erase"));
        assert!(admin.has_permission("workspace.manage"));
    }

    #[test]
    fn others_have_only_listed_permissions() {
        let agent = grant("agent", &["end_users.write"]);
        assert!(!agent.is_admin());
        assert!(agent.has_permission("end_users.write"));
        assert!(!agent.has_permission("end_users.delete"));
        assert!(
            !grant("Admin", &[]).is_admin(),
            "role names are case-sensitive"
        );
    }

    #[test]
    fn each_workspace_answers_with_its_own_grant() {
        let agent = agent_in(&[("w1", grant("admin", &[])), ("w2", grant("viewer", &[]))]);
        assert!(agent.grant("w1").is_some_and(Grant::is_admin));
        assert!(
            agent
                .grant("w2")
                .is_some_and(|g| !g.has_permission("end_users.write"))
        );
        assert!(!agent.can_access_workspace("w3"));
        assert_eq!(agent.actor_kind(), "agent");
    }

    #[test]
    fn every_workspace_scope_grants_the_same_everywhere() {
        let mut service = agent_in(&[]);
        service.kind = PrincipalKind::Service;
        service.workspaces = WorkspaceScope::All(grant("service", &["end_users.write"]));
        assert!(service.can_access_workspace("anything"));
        assert!(
            service
                .grant("w9")
                .is_some_and(|g| g.has_permission("end_users.write"))
        );
        assert_eq!(service.actor_kind(), "service");
    }

    #[test]
    fn absent_principal_is_unauthenticated() {
        let request = tonic::Request::new(());
        let status = principal_of(&request).err().map(|s| s.code());
        assert_eq!(status, Some(tonic::Code::Unauthenticated));
    }

    #[test]
    fn stored_principal_is_returned() {
        let mut request = tonic::Request::new(());
        let stored = agent_in(&[("w1", grant("viewer", &[]))]);
        request.extensions_mut().insert(stored.clone());
        assert_eq!(principal_of(&request).ok(), Some(stored));
    }
}
