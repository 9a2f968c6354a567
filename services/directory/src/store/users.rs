use sea_orm::Condition;
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryTrait,
};
use uuid::Uuid;

use crate::domain::UserStatus;
use crate::entity::end_user;
use crate::error::{DirectoryError, END_USER_RESOURCE, Result, reason};

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<Option<end_user::Model>> {
    Ok(
        end_user::Entity::find_by_id((workspace_id.to_owned(), user_id))
            .one(conn)
            .await
            .map_err(roster_db::DbError::from)?,
    )
}

pub async fn require<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<end_user::Model> {
    get(conn, workspace_id, user_id)
        .await?
        .ok_or_else(|| DirectoryError::user_not_found(user_id))
}

/// The user holding a key, preferring the live one; otherwise the most recently deleted
/// one, which an import may bring back. Merged and erased users are never matched. Also
/// what the upsert rules (`service::upsert::decision`) match with, on users in memory.
pub(crate) fn pick_match<'a>(
    candidates: impl IntoIterator<Item = &'a end_user::Model>,
) -> Option<&'a end_user::Model> {
    let mut best: Option<&end_user::Model> = None;
    for candidate in candidates {
        let rank = |user: &end_user::Model| match UserStatus::parse(&user.status) {
            Some(UserStatus::Deleted) => (0, user.deleted_at.unwrap_or(0)),
            Some(status) if !status.is_retired() => (1, 0),
            _ => (-1, 0),
        };
        if rank(candidate).0 < 0 {
            continue;
        }
        if best.is_none_or(|current| rank(candidate) > rank(current)) {
            best = Some(candidate);
        }
    }
    best
}

/// Users of any status whose `column` (external id or e-mail key) is `value`.
pub async fn holding<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    column: end_user::Column,
    value: &str,
) -> Result<Vec<end_user::Model>> {
    Ok(end_user::Entity::find()
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(column.eq(value))
        .all(conn)
        .await
        .map_err(roster_db::DbError::from)?)
}

pub async fn find_by_external_id<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    external_id: &str,
) -> Result<Option<end_user::Model>> {
    let candidates = holding(
        conn,
        workspace_id,
        end_user::Column::ExternalId,
        external_id,
    )
    .await?;
    Ok(pick_match(&candidates).cloned())
}

pub async fn find_by_email<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    email: &str,
) -> Result<Option<end_user::Model>> {
    let key = crate::domain::values::email_key(email);
    let candidates = holding(conn, workspace_id, end_user::Column::EmailKey, &key).await?;
    Ok(pick_match(&candidates).cloned())
}

/// The live user (other than `except`) that holds an external id or e-mail key.
pub async fn live_holder<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    column: end_user::Column,
    value: &str,
    except: Option<Uuid>,
) -> Result<Option<end_user::Model>> {
    if value.is_empty() {
        return Ok(None);
    }
    let mut query = end_user::Entity::find()
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(column.eq(value))
        .filter(end_user::Column::Status.is_not_in(UserStatus::retired_texts()));
    if let Some(user_id) = except {
        query = query.filter(end_user::Column::UserId.ne(user_id));
    }
    Ok(query.one(conn).await.map_err(roster_db::DbError::from)?)
}

/// `user` would take the external id that live end-user `holder` has.
pub(crate) fn external_id_taken(user: &end_user::Model, holder: Uuid) -> DirectoryError {
    DirectoryError::already_exists(
        reason::EXTERNAL_ID_TAKEN,
        (END_USER_RESOURCE, holder.to_string()),
        format!(
            "external id '{}' already belongs to end-user {holder}",
            user.external_id
        ),
    )
}

/// `user` would take the e-mail that live end-user `holder` has.
pub(crate) fn email_taken(user: &end_user::Model, holder: Uuid) -> DirectoryError {
    DirectoryError::already_exists(
        reason::EMAIL_TAKEN,
        (END_USER_RESOURCE, holder.to_string()),
        format!(
            "e-mail '{}' already belongs to end-user {holder}",
            user.email
        ),
    )
}

