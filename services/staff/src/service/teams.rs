//! Teams: as much as invitations need (create and list).

use roster_core::Actor;
use roster_core::paging::Cursor;
use roster_db::{in_write_txn, outbox};
use tonic::Code;

use super::{Staff, change};
use crate::entity::team;
use crate::error::{Result, StaffError, TEAM_RESOURCE, reason};
use crate::store;

impl Staff {
    pub async fn create_team(
        &self,
        actor: &Actor,
        workspace_id: &str,
        name: &str,
        description: &str,
    ) -> Result<team::Model> {
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let name_key = name.to_lowercase();
            if let Some(existing) =
                store::teams::find_by_name(conn, workspace_id, &name_key).await?
            {
                return Err(StaffError::refused(
                    Code::AlreadyExists,
                    reason::TEAM_ALREADY_EXISTS,
                    Some((TEAM_RESOURCE, existing.team_id.to_string())),
                    format!("the workspace already has a team named '{}'", existing.name),
                ));
            }
            let now = self.now_us();
            let row = team::Model {
                workspace_id: workspace_id.to_owned(),
                team_id: uuid::Uuid::now_v7(),
                name: name.to_owned(),
                name_key,
                description: description.to_owned(),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::teams::insert(conn, row.clone()).await?;
            let event = self.event(
                actor,
                workspace_id,
                "team.created",
                ("team", row.team_id.to_string()),
                vec![
                    change("name", None, Some(row.name.clone().into())),
                    change("description", None, Some(row.description.clone().into())),
                ],
            );
            outbox::append(conn, &[event]).await?;
            Ok(row)
        })
    }

    pub async fn list_teams(
        &self,
        workspace_id: &str,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<team::Model>> {
        store::teams::list(self.db.conn(), workspace_id, after, limit).await
    }
}
