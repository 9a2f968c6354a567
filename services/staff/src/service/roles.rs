//! Roles: the built-in ones as read-only views, and the workspace's custom roles. Every
//! write locks the workspace's row first, as agents' changes do, so a role is never
//! deleted or renamed while an agent is being given it.

use std::collections::BTreeSet;

use roster_core::{Actor, etag::is_current};
use roster_db::{in_write_txn, outbox};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use super::{Staff, change};
use crate::domain::access::Granter;
use crate::domain::roles::{MAX_CUSTOM_ROLES, RoleId};
use crate::domain::values::role_name_key;
use crate::domain::{Role, RoleGrant};
use crate::entity::role;
use crate::error::{ROLE_RESOURCE, Result, StaffError, reason};
use crate::store;

/// A role as calls answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleView {
    pub grant: RoleGrant,
    pub description: String,
    /// Agents of any status holding it.
    pub holders: i64,
    /// Custom roles only: built-in ones have no row.
    pub row: Option<role::Model>,
}

/// A checked CreateRole.
#[derive(Clone, Debug)]
pub struct NewRole {
    pub name: String,
    pub description: String,
    pub permissions: BTreeSet<String>,
}

/// UpdateRole's fields; `None` leaves one as it is.
#[derive(Clone, Debug, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<BTreeSet<String>>,
}

fn built_in_view(role: Role, holders: i64) -> RoleView {
    RoleView {
        grant: RoleGrant::built_in(role),
        description: role.description().to_owned(),
        holders,
        row: None,
    }
}

fn custom_view(row: role::Model, holders: i64) -> Result<RoleView> {
    Ok(RoleView {
        grant: store::roles::grant_of(&row)?,
        description: row.description.clone(),
        holders,
        row: Some(row),
    })
}

fn built_in_refusal(role: Role) -> StaffError {
    StaffError::failed_precondition(
        reason::ROLE_BUILT_IN,
        format!(
            "'{}' is a built-in role and cannot be changed or deleted; create a custom role instead",
            role.as_str()
        ),
    )
}

fn permission_list(set: &BTreeSet<String>) -> serde_json::Value {
    json!(set.iter().collect::<Vec<_>>())
}

/// The ALREADY_EXISTS of a name another role has.
fn name_taken(existing: &role::Model) -> StaffError {
    StaffError::refused(
        Code::AlreadyExists,
        reason::ROLE_ALREADY_EXISTS,
        Some((ROLE_RESOURCE, existing.role_id.to_string())),
        format!(
            "the workspace already has a role named '{}' (names are compared case-insensitively)",
            existing.name
        ),
    )
}

impl Staff {
    /// The built-in roles, then the custom ones by name.
    pub async fn list_roles(&self, workspace_id: &str) -> Result<Vec<RoleView>> {
        let conn = self.db.conn();
        let holders = store::roles::holders(conn, workspace_id).await?;
        let count = |name: &str| holders.get(name).copied().unwrap_or(0);
        let mut views: Vec<RoleView> = Role::ALL
            .into_iter()
            .map(|role| built_in_view(role, count(role.as_str())))
            .collect();
        for row in store::roles::list(conn, workspace_id).await? {
            let holders = count(&row.name);
            views.push(custom_view(row, holders)?);
        }
        Ok(views)
    }

