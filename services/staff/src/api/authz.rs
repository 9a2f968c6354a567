//! Who may call what, decided here and nowhere else, from the caller's token: the need of
//! every RPC, the public methods, and what the caller may grant (nobody grants a role,
//! team permission or extra permission they do not hold: [`granter`] builds the
//! `domain::access::Granter` the service checks each grant against, inside the change's
//! transaction, once the role or team granted is read).

use roster_auth::{
    Grant, Permission, PermissionCatalogue, Principal, PrincipalKind, WorkspaceScope,
};
use uuid::Uuid;

use crate::domain::Role;
use crate::domain::access::Granter;
use crate::error::{Result, StaffError, reason};

/// The staff service's permissions (kept with every service's in `roster_auth::catalogues`).
pub const PERMISSIONS: PermissionCatalogue = roster_auth::catalogues::STAFF;

/// What an RPC needs from the caller beyond access to the request's workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any role in the workspace.
    Read,
    /// A role that may write (not a viewer) holding this permission; admins hold all.
    Write(&'static Permission),
    /// An agent's own token (its subject is the agent id), any role.
    OwnAgent,
    /// Like `Write` of the permission, or the token of the agent the call is about.
    WriteOrAboutSelf(&'static Permission),
    /// A platform operation, in no workspace: a service token for every workspace (`*`)
    /// that names this permission itself (no role implies it), never an agent's token.
    Platform(&'static Permission),
}

pub const STAFF_MANAGE: Need = Need::Write(&PERMISSIONS.permissions[0]);
pub const SEATS_MANAGE: Need = Need::Write(&PERMISSIONS.permissions[1]);
pub const SIGNING_KEYS_ROTATE: Need = Need::Platform(&roster_auth::catalogues::SIGNING_KEYS_ROTATE);
pub const ROLES_MANAGE: Need = Need::Write(&roster_auth::catalogues::ROLES_MANAGE);
pub const SSO_MANAGE: Need = Need::Write(&roster_auth::catalogues::SSO_MANAGE);

/// Methods callable without an access token: the credential is in the request (an
/// invitation secret, a password, an identity provider's ID token, a refresh token, a
/// client secret), or the method serves
/// every verifier the token plumbing (GetJwks's public keys, WatchRevocations' subjects and
/// generations, nothing secret).
pub const PUBLIC_METHODS: &[&str] = &[
    "/roster.staff.v1.StaffService/AcceptInvitation",
    "/roster.staff.v1.StaffService/Login",
    "/roster.staff.v1.StaffService/SsoLogin",
    "/roster.staff.v1.StaffService/RefreshToken",
    "/roster.staff.v1.StaffService/Logout",
    "/roster.staff.v1.StaffService/IssueServiceToken",
    "/roster.staff.v1.StaffService/WatchRevocations",
    "/roster.staff.v1.StaffService/GetJwks",
];

/// Every RPC but the public ones, with its need: the table the handlers use and the
/// authorization matrix tests.
pub const NEEDS: &[(&str, Need)] = &[
    ("InviteAgent", STAFF_MANAGE),
    ("ResendInvitation", STAFF_MANAGE),
    ("RevokeInvitation", STAFF_MANAGE),
    ("ListInvitations", STAFF_MANAGE),
    ("GetAgent", Need::Read),
    ("ListAgents", Need::Read),
    ("UpdateAgent", STAFF_MANAGE),
    ("UpdateMyProfile", Need::OwnAgent),
    ("DeactivateAgent", STAFF_MANAGE),
    ("ReactivateAgent", STAFF_MANAGE),
    ("EraseAgent", STAFF_MANAGE),
    ("BulkInviteAgents", STAFF_MANAGE),
    ("BulkUpdateAgents", STAFF_MANAGE),
    ("BulkDeactivateAgents", STAFF_MANAGE),
    ("CreateTeam", STAFF_MANAGE),
    ("ListTeams", Need::Read),
    ("SetSeatLimit", SEATS_MANAGE),
    ("GetWorkspaceUsage", Need::Read),
    (
        "ListLoginHistory",
        Need::WriteOrAboutSelf(&PERMISSIONS.permissions[0]),
    ),
    ("CreateServiceAccount", STAFF_MANAGE),
    ("ListServiceAccounts", STAFF_MANAGE),
    ("RotateServiceAccountSecret", STAFF_MANAGE),
    ("RevokeServiceAccount", STAFF_MANAGE),
    ("RotateSigningKey", SIGNING_KEYS_ROTATE),
    ("ListPermissions", Need::Read),
    ("CreateRole", ROLES_MANAGE),
    ("GetRole", Need::Read),
    ("UpdateRole", ROLES_MANAGE),
    ("DeleteRole", ROLES_MANAGE),
    ("ListRoles", Need::Read),
    ("GetTeam", Need::Read),
    ("UpdateTeam", STAFF_MANAGE),
    ("DeleteTeam", STAFF_MANAGE),
    ("AddTeamMembers", STAFF_MANAGE),
    ("RemoveTeamMembers", STAFF_MANAGE),
    ("ListTeamMembers", Need::Read),
    ("GetEffectivePermissions", Need::Read),
    ("ExplainAccess", Need::Read),
    ("CreateSsoConnection", SSO_MANAGE),
    // Nothing in a connection is secret, and a login page lists them.
    ("GetSsoConnection", Need::Read),
    ("ListSsoConnections", Need::Read),
    ("UpdateSsoConnection", SSO_MANAGE),
    ("DeleteSsoConnection", SSO_MANAGE),
    ("TestSsoConnection", SSO_MANAGE),
];

/// The need of `method` (its short name) from [`NEEDS`].
pub fn need(method: &str) -> Result<Need> {
    NEEDS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, need)| *need)
        .ok_or_else(|| StaffError::Internal(format!("no authorization rule for {method}")))
}

