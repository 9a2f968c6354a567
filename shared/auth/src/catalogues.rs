//! Every service's permission catalogue, in one place so the staff service can offer (and
//! check grants against) their union without depending on another service's crate. Each
//! service's authorization names only permissions of its own catalogue.
//!
//! The help-desk product's own services (tickets, macros, analytics, billing, integrations)
//! live outside Roster, yet an administrator grants their permissions through Roster's roles,
//! so they have a catalogue here too ([`HELPDESK`]): Roster publishes and grants those names,
//! and those services check them in the tokens it issues.

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
            description: "Manage end-users: create, change, import, deactivate and reactivate end-users and guests",
        },
        Permission {
            name: "end_users.delete",
            description: "Delete end-users (soft delete) and restore them",
        },
        Permission {
            name: "end_users.erase",
            description: "Erase end-users: remove an end-user's personal data for good (GDPR erasure)",
        },
        Permission {
            name: "end_users.merge",
            description: "Merge duplicate end-users into one",
        },
        Permission {
            name: "workspace.manage",
            description: "Change the workspace's directory settings and rotate its widget secret",
        },
        Permission {
            name: "end_users.export",
            description: "Export everything stored about an end-user, their audit events included (a data subject's access request)",
        },
    ],
};

/// The staff service's permissions.
pub const STAFF: PermissionCatalogue = PermissionCatalogue {
    service: "staff",
    permissions: &[
        Permission {
            name: "staff.manage",
            description: "Manage staff: invite agents, change their role, teams and extra permissions, deactivate and reactivate them, resend and revoke invitations, and create, change and delete teams and their members",
        },
        Permission {
            name: "seats.manage",
            description: "Set the workspace's licensed seat count (the billing service)",
        },
        ROLES_MANAGE,
        SIGNING_KEYS_ROTATE,
        SSO_MANAGE,
    ],
};

/// Defining roles is apart from `staff.manage`: a role's permissions reach every agent who
/// holds it, so who may redefine them is chosen on its own. Named here so the staff
/// service's authorization refers to it by name, not by its place in the list.
pub const ROLES_MANAGE: Permission = Permission {
    name: "roles.manage",
    description: "Create, change and delete the workspace's custom roles (only with permissions the caller holds)",
};

/// Rotating the signing key is a platform operation, held only by a service token for every
/// workspace that names it: no role implies it. Named so authorization refers to it by name.
pub const SIGNING_KEYS_ROTATE: Permission = Permission {
    name: "signing_keys.rotate",
    description: "Rotate the key that signs every access token (a platform operator's service token for every workspace; never an agent)",
};

/// Configuring single sign-on is apart from `staff.manage`: whoever sets a connection's
/// issuer and signing keys decides which identity provider vouches for every e-mail of the
/// workspace, admins' included, so only the admin role holds it unless granted. Named so
/// the staff service's authorization refers to it by name.
pub const SSO_MANAGE: Permission = Permission {
    name: "sso.manage",
    description: "Configure single sign-on: create, change, test, enable and delete the workspace's SSO connections (whoever holds it chooses who may sign in as any agent, so grant it to administrators only)",
};

/// The audit service's permissions. The "view_audit_log" is `audit_log.view` here,
/// after the catalogues' `<resource>.<verb>` rule (as `analytics.view`).
pub const AUDIT: PermissionCatalogue = PermissionCatalogue {
    service: "audit",
    permissions: &[
        AUDIT_LOG_VIEW,
        AUDIT_LOG_MANAGE,
        AUDIT_LOG_APPEND,
        AUDIT_LOG_ERASE,
    ],
};

/// Reading a workspace's audit log, its checkpoints and proofs. Named so the audit
/// service's authorization refers to it by name.
pub const AUDIT_LOG_VIEW: Permission = Permission {
    name: "audit_log.view",
    description: "View the workspace's audit log: events, signed checkpoints, proofs and verification",
};

/// Retention and legal holds decide what the log forgets and when; apart from reading it.
pub const AUDIT_LOG_MANAGE: Permission = Permission {
    name: "audit_log.manage",
    description: "Set how long the workspace's audit log keeps events, and place or lift legal holds",
};

/// Appending to audit logs is for producers (the services' outbox relays) alone: the audit
/// service accepts it only in a service token that names it, never an agent's, and no role
/// implies it.
pub const AUDIT_LOG_APPEND: Permission = Permission {
    name: "audit_log.append",
    description: "Append events to the audit log (a producing service's token only; never an agent)",
};

/// Erasing a person's values from the audit log is for the producer that erased the person
/// (the directory's EraseUser, through its relay), never an agent: the producer checked the
/// caller's right to erase first.
pub const AUDIT_LOG_ERASE: Permission = Permission {
    name: "audit_log.erase",
    description: "Erase a person's values from the audit log (a producing service's token only, after it erased the person itself; never an agent)",
};

/// The help-desk services' permissions, checked by those services (outside Roster) in the
/// tokens Roster issues.
pub const HELPDESK: PermissionCatalogue = PermissionCatalogue {
    service: "helpdesk",
    permissions: &[
        Permission {
            name: "tickets.work",
            description: "Work tickets assigned to the agent or their teams: reply, add notes, change status and assignee",
        },
        Permission {
            name: "tickets.view_all",
            description: "View all tickets: see the entire inbox, not only assigned and team tickets",
        },
        Permission {
            name: "tickets.delete",
            description: "Delete tickets: remove them permanently",
        },
        Permission {
            name: "macros.use",
            description: "Use macros (canned replies and actions) on tickets",
        },
        Permission {
            name: "macros.manage",
            description: "Manage macros: create, edit and delete shared macros",
        },
        Permission {
            name: "data.export",
            description: "Export data: download reports and ticket exports",
        },
        Permission {
            name: "analytics.view",
            description: "View analytics: access reports and performance dashboards",
        },
        Permission {
            name: "billing.manage",
            description: "Manage billing: plan, payment details and invoices",
        },
        Permission {
            name: "integrations.manage",
            description: "Manage integrations: connect, configure and remove third-party apps",
        },
        Permission {
            name: "automations.manage",
            description: "Manage automations: triggers, SLAs and routing rules",
        },
    ],
};

/// Every catalogue, in the order `ListPermissions` will publish them.
pub const ALL: &[PermissionCatalogue] = &[DIRECTORY, STAFF, AUDIT, HELPDESK];

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
        assert_eq!(STAFF.get("roles.manage"), Some(&ROLES_MANAGE));
        assert_eq!(STAFF.get("sso.manage"), Some(&SSO_MANAGE));
        assert_eq!(AUDIT.get("audit_log.view"), Some(&AUDIT_LOG_VIEW));
        for named in [
            "tickets.view_all",
            "tickets.delete",
            "data.export",
            "macros.manage",
            "analytics.view",
            "end_users.write",
            "end_users.delete",
            "end_users.erase",
            "staff.manage",
            "billing.manage",
            "integrations.manage",
        ] {
            assert!(find(named).is_some(), "{named}");
        }
    }
}