    pub async fn get_role(&self, workspace_id: &str, role_id: RoleId) -> Result<RoleView> {
        let conn = self.db.conn();
        match role_id {
            RoleId::BuiltIn(role) => {
                let holders = store::roles::holders_of(conn, workspace_id, role.as_str()).await?;
                Ok(built_in_view(
                    role,
                    i64::try_from(holders).unwrap_or(i64::MAX),
                ))
            }
            RoleId::Custom(id) => {
                let row = store::roles::find(conn, workspace_id, id)
                    .await?
                    .ok_or_else(|| StaffError::role_not_found(id))?;
                let holders = store::roles::holders_of(conn, workspace_id, &row.name).await?;
                custom_view(row, i64::try_from(holders).unwrap_or(i64::MAX))
            }
        }
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        input: NewRole,
    ) -> Result<RoleView> {
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            if let Some(existing) =
                store::roles::find_by_name(conn, workspace_id, &input.name).await?
            {
                return Err(name_taken(&existing));
            }
            if store::roles::count(conn, workspace_id).await? >= MAX_CUSTOM_ROLES {
                return Err(StaffError::failed_precondition(
                    reason::ROLE_LIMIT_REACHED,
                    format!(
                        "the workspace has {MAX_CUSTOM_ROLES} custom roles, the most it may have; delete one first"
                    ),
                ));
            }
            granter.may_grant(
                || format!("the permissions of the role '{}'", input.name),
                &input.permissions,
            )?;
            let row = role::Model {
                workspace_id: workspace_id.to_owned(),
                role_id: Uuid::now_v7(),
                name: input.name.clone(),
                name_key: role_name_key(&input.name),
                description: input.description.clone(),
                permissions: store::roles::permissions_json(&input.permissions)?,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::roles::insert(conn, row.clone()).await?;
            let event = self.event(
                actor,
                workspace_id,
                "role.created",
                ("role", row.role_id.to_string()),
                vec![
                    change("name", None, Some(row.name.clone().into())),
                    change("description", None, Some(row.description.clone().into())),
                    change(
                        "permissions",
                        None,
                        Some(permission_list(&input.permissions)),
                    ),
                ],
            );
            outbox::append(conn, &[event]).await?;
            custom_view(row, 0)
        })
    }

    /// Changes a custom role. Its holders get its new permissions at once (their next
    /// token); a rename renames what they hold.
    pub async fn update_role(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        role_id: RoleId,
        expected_version: Option<i64>,
        patch: RolePatch,
    ) -> Result<RoleView> {
        let id = match role_id {
            RoleId::BuiltIn(role) => return Err(built_in_refusal(role)),
            RoleId::Custom(id) => id,
        };
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let before = store::roles::find(conn, workspace_id, id)
                .await?
                .ok_or_else(|| StaffError::role_not_found(id))?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale("role"));
            }
            let permissions_before = store::roles::grant_of(&before)?.permissions;
            let permissions_after = patch
                .permissions
                .clone()
                .unwrap_or_else(|| permissions_before.clone());
            let mut after = before.clone();
            if let Some(name) = &patch.name {
                after.name = name.clone();
                after.name_key = role_name_key(name);
            }
            if let Some(description) = &patch.description {
                after.description = description.clone();
            }
            after.permissions = store::roles::permissions_json(&permissions_after)?;
            let holders = store::roles::holders_of(conn, workspace_id, &before.name).await?;
            let holders = i64::try_from(holders).unwrap_or(i64::MAX);
            if after == before {
                return custom_view(before, holders);
            }
            if after.name_key != before.name_key
                && let Some(existing) =
                    store::roles::find_by_name(conn, workspace_id, &after.name).await?
            {
                return Err(name_taken(&existing));
            }
            if permissions_after != permissions_before {
                // Both sets: taking a permission away from the role's holders is as much
                // the caller's business as handing one out.
                granter.may_grant(
                    || format!("changes to the permissions of the role '{}'", before.name),
                    permissions_before.union(&permissions_after),
                )?;
            }
            after.updated_at = now;
            after.version += 1;
            if !store::roles::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            // Holders' tokens carry the role's name and permissions: either change ends them.
            if after.name != before.name {
                store::roles::rename_holders(conn, workspace_id, &before.name, &after.name, now)
                    .await?;
                // SSO connections give the role by name too.
                store::sso::rename_default_role(conn, workspace_id, &before.name, &after.name, now)
                    .await?;
            } else if permissions_after != permissions_before {
                store::roles::raise_holders_generation(conn, workspace_id, &before.name, now)
                    .await?;
            }
            let mut changes = vec![change(
                "role.name",
                Some(before.name.clone().into()),
                Some(after.name.clone().into()),
            )];
            if after.description != before.description {
                changes.push(change(
                    "description",
                    Some(before.description.clone().into()),
                    Some(after.description.clone().into()),
                ));
            }
            changes.push(change(
                "permissions",
                Some(permission_list(&permissions_before)),
                Some(permission_list(&permissions_after)),
            ));
            changes.push(change("holders", None, Some(holders.into())));
            let event = self.event(
                actor,
                workspace_id,
                "role.updated",
                ("role", id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            custom_view(after, holders)
        })
    }

    /// Deletes a custom role nobody holds.
    pub async fn delete_role(
        &self,
        actor: &Actor,
        workspace_id: &str,
        role_id: RoleId,
        expected_version: Option<i64>,
    ) -> Result<()> {
        let id = match role_id {
            RoleId::BuiltIn(role) => return Err(built_in_refusal(role)),
            RoleId::Custom(id) => id,
        };
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let before = store::roles::find(conn, workspace_id, id)
                .await?
                .ok_or_else(|| StaffError::role_not_found(id))?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale("role"));
            }
            let holders = store::roles::holders_of(conn, workspace_id, &before.name).await?;
            if holders > 0 {
                return Err(StaffError::failed_precondition(
                    reason::ROLE_IN_USE,
                    format!(
                        "{holders} agent{} still hold{} the role '{}' (deactivated ones included); give them another role first (ListAgents with role:\"{}\")",
                        if holders == 1 { "" } else { "s" },
                        if holders == 1 { "s" } else { "" },
                        before.name,
                        before.name
                    ),
                ));
            }
            let connections = store::sso::giving_role(conn, workspace_id, &before.name).await?;
            if !connections.is_empty() {
                return Err(StaffError::failed_precondition(
                    reason::ROLE_IN_USE,
                    format!(
                        "the SSO connection{} {} give{} the role '{}' to the agents they create; give {} another default role first",
                        if connections.len() == 1 { "" } else { "s" },
                        connections
                            .iter()
                            .map(|name| format!("'{name}'"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        if connections.len() == 1 { "s" } else { "" },
                        before.name,
                        if connections.len() == 1 { "it" } else { "them" },
                    ),
                ));
            }
            if !store::roles::delete(conn, &before).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            let permissions = store::roles::grant_of(&before)?.permissions;
            let event = self.event(
                actor,
                workspace_id,
                "role.deleted",
                ("role", id.to_string()),
                vec![
                    change("name", Some(before.name.clone().into()), None),
                    change("description", Some(before.description.clone().into()), None),
                    change("permissions", Some(permission_list(&permissions)), None),
                ],
            );
            outbox::append(conn, &[event]).await?;
            Ok(())
        })
    }

    /// The role named `name` (a built-in's or a custom role's, any case), or
    /// INVALID_ARGUMENT on `field`.
    pub(super) async fn resolve_role<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        field: &str,
        name: &str,
    ) -> Result<RoleGrant> {
        store::roles::resolve(conn, workspace_id, name)
            .await?
            .ok_or_else(|| {
                StaffError::invalid(
                    field,
                    format!(
                        "'{name}' is not a role of this workspace; use admin, agent, viewer or a custom role's name (ListRoles)"
                    ),
                )
            })
    }
}
