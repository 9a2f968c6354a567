//! Who may call what, decided here and nowhere else, from the caller's token: the need of
//! every RPC and the public method.

use roster_auth::catalogues::{
    AUDIT_LOG_APPEND, AUDIT_LOG_ERASE, AUDIT_LOG_MANAGE, AUDIT_LOG_VIEW,
};
use roster_auth::{
    Grant, Permission, PermissionCatalogue, Principal, PrincipalKind, WorkspaceScope,
};

use crate::error::{AuditError, Result, reason};

/// The audit service's permissions (kept with every service's in `roster_auth::catalogues`).
pub const PERMISSIONS: PermissionCatalogue = roster_auth::catalogues::AUDIT;

/// What an RPC needs from the caller in the workspace it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Reading the log: the admin role, or `audit_log.view`, whatever the role (a viewer
    /// given it is an auditor).
    View,
    /// Deciding what the log forgets (retention, legal holds): the admin role, or
    /// `audit_log.manage`.
    Manage,
    /// What producers do (append; erase a person they erased): a service token that names
    /// the permission. Agents never may, and no role implies it (an admin service token
    /// without it may not either): a producer's token says what it produces.
    Producer(&'static Permission),
}

/// Callable without a token: the log's public key, which verifiers pin.
pub const PUBLIC_METHODS: &[&str] = &["/roster.audit.v1.AuditService/GetLogKey"];

/// Every RPC but the public one, with its need: the table the handlers use and the
/// authorization matrix tests.
pub const NEEDS: &[(&str, Need)] = &[
    ("AppendEvents", Need::Producer(&AUDIT_LOG_APPEND)),
    ("EraseSubject", Need::Producer(&AUDIT_LOG_ERASE)),
    ("ListEvents", Need::View),
    ("GetEvent", Need::View),
    ("WatchEvents", Need::View),
    ("GetCheckpoint", Need::View),
    ("GetInclusionProof", Need::View),
    ("GetConsistencyProof", Need::View),
    ("VerifyLog", Need::View),
    ("GetRetention", Need::View),
    ("SetRetention", Need::Manage),
    ("PlaceLegalHold", Need::Manage),
    ("ReleaseLegalHold", Need::Manage),
];

pub fn need(method: &str) -> Result<Need> {
    NEEDS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, need)| *need)
        .ok_or_else(|| AuditError::Internal(format!("no authorization rule for {method}")))
}

fn grant<'a>(principal: &'a Principal, workspace_id: &str) -> Result<&'a Grant> {
    principal.grant(workspace_id).ok_or_else(|| {
        AuditError::permission_denied(
            reason::WORKSPACE_NOT_GRANTED,
            format!("the access token does not grant workspace '{workspace_id}'"),
        )
    })
}

/// Producers' calls are for the platform's own services (their outbox relays), whose
/// tokens cover every workspace: checked before anything of the request is read. A
/// workspace's service account is refused even if it names the permission, since an admin
/// can create one, and a log its tenant can write to proves nothing about that tenant.
pub fn require_service(principal: &Principal) -> Result<()> {
    if principal.kind == PrincipalKind::Service
        && matches!(principal.workspaces, WorkspaceScope::All(_))
    {
        Ok(())
    } else {
        Err(AuditError::permission_denied(
            reason::NOT_A_SERVICE,
            "only a producing platform service's token (one for every workspace) may write to an audit log",
        ))
    }
}

/// The caller's right to call `method` in `workspace_id`.
pub fn authorize(principal: &Principal, workspace_id: &str, method: &str) -> Result<()> {
    match need(method)? {
        Need::View => {
            let grant = grant(principal, workspace_id)?;
            if grant.is_admin() || grant.permissions.contains(AUDIT_LOG_VIEW.name) {
                Ok(())
            } else {
                Err(AuditError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "reading the audit log needs the '{}' permission (or the admin role); the token's role in workspace '{workspace_id}' is '{}'",
                        AUDIT_LOG_VIEW.name, grant.role
                    ),
                ))
            }
        }
        Need::Manage => {
            let grant = grant(principal, workspace_id)?;
            if grant.is_admin() || grant.permissions.contains(AUDIT_LOG_MANAGE.name) {
                Ok(())
            } else {
                Err(AuditError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "retention and legal holds need the '{}' permission (or the admin role); the token's role in workspace '{workspace_id}' is '{}'",
                        AUDIT_LOG_MANAGE.name, grant.role
                    ),
                ))
            }
        }
        Need::Producer(permission) => {
            require_service(principal)?;
            let grant = grant(principal, workspace_id)?;
            // Named outright: an admin grant does not imply it.
            if grant.permissions.contains(permission.name) {
                Ok(())
            } else {
                Err(AuditError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "this call in workspace '{workspace_id}' needs a service token that names '{}'",
                        permission.name
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn principal(kind: PrincipalKind, role: &str, permissions: &[&str]) -> Principal {
        Principal {
            subject: "s".into(),
            kind,
            workspaces: WorkspaceScope::Only(
                [(
                    "w".to_owned(),
                    Grant {
                        role: role.into(),
                        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    },
                )]
                .into(),
            ),
            token_id: "t".into(),
            issued_at: 0,
            expires_at: 0,
            generation: 0,
        }
    }

    #[test]
    fn the_catalogue_is_sound_and_names_what_authorization_checks() {
        assert_eq!(PERMISSIONS.problems(), Vec::<String>::new());
        assert_eq!(PERMISSIONS.get("audit_log.view"), Some(&AUDIT_LOG_VIEW));
        assert_eq!(PERMISSIONS.get("audit_log.append"), Some(&AUDIT_LOG_APPEND));
        assert_eq!(PERMISSIONS.get("audit_log.erase"), Some(&AUDIT_LOG_ERASE));
    }

    fn platform(kind: PrincipalKind, permissions: &[&str]) -> Principal {
        Principal {
            workspaces: WorkspaceScope::All(Grant {
                role: "service".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            }),
            ..principal(kind, "service", permissions)
        }
    }

    #[test]
    fn appending_is_for_platform_services_naming_the_permission() {
        let append = |p: &Principal| authorize(p, "w", "AppendEvents").is_ok();
        let producer = platform(PrincipalKind::Service, &["audit_log.append"]);
        assert!(append(&producer));
        assert!(!append(&platform(PrincipalKind::Service, &[])));
        assert!(!append(&platform(
            PrincipalKind::Agent,
            &["audit_log.append"]
        )));
        // A workspace's own service account (an admin can make one) may not write its log.
        assert!(!append(&principal(
            PrincipalKind::Service,
            "service",
            &["audit_log.append"]
        )));
        assert!(!append(&principal(PrincipalKind::Service, "admin", &[])));
        assert!(
            authorize(&producer, "w", "ListEvents").is_err(),
            "appending is not reading"
        );
    }

    #[test]
    fn reading_is_for_admins_and_holders_of_the_view_permission() {
        let view = |p: &Principal| authorize(p, "w", "VerifyLog").is_ok();
        assert!(view(&principal(PrincipalKind::Agent, "admin", &[])));
        assert!(view(&principal(
            PrincipalKind::Agent,
            "viewer",
            &["audit_log.view"]
        )));
        assert!(!view(&principal(
            PrincipalKind::Agent,
            "agent",
            &["end_users.write"]
        )));
        assert!(authorize(&principal(PrincipalKind::Agent, "admin", &[]), "w", "Nope").is_err());
    }
}
