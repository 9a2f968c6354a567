//! Roles: the three built-in ones and what they hold, and a role as an agent holds it
//! (built-in or custom) with its permission set. Agents store their role by name: a
//! built-in's (`admin`) or a custom role's (`Team Lead`), which is what tokens carry.

use std::collections::BTreeSet;

/// A built-in role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything, in every service.
    Admin,
    /// Works assigned tickets with macros, and keeps end-users' contact details current.
    Agent,
    /// Read-only: reads need only a role in the workspace, so it holds no permission.
    Viewer,
}

/// What the AGENT role holds: assigned tickets and using macros (the help-desk services),
/// and keeping end-users' details current (the directory). Its own profile needs nothing.
const AGENT_PERMISSIONS: &[&str] = &["end_users.write", "macros.use", "tickets.work"];

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Agent, Role::Viewer];

    /// The name stored, carried in tokens (`role` claim) and answered; also the role's id.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// The built-in role whose name is `value` in any case: custom roles may not take it.
    pub fn parse_any_case(value: &str) -> Option<Role> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(value.trim()))
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::Admin => {
                "Full access: every permission of every service, including user management, billing, integrations and automations"
            }
            Role::Agent => {
                "Works assigned tickets, uses macros, keeps end-users' details current and edits their own profile"
            }
            Role::Viewer => "Read-only access",
        }
    }

    /// Every permission the role holds.
    pub fn permissions(self) -> BTreeSet<String> {
        match self {
            Role::Admin => roster_auth::catalogues::all_permissions()
                .map(|permission| permission.name.to_owned())
                .collect(),
            Role::Agent => AGENT_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
            Role::Viewer => BTreeSet::new(),
        }
    }
}

/// How calls name a role: a built-in by its name, a custom role by its UUID (its name may
/// change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleId {
    BuiltIn(Role),
    Custom(uuid::Uuid),
}

/// Custom roles a workspace may define: enough for any help desk, and few enough that
/// ListRoles answers them all at once.
pub const MAX_CUSTOM_ROLES: u64 = 200;

/// A role as agents hold it, resolved from its name: a built-in role or a workspace's
/// custom role, with the permissions it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleGrant {
    /// A built-in role's name, or a custom role's UUID.
    pub role_id: String,
    pub name: String,
    /// `Some` for the built-in roles.
    pub built_in: Option<Role>,
    pub permissions: BTreeSet<String>,
}

impl RoleGrant {
    pub fn built_in(role: Role) -> Self {
        RoleGrant {
            role_id: role.as_str().to_owned(),
            name: role.as_str().to_owned(),
            built_in: Some(role),
            permissions: role.permissions(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.built_in == Some(Role::Admin)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_hold_catalogue_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            for permission in role.permissions() {
                assert!(
                    roster_auth::catalogues::find(&permission).is_some(),
                    "{permission}"
                );
            }
            assert!(RoleGrant::built_in(role).is_admin() == (role == Role::Admin));
        }
        assert!(Role::Admin.permissions().contains("staff.manage"));
        assert!(Role::Admin.permissions().contains("billing.manage"));
        assert!(Role::Agent.permissions().contains("tickets.work"));
        assert!(!Role::Agent.permissions().contains("tickets.view_all"));
        assert!(Role::Viewer.permissions().is_empty());
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse_any_case(" Admin "), Some(Role::Admin));
    }
}
