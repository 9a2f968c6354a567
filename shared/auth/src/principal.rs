//! Who is calling, as established by a verified token, and how handlers read it back.

use std::collections::BTreeSet;

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

/// The workspaces a principal may act in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkspaceScope {
    /// Every workspace (`["*"]`, service tokens only).
    All,
    Only(BTreeSet<String>),
}

impl WorkspaceScope {
    pub fn contains(&self, workspace_id: &str) -> bool {
        match self {
            WorkspaceScope::All => true,
            WorkspaceScope::Only(ids) => ids.contains(workspace_id),
        }
    }
}

/// The verified caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Agent id or service name (`sub`).
    pub subject: String,
    pub kind: PrincipalKind,
    pub workspaces: WorkspaceScope,
    pub role: String,
    pub permissions: BTreeSet<String>,
    /// `jti`, for audit records.
    pub token_id: String,
    /// Token expiry, unix seconds.
    pub expires_at: i64,
}

/// Role whose holder has every permission within its workspaces.
const ADMIN_ROLE: &str = "admin";

impl Principal {
    pub(crate) fn from_claims(claims: Claims) -> Result<Principal, &'static str> {
        let workspaces = claims.check()?;
        Ok(Principal {
            subject: claims.sub,
            kind: claims.kind,
            workspaces,
            role: claims.role,
            permissions: claims.permissions.into_iter().collect(),
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }

    pub fn can_access_workspace(&self, workspace_id: &str) -> bool {
        self.workspaces.contains(workspace_id)
    }

    pub fn is_admin(&self) -> bool {
        self.role == ADMIN_ROLE
    }

    /// Admins hold every permission. This says nothing about workspaces: check
    /// [`Principal::can_access_workspace`] as well.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.is_admin() || self.permissions.contains(permission)
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

    fn principal_with(role: &str, permissions: &[&str], scope: WorkspaceScope) -> Principal {
        Principal {
            subject: "agent-7".into(),
            kind: PrincipalKind::Agent,
            workspaces: scope,
            role: role.into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            token_id: "t".into(),
            expires_at: 0,
        }
    }

    fn only(ids: &[&str]) -> WorkspaceScope {
        WorkspaceScope::Only(ids.iter().map(|w| (*w).to_owned()).collect())
    }

    #[test]
    fn admin_has_every_permission() {
        let admin = principal_with("admin", &[], only(&["w1"]));
        assert!(admin.is_admin());
        assert!(admin.has_permission("end_users.erase"));
        assert!(admin.has_permission("workspace.manage"));
    }

    #[test]
    fn others_have_only_listed_permissions() {
        let agent = principal_with("agent", &["end_users.write"], only(&["w1"]));
        assert!(!agent.is_admin());
        assert!(agent.has_permission("end_users.write"));
        assert!(!agent.has_permission("end_users.delete"));
        let custom = principal_with("Admin", &[], only(&["w1"]));
        assert!(!custom.is_admin(), "role names are case-sensitive");
    }

    #[test]
    fn workspace_access_follows_scope() {
        let agent = principal_with("admin", &[], only(&["w1", "w2"]));
        assert!(agent.can_access_workspace("w1"));
        assert!(!agent.can_access_workspace("w3"));
        let mut service = principal_with("agent", &[], WorkspaceScope::All);
        service.kind = PrincipalKind::Service;
        assert!(service.can_access_workspace("anything"));
        assert_eq!(service.actor_kind(), "service");
        assert_eq!(agent.actor_kind(), "agent");
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
        let stored = principal_with("viewer", &[], only(&["w1"]));
        request.extensions_mut().insert(stored.clone());
        assert_eq!(principal_of(&request).ok(), Some(stored));
    }
}