/// What the caller holds in `workspace_id`, or PERMISSION_DENIED when its token does not
/// grant that workspace at all.
fn grant<'a>(principal: &'a Principal, workspace_id: &str) -> Result<&'a Grant> {
    principal.grant(workspace_id).ok_or_else(|| {
        StaffError::permission_denied(
            reason::WORKSPACE_NOT_GRANTED,
            format!("the access token does not grant workspace '{workspace_id}'"),
        )
    })
}

pub fn authorize(principal: &Principal, workspace_id: &str, method: &str) -> Result<()> {
    authorize_about(principal, workspace_id, method, None)
}

/// [`authorize`] for a call about one agent, which `WriteOrAboutSelf` lets that agent make.
pub fn authorize_about(
    principal: &Principal,
    workspace_id: &str,
    method: &str,
    about: Option<Uuid>,
) -> Result<()> {
    super::denials::note_workspace(workspace_id, method);
    let grant = grant(principal, workspace_id)?;
    let need = match need(method)? {
        Need::WriteOrAboutSelf(_) if about.is_some() && caller_agent(principal) == about => {
            return Ok(());
        }
        Need::WriteOrAboutSelf(permission) => Need::Write(permission),
        need => need,
    };
    match need {
        Need::Read => Ok(()),
        Need::OwnAgent => own_agent(principal).map(|_| ()),
        Need::Platform(_) => Err(StaffError::Internal(format!(
            "{method} is a platform method, authorized without a workspace"
        ))),
        Need::WriteOrAboutSelf(permission) | Need::Write(permission) => {
            if grant.is_admin()
                || (grant.role != Role::Viewer.as_str() && grant.has_permission(permission.name))
            {
                Ok(())
            } else {
                Err(StaffError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "this call needs the '{}' permission (or the admin role); the token's role in workspace '{workspace_id}' is '{}'",
                        permission.name, grant.role
                    ),
                ))
            }
        }
    }
}

/// The caller's right to call `method`, a platform method (in no workspace).
pub fn authorize_platform(principal: &Principal, method: &str) -> Result<()> {
    super::denials::note_workspace(crate::service::keys::PLATFORM_WORKSPACE, method);
    let Need::Platform(permission) = need(method)? else {
        return Err(StaffError::Internal(format!(
            "{method} is a workspace method, authorized with its workspace"
        )));
    };
    // Named outright: an admin-like grant does not imply a platform permission.
    if let WorkspaceScope::All(grant) = &principal.workspaces
        && principal.kind == PrincipalKind::Service
        && grant.permissions.contains(permission.name)
    {
        return Ok(());
    }
    Err(StaffError::permission_denied(
        reason::PERMISSION_MISSING,
        format!(
            "this call needs a service token for every workspace ('*') that lists the '{}' permission",
            permission.name
        ),
    ))
}

/// The agent an agent's token stands for: its subject is the agent id.
pub fn own_agent(principal: &Principal) -> Result<Uuid> {
    let not_an_agent = || {
        StaffError::permission_denied(
            reason::NOT_AN_AGENT,
            "only an agent's own access token can change the agent's profile",
        )
    };
    if principal.kind != PrincipalKind::Agent {
        return Err(not_an_agent());
    }
    Uuid::parse_str(&principal.subject).map_err(|_| not_an_agent())
}

