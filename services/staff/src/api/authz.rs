//! Who may call what, decided here and nowhere else, from the caller's token: the need of
//! every RPC, the public methods, and the grant rules (nobody grants a role or permission
//! they do not hold).

use std::collections::BTreeSet;

use roster_auth::{Permission, PermissionCatalogue, Principal, PrincipalKind, WorkspaceScope};
use uuid::Uuid;

use crate::domain::Role;
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
    /// A platform operation, in no workspace: a service token for every workspace (`*`)
    /// that names this permission itself (no role implies it), never an agent's token.
    Platform(&'static Permission),
}

pub const STAFF_MANAGE: Need = Need::Write(&PERMISSIONS.permissions[0]);
pub const SEATS_MANAGE: Need = Need::Write(&PERMISSIONS.permissions[1]);
pub const SIGNING_KEYS_ROTATE: Need = Need::Platform(&PERMISSIONS.permissions[2]);

/// Methods callable without an access token: AcceptInvitation (the invitee has none yet;
/// the invitation secret is the credential) and GetJwks (verifiers fetch the public keys
/// that check tokens; nothing in them is secret).
pub const PUBLIC_METHODS: &[&str] = &[
    "/roster.staff.v1.StaffService/AcceptInvitation",
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
    ("CreateTeam", STAFF_MANAGE),
    ("ListTeams", Need::Read),
    ("SetSeatLimit", SEATS_MANAGE),
    ("GetWorkspaceUsage", Need::Read),
    ("RotateSigningKey", SIGNING_KEYS_ROTATE),
];

/// The need of `method` (its short name) from [`NEEDS`].
pub fn need(method: &str) -> Result<Need> {
    NEEDS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, need)| *need)
        .ok_or_else(|| StaffError::Internal(format!("no authorization rule for {method}")))
}

pub fn authorize(principal: &Principal, workspace_id: &str, method: &str) -> Result<()> {
    if !principal.can_access_workspace(workspace_id) {
        return Err(StaffError::permission_denied(
            reason::WORKSPACE_NOT_GRANTED,
            format!("the access token does not grant workspace '{workspace_id}'"),
        ));
    }
    match need(method)? {
        Need::Read => Ok(()),
        Need::OwnAgent => own_agent(principal).map(|_| ()),
        Need::Platform(_) => Err(StaffError::Internal(format!(
            "{method} is a platform method, authorized without a workspace"
        ))),
        Need::Write(permission) => {
            if principal.is_admin()
                || (principal.role != Role::Viewer.as_str()
                    && principal.has_permission(permission.name))
            {
                Ok(())
            } else {
                Err(StaffError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "this call needs the '{}' permission (or the admin role); the token's role is '{}'",
                        permission.name, principal.role
                    ),
                ))
            }
        }
    }
}

/// The caller's right to call `method`, a platform method (in no workspace).
pub fn authorize_platform(principal: &Principal, method: &str) -> Result<()> {
    let Need::Platform(permission) = need(method)? else {
        return Err(StaffError::Internal(format!(
            "{method} is a workspace method, authorized with its workspace"
        )));
    };
    let everywhere =
        principal.kind == PrincipalKind::Service && principal.workspaces == WorkspaceScope::All;
    if everywhere && principal.permissions.contains(permission.name) {
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

/// What the caller holds: everything for an admin, otherwise its built-in role's
/// permissions and the permissions its token lists.
fn held(principal: &Principal) -> BTreeSet<String> {
    let mut held = Role::parse(&principal.role)
        .map(Role::permissions)
        .unwrap_or_default();
    held.extend(principal.permissions.iter().cloned());
    held
}

/// Nobody grants a role or permission they do not hold: `role` only if the caller holds
/// every permission it carries (the admin role only by an admin), each of `extra` only if
/// the caller holds it.
pub fn check_grants(principal: &Principal, role: Option<Role>, extra: &[String]) -> Result<()> {
    if principal.is_admin() {
        return Ok(());
    }
    let held = held(principal);
    if let Some(role) = role {
        let missing: Vec<_> = role
            .permissions()
            .into_iter()
            .filter(|p| !held.contains(p))
            .collect();
        if role == Role::Admin || !missing.is_empty() {
            return Err(StaffError::permission_denied(
                reason::GRANT_NOT_HELD,
                format!(
                    "granting the '{}' role needs holding it; the token lacks {}",
                    role.as_str(),
                    if role == Role::Admin {
                        "the admin role".to_owned()
                    } else {
                        missing.join(", ")
                    }
                ),
            ));
        }
    }
    let missing: Vec<_> = extra
        .iter()
        .filter(|p| !held.contains(*p))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(StaffError::permission_denied(
            reason::GRANT_NOT_HELD,
            format!(
                "granting a permission needs holding it; the token lacks {}",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: &str, permissions: &[&str]) -> Principal {
        Principal {
            subject: Uuid::now_v7().to_string(),
            kind: PrincipalKind::Agent,
            workspaces: WorkspaceScope::Only(["w".to_owned()].into()),
            role: role.into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            token_id: "t".into(),
            expires_at: 0,
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
    }

    #[test]
    fn grants_need_holding_what_is_granted() {
        let admin = principal("admin", &[]);
        assert!(check_grants(&admin, Some(Role::Admin), &["seats.manage".into()]).is_ok());
        let manager = principal("agent", &["staff.manage"]);
        assert!(check_grants(&manager, Some(Role::Agent), &[]).is_ok());
        assert!(check_grants(&manager, Some(Role::Viewer), &["staff.manage".into()]).is_ok());
        assert!(check_grants(&manager, Some(Role::Admin), &[]).is_err());
        assert!(check_grants(&manager, None, &["seats.manage".into()]).is_err());
        let viewer_manager = principal("viewer", &["staff.manage"]);
        assert!(
            check_grants(&viewer_manager, Some(Role::Agent), &[]).is_err(),
            "a viewer lacks end_users.write"
        );
    }

    #[test]
    fn only_a_service_for_every_workspace_naming_the_permission_rotates_keys() {
        let service = |workspaces: WorkspaceScope, role: &str, permissions: &[&str]| Principal {
            kind: PrincipalKind::Service,
            workspaces,
            ..principal(role, permissions)
        };
        let rotate = |p: &Principal| authorize_platform(p, "RotateSigningKey").is_ok();
        assert!(rotate(&service(
            WorkspaceScope::All,
            "service",
            &["signing_keys.rotate"]
        )));
        assert!(!rotate(&service(WorkspaceScope::All, "admin", &[])));
        assert!(!rotate(&service(
            WorkspaceScope::Only(["w".to_owned()].into()),
            "service",
            &["signing_keys.rotate"]
        )));
        assert!(!rotate(&principal("admin", &["signing_keys.rotate"])));
        assert!(authorize_platform(&principal("admin", &[]), "GetAgent").is_err());
        assert!(authorize(&principal("admin", &[]), "w", "RotateSigningKey").is_err());
    }
}
