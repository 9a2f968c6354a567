//! Who may call what, decided here and nowhere else, from the caller's token.

use roster_auth::{Permission, PermissionCatalogue, Principal};

use crate::error::{DirectoryError, reason};
use crate::service::CustomerRenames;

/// What an RPC needs from the caller beyond access to the request's workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any role in the workspace.
    Read,
    /// A role that may write (not a viewer) holding this permission; admins hold all.
    Write(&'static Permission),
}

/// The directory's permissions (kept with every service's in `roster_auth::catalogues`, so
/// the staff service's roles can offer them).
pub const PERMISSIONS: PermissionCatalogue = roster_auth::catalogues::DIRECTORY;

pub const CUSTOMERS_WRITE: Need = Need::Write(&PERMISSIONS.permissions[0]);
pub const END_USERS_WRITE: Need = Need::Write(&PERMISSIONS.permissions[1]);
pub const END_USERS_DELETE: Need = Need::Write(&PERMISSIONS.permissions[2]);
pub const END_USERS_ERASE: Need = Need::Write(&PERMISSIONS.permissions[3]);
pub const END_USERS_MERGE: Need = Need::Write(&PERMISSIONS.permissions[4]);
pub const WORKSPACE_MANAGE: Need = Need::Write(&PERMISSIONS.permissions[5]);
/// Reading, but of everything about a person at once, their audit trail included: held by
/// a role that may write (not a viewer) and granted on its own.
pub const END_USERS_EXPORT: Need = Need::Write(&PERMISSIONS.permissions[6]);

pub fn authorize(
    principal: &Principal,
    workspace_id: &str,
    need: Need,
) -> Result<(), DirectoryError> {
    let Some(grant) = principal.grant(workspace_id) else {
        return Err(DirectoryError::permission_denied(
            reason::WORKSPACE_NOT_GRANTED,
            format!("the access token does not grant workspace '{workspace_id}'"),
        ));
    };
    match need {
        Need::Read => Ok(()),
        Need::Write(permission) => {
            if grant.is_admin() || (grant.role != "viewer" && grant.has_permission(permission.name))
            {
                Ok(())
            } else {
                Err(DirectoryError::permission_denied(
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

/// How far a caller's import may rename existing customers: only callers who could rename
/// them directly (UpdateCustomer) may; `otherwise` is what happens to the others' renames.
pub fn customer_renames(
    principal: &Principal,
    workspace_id: &str,
    otherwise: CustomerRenames,
) -> CustomerRenames {
    if authorize(principal, workspace_id, CUSTOMERS_WRITE).is_ok() {
        CustomerRenames::Apply
    } else {
        otherwise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_sound_and_every_need_names_what_it_says() {
        assert_eq!(PERMISSIONS.problems(), Vec::<String>::new());
        let named = [
            (CUSTOMERS_WRITE, "customers.write"),
            (END_USERS_WRITE, "end_users.write"),
            (END_USERS_DELETE, "end_users.delete"),
            (END_USERS_ERASE, "end_users.erase"),
            (END_USERS_MERGE, "end_users.merge"),
            (WORKSPACE_MANAGE, "workspace.manage"),
            (END_USERS_EXPORT, "end_users.export"),
        ];
        for (need, name) in named {
            assert_eq!(Some(need), PERMISSIONS.get(name).map(Need::Write), "{name}");
        }
    }
}
