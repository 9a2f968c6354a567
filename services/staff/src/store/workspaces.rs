//! The per-workspace row: seat limit, and the lock that serialises seat and last-admin
//! decisions.

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::{AgentStatus, Role};
use crate::entity::{agent, staff_workspace};
use crate::error::Result;

/// The workspace's row, created when missing, locked `FOR UPDATE` until the transaction
/// ends. Every change that takes a seat (invite, reactivate) or may remove the last active
/// admin (demote, deactivate) calls this first, so two such changes in one workspace take
/// turns and each counts what the other committed: two invitations racing for the last
/// seat cannot both win. On SQLite the lock clause is not rendered: writers already take
/// turns (`Db::begin_write`).
pub async fn lock<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    now: i64,
) -> Result<staff_workspace::Model> {
    let insert = Query::insert()
        .into_table(staff_workspace::Entity)
        .columns([
            staff_workspace::Column::WorkspaceId,
            staff_workspace::Column::SeatLimit,
            staff_workspace::Column::CreatedAt,
            staff_workspace::Column::UpdatedAt,
        ])
        .values_panic([
            Expr::val(workspace_id),
            Expr::val(0i64),
            Expr::val(now),
            Expr::val(now),
        ])
        .on_conflict(
            OnConflict::column(staff_workspace::Column::WorkspaceId)
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    conn.execute(&insert).await?;
    staff_workspace::Entity::find_by_id(workspace_id.to_owned())
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| {
            crate::error::StaffError::Internal(format!(
                "workspace row of {workspace_id} missing right after its insert"
            ))
        })
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> Result<Option<staff_workspace::Model>> {
    Ok(staff_workspace::Entity::find_by_id(workspace_id.to_owned())
        .one(conn)
        .await?)
}

pub async fn set_seat_limit<C: ConnectionTrait>(
    conn: &C,
    row: &staff_workspace::Model,
    seat_limit: i64,
    now: i64,
) -> Result<()> {
    staff_workspace::Entity::update_many()
        .col_expr(staff_workspace::Column::SeatLimit, Expr::val(seat_limit))
        .col_expr(staff_workspace::Column::UpdatedAt, Expr::val(now))
        .col_expr(staff_workspace::Column::Version, Expr::val(row.version + 1))
        .filter(staff_workspace::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Agents per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub invited: i64,
    pub active: i64,
    pub deactivated: i64,
}

impl Counts {
    pub fn seats_used(&self) -> i64 {
        self.invited + self.active
    }
}

pub async fn counts<C: ConnectionTrait>(conn: &C, workspace_id: &str) -> Result<Counts> {
    let rows: Vec<(String, i64)> = agent::Entity::find()
        .select_only()
        .column(agent::Column::Status)
        .column_as(agent::Column::AgentId.count(), "n")
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .group_by(agent::Column::Status)
        .into_tuple()
        .all(conn)
        .await?;
    let mut counts = Counts::default();
    for (status, n) in rows {
        match AgentStatus::parse(&status) {
            Some(AgentStatus::Invited) => counts.invited = n,
            Some(AgentStatus::Active) => counts.active = n,
            Some(AgentStatus::Deactivated) => counts.deactivated = n,
            // No longer staff: only history points at them.
            Some(AgentStatus::Erased) => {}
            None => {
                return Err(crate::error::StaffError::Internal(format!(
                    "agents of {workspace_id} carry the unknown status '{status}'"
                )));
            }
        }
    }
    Ok(counts)
}

/// Active admins of the workspace.
pub async fn active_admins<C: ConnectionTrait>(conn: &C, workspace_id: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait as _;
    Ok(agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::Status.eq(AgentStatus::Active.as_str()))
        .filter(agent::Column::Role.eq(Role::Admin.as_str()))
        .count(conn)
        .await?)
}
