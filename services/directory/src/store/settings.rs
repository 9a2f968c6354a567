use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter,
};

use crate::entity::workspace_settings;
use crate::error::Result;

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> Result<Option<workspace_settings::Model>> {
    Ok(
        workspace_settings::Entity::find_by_id(workspace_id.to_owned())
            .one(conn)
            .await
            .map_err(roster_db::DbError::from)?,
    )
}

/// Settings rows holding a widget secret not sealed yet (written before secrets were
/// encrypted). The one query across workspaces: a start-up repair, not a request's work.
pub async fn with_plaintext_secrets<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<workspace_settings::Model>> {
    let unsealed = |column: workspace_settings::Column| {
        Condition::all()
            .add(column.is_not_null())
            .add(column.not_like("kek1:%"))
    };
    Ok(workspace_settings::Entity::find()
        .filter(
            Condition::any()
                .add(unsealed(workspace_settings::Column::WidgetSecret))
                .add(unsealed(workspace_settings::Column::PreviousWidgetSecret)),
        )
        .all(conn)
        .await
        .map_err(roster_db::DbError::from)?)
}

/// Inserts the first version or replaces `before` if it is still current; false when a
/// concurrent change won (or inserted first).
pub async fn save<C: ConnectionTrait>(
    conn: &C,
    before: Option<&workspace_settings::Model>,
    after: &workspace_settings::Model,
) -> Result<bool> {
    let Some(before) = before else {
        let inserted =
            workspace_settings::Entity::insert(after.clone().into_active_model().reset_all())
                .exec_without_returning(conn)
                .await;
        return match inserted.map_err(roster_db::DbError::from) {
            Ok(_) => Ok(true),
            Err(roster_db::DbError::UniqueViolation { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        };
    };
    let result = workspace_settings::Entity::update_many()
        .set(after.clone().into_active_model().reset_all())
        .filter(workspace_settings::Column::WorkspaceId.eq(before.workspace_id.as_str()))
        .filter(workspace_settings::Column::Version.eq(before.version))
        .exec(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected == 1)
}
