//! The built-in roles and what they hold. A role is stored by name; custom roles (a later
//! slice) will be stored in the same column by id and resolve to their permission sets.

use std::collections::BTreeSet;

/// A built-in role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything, in every service.
    Admin,
    /// Works tickets: holds `end_users.write` of the services' catalogues.
    Agent,
    /// Read-only.
    Viewer,
}

/// What the AGENT role holds of the services' catalogues. Ticket work (assigned tickets,
/// using macros) lives in services outside Roster; here an agent may keep end-users'
/// contact details current.
const AGENT_PERMISSIONS: &[&str] = &["end_users.write"];

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Agent, Role::Viewer];

    /// The name stored, carried in tokens (`role` claim) and answered.
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

/// What an agent holds: its role's permissions and its extra grants.
pub fn effective_permissions(role: Role, extra: &[String]) -> BTreeSet<String> {
    let mut permissions = role.permissions();
    permissions.extend(extra.iter().cloned());
    permissions
}

#[cfg(test)]
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
        }
        assert!(Role::Admin.permissions().contains("staff.manage"));
        assert!(Role::Viewer.permissions().is_empty());
        assert_eq!(Role::parse("Admin"), None);
    }
}