/// Fails with ALREADY_EXISTS when another live user holds the new user's external id or
/// e-mail. The partial unique indexes enforce the same rule under concurrency; this check
/// exists to say precisely which value collides and with whom.
pub async fn ensure_unique_keys<C: ConnectionTrait>(
    conn: &C,
    user: &end_user::Model,
) -> Result<()> {
    if UserStatus::parse(&user.status).is_some_and(UserStatus::is_retired) {
        return Ok(());
    }
    if let Some(holder) = live_holder(
        conn,
        &user.workspace_id,
        end_user::Column::ExternalId,
        &user.external_id,
        Some(user.user_id),
    )
    .await?
    {
        return Err(external_id_taken(user, holder.user_id));
    }
    if let Some(holder) = live_holder(
        conn,
        &user.workspace_id,
        end_user::Column::EmailKey,
        &user.email_key,
        Some(user.user_id),
    )
    .await?
    {
        return Err(email_taken(user, holder.user_id));
    }
    Ok(())
}

/// The INSERT of a new user, for [`roster_db::Db::insert_atomically`].
pub fn insert_statement(user: &end_user::Model) -> InsertStatement {
    end_user::Entity::insert(user.clone().into_active_model().reset_all()).into_query()
}

pub async fn insert<C: ConnectionTrait>(conn: &C, user: &end_user::Model) -> Result<()> {
    conn.execute(&insert_statement(user))
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(())
}

/// Writes the columns that differ between `before` and `after`, only if the row still has
/// `before.version` (optimistic concurrency). Returns false when someone else won.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &end_user::Model,
    after: &end_user::Model,
) -> Result<bool> {
    Ok(
        roster_db::versioned::update_changed::<_, end_user::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(end_user::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(end_user::Column::UserId.eq(before.user_id)),
            end_user::Column::Version,
            before.version,
        )
        .await?,
    )
}

/// Users of a customer that still count as its members (anything but retired).
pub async fn count_live_in_customer<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    customer_id: &str,
) -> Result<u64> {
    Ok(end_user::Entity::find()
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user::Column::CustomerId.eq(customer_id))
        .filter(end_user::Column::Status.is_not_in(UserStatus::retired_texts()))
        .count(conn)
        .await
        .map_err(roster_db::DbError::from)?)
}

/// Bumps counters without a read-modify-write, so concurrent activity never loses counts.
pub async fn add_activity<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
    occurred_at_us: i64,
    conversations: i64,
    now_us: i64,
) -> Result<bool> {
    // Built by sea-query rather than as custom SQL, so placeholders suit every backend.
    let latest = Expr::case(
        Expr::col(end_user::Column::LastActivityAt).lt(occurred_at_us),
        occurred_at_us,
    )
    .finally(Expr::col(end_user::Column::LastActivityAt));
    let result = end_user::Entity::update_many()
        .col_expr(end_user::Column::LastActivityAt, latest.into())
        .col_expr(
            end_user::Column::ConversationCount,
            Expr::col(end_user::Column::ConversationCount).add(conversations),
        )
        .col_expr(
            end_user::Column::Version,
            Expr::col(end_user::Column::Version).add(1),
        )
        .col_expr(end_user::Column::UpdatedAt, Expr::value(now_us))
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user::Column::UserId.eq(user_id))
        .exec(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected == 1)
}

/// The users merged directly into any of `targets`.
pub async fn merged_into_any<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    targets: &[Uuid],
) -> Result<Vec<end_user::Model>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    Ok(end_user::Entity::find()
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user::Column::MergedInto.is_in(targets.iter().copied()))
        .all(conn)
        .await
        .map_err(roster_db::DbError::from)?)
}

/// Every user merged into `user_id`, directly or through a chain of merges, nearest first.
pub async fn merged_chain<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<Vec<end_user::Model>> {
    let mut chain = Vec::new();
    let mut seen = std::collections::HashSet::from([user_id]);
    let mut frontier = vec![user_id];
    while !frontier.is_empty() {
        let sources = merged_into_any(conn, workspace_id, &frontier).await?;
        frontier.clear();
        // Merging needs two users that are not retired, so chains cannot loop; `seen` only
        // keeps a damaged row from looping this.
        for source in sources {
            if seen.insert(source.user_id) {
                frontier.push(source.user_id);
                chain.push(source);
            }
        }
    }
    Ok(chain)
}
