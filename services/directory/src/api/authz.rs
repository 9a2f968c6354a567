//! Who may call what, decided here and nowhere else, from the caller's token.

use roster_auth::Principal;

use crate::error::{DirectoryError, reason};
use crate::service::CustomerRenames;

/// What an RPC needs from the caller beyond access to the request's workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any role in the workspace.
    Read,
    /// A role that may write (not a viewer) holding this permission; admins hold all.
    Write(&'static str),
}

pub const CUSTOMERS_WRITE: Need = Need::Write("customers.write");
pub const END_USERS_WRITE: Need = Need::Write("end_users.write");
pub const END_USERS_DELETE: Need = Need::Write("end_users.delete");
pub const END_USERS_ERASE: Need = Need::Write("end_users.erase");
pub const END_USERS_MERGE: Need = Need::Write("end_users.merge");
pub const WORKSPACE_MANAGE: Need = Need::Write("workspace.manage");

pub fn authorize(
    principal: &Principal,
    workspace_id: &str,
    need: Need,
) -> Result<(), DirectoryError> {
    if !principal.can_access_workspace(workspace_id) {
        return Err(DirectoryError::permission_denied(
            reason::WORKSPACE_NOT_GRANTED,
            format!("the access token does not grant workspace '{workspace_id}'"),
        ));
    }
    match need {
        Need::Read => Ok(()),
        Need::Write(permission) => {
            if principal.is_admin()
                || (principal.role != "viewer" && principal.has_permission(permission))
            {
                Ok(())
            } else {
                Err(DirectoryError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "this call needs the '{permission}' permission (or the admin role); the token's role is '{}'",
                        principal.role
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
