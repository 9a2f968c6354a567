//! Every service's permission catalogue, in one place so the staff service can offer (and
//! check grants against) their union without depending on another service's crate. Each
//! service's authorization names only permissions of its own catalogue.

use crate::{Permission, PermissionCatalogue};

/// The directory's permissions.
pub const DIRECTORY: PermissionCatalogue = PermissionCatalogue {
    service: "directory",
    permissions: &[
        Permission {
            name: "customers.write",
            description: "Create, change, delete and restore customers, and rename them through imports",
        },
        Permission {
            name: "end_users.write",
            description: "Create, change, import, deactivate and reactivate end-users and guests",
        },
        Permission {
            name: "end_users.delete",
            description: "Soft-delete end-users and restore them",
        },
        Permission {
            name: "end_users.erase",
            description: "Erase an end-user's personal data for good (GDPR erasure)",
        },
        Permission {
            name: "end_users.merge",
            description: "Merge duplicate end-users into one",
        },
        Permission {
            name: "workspace.manage",
            description: "Change the workspace's directory settings and rotate its widget secret",
        },
    ],
};

/// The staff service's permissions.
pub const STAFF: PermissionCatalogue = PermissionCatalogue {
    service: "staff",
    permissions: &[
        Permission {
            name: "staff.manage",
            description: "Invite agents, change their role, teams and extra permissions, deactivate and reactivate them, resend and revoke invitations, and create teams",
        },
        Permission {
            name: "seats.manage",
            description: "Set the workspace's licensed seat count (the billing service)",
        },
        Permission {
            name: "signing_keys.rotate",
            description: "Rotate the key that signs every access token (a platform operator's service token for every workspace; never an agent)",
        },
    ],
};

/// Every catalogue, in the order `ListPermissions` will publish them.
pub const ALL: &[PermissionCatalogue] = &[DIRECTORY, STAFF];

/// The permission named `name` in any service's catalogue.
pub fn find(name: &str) -> Option<&'static Permission> {
    ALL.iter().find_map(|catalogue| catalogue.get(name))
}

/// Every permission of every service.
pub fn all_permissions() -> impl Iterator<Item = &'static Permission> {
    ALL.iter()
        .flat_map(|catalogue| catalogue.permissions.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_are_sound_and_no_name_is_in_two() {
        for catalogue in ALL {
            assert_eq!(
                catalogue.problems(),
                Vec::<String>::new(),
                "{}",
                catalogue.service
            );
        }
        let names: Vec<_> = all_permissions().map(|p| p.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        assert!(find("staff.manage").is_some());
        assert!(find("end_users.erase").is_some());
        assert!(find("tickets.fly").is_none());
    }
}