/// The caller's own agent id, when the caller is an agent.
pub fn caller_agent(principal: &Principal) -> Option<Uuid> {
    own_agent(principal).ok()
}

/// What the caller holds in `workspace_id`, and so may grant there: its token's built-in
/// role's permissions (every permission for an admin) and the permissions the token lists.
pub fn granter(principal: &Principal, workspace_id: &str) -> Result<Granter> {
    let grant = grant(principal, workspace_id)?;
    let mut held = Role::parse(&grant.role)
        .map(Role::permissions)
        .unwrap_or_default();
    held.extend(grant.permissions.iter().cloned());
    Ok(Granter::new(grant.is_admin(), held))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn principal(role: &str, permissions: &[&str]) -> Principal {
        Principal {
            subject: Uuid::now_v7().to_string(),
            kind: PrincipalKind::Agent,
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
    fn the_catalogue_is_sound_and_every_need_names_what_it_says() {
        assert_eq!(PERMISSIONS.problems(), Vec::<String>::new());
        assert_eq!(
            Some(STAFF_MANAGE),
            PERMISSIONS.get("staff.manage").map(Need::Write)
        );
        assert_eq!(
            Some(SEATS_MANAGE),
            PERMISSIONS.get("seats.manage").map(Need::Write)
        );
        assert_eq!(
            Some(SIGNING_KEYS_ROTATE),
            PERMISSIONS.get("signing_keys.rotate").map(Need::Platform)
        );
        assert_eq!(
            Some(ROLES_MANAGE),
            PERMISSIONS.get("roles.manage").map(Need::Write)
        );
        assert_eq!(
            Some(SSO_MANAGE),
            PERMISSIONS.get("sso.manage").map(Need::Write)
        );
    }

    #[test]
    fn a_granter_holds_the_tokens_role_and_permissions_in_that_workspace() {
        use crate::domain::RoleGrant;
        let admin = granter(&principal("admin", &[]), "w").unwrap();
        assert!(
            admin
                .may_grant_role(&RoleGrant::built_in(Role::Admin))
                .is_ok()
        );
        let manager = granter(&principal("agent", &["staff.manage"]), "w").unwrap();
        assert!(
            manager
                .may_grant_role(&RoleGrant::built_in(Role::Agent))
                .is_ok()
        );
        assert!(
            manager
                .may_grant_role(&RoleGrant::built_in(Role::Admin))
                .is_err()
        );
        assert!(
            manager
                .may_grant(|| "x".into(), &["staff.manage".to_owned()])
                .is_ok()
        );
        assert!(
            manager
                .may_grant(|| "x".into(), &["seats.manage".to_owned()])
                .is_err()
        );
        let viewer_manager = granter(&principal("viewer", &["staff.manage"]), "w").unwrap();
        assert!(
            viewer_manager
                .may_grant_role(&RoleGrant::built_in(Role::Agent))
                .is_err(),
            "a viewer lacks the agent role's permissions"
        );
        let custom = granter(&principal("Team Lead", &["tickets.work"]), "w").unwrap();
        assert!(
            custom
                .may_grant(|| "x".into(), &["tickets.work".to_owned()])
                .is_ok()
        );
        assert!(granter(&principal("admin", &[]), "elsewhere").is_err());
    }

    #[test]
    fn only_a_service_for_every_workspace_naming_the_permission_rotates_keys() {
        let grant = |role: &str, permissions: &[&str]| Grant {
            role: role.into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        };
        let service = |workspaces: WorkspaceScope| Principal {
            kind: PrincipalKind::Service,
            workspaces,
            ..principal("service", &[])
        };
        let rotate = |p: &Principal| authorize_platform(p, "RotateSigningKey").is_ok();
        assert!(rotate(&service(WorkspaceScope::All(grant(
            "service",
            &["signing_keys.rotate"]
        )))));
        assert!(!rotate(&service(WorkspaceScope::All(grant("admin", &[])))));
        assert!(!rotate(&service(WorkspaceScope::Only(
            [("w".to_owned(), grant("service", &["signing_keys.rotate"]))].into()
        ))));
        assert!(!rotate(&principal("admin", &["signing_keys.rotate"])));
        assert!(authorize_platform(&principal("admin", &[]), "GetAgent").is_err());
        assert!(authorize(&principal("admin", &[]), "w", "RotateSigningKey").is_err());
    }
}
