//! The SQL the directory issues for the benchmarked calls, written out by hand for the
//! baselines (b) and (c) and for EXPLAIN. Each statement mirrors what SeaORM generates in
//! `services/directory/src/store` (same tables, columns, predicates and order), so the
//! baselines do the same database work as the service minus its own layers.
//! Users come with their identities folded into one column by a correlated subquery, as
//! `store::views` reads them (one round trip per GetUser or ListUsers page).

use std::sync::OnceLock;

use roster_directory::domain::changes::user_changes;
use roster_directory::domain::user_fields::refresh_derived;
use roster_directory::entity::end_user;
use roster_directory::service::UserView;
use sea_orm::sqlx::postgres::{PgPool, PgRow};
use sea_orm::sqlx::{self, PgConnection, Row as _};
use uuid::Uuid;

/// `"end_users"."…"` for every column, in the entity's order (what SeaORM selects).
macro_rules! user_columns {
    () => {
        r#""end_users"."workspace_id", "end_users"."user_id", "end_users"."external_id", "end_users"."email", "end_users"."email_key", "end_users"."name", "end_users"."avatar_url", "end_users"."customer_id", "end_users"."status", "end_users"."restore_status", "end_users"."title", "end_users"."first_name", "end_users"."last_name", "end_users"."phone", "end_users"."mobile", "end_users"."fax", "end_users"."street", "end_users"."zip", "end_users"."city", "end_users"."country", "end_users"."notes", "end_users"."search_text", "end_users"."created_at", "end_users"."updated_at", "end_users"."confirmed_at", "end_users"."last_activity_at", "end_users"."deleted_at", "end_users"."deactivated_at", "end_users"."conversation_count", "end_users"."merged_into", "end_users"."version""#
    };
}

/// `store::views`: a user's identities as `source 0x1f key` records joined by 0x1e.
macro_rules! identities_column {
    () => {
        r#", (SELECT string_agg(i.source || chr(31) || i.identity_key, chr(30) ORDER BY i.source, i.identity_key) FROM end_user_identities i WHERE i.workspace_id = "end_users"."workspace_id" AND i.user_id = "end_users"."user_id") AS "identities""#
    };
}

/// `store::users::get` through `store::views`: the user by primary key, with identities.
const GET_USER: &str = concat!(
    "SELECT ",
    user_columns!(),
    identities_column!(),
    r#" FROM "end_users" WHERE "end_users"."workspace_id" = $1 AND "end_users"."user_id" = $2 LIMIT $3"#
);

/// `store::users::insert`: every column set.
const INSERT_USER: &str = r#"INSERT INTO "end_users" ("workspace_id", "user_id", "external_id", "email", "email_key", "name", "avatar_url", "customer_id", "status", "restore_status", "title", "first_name", "last_name", "phone", "mobile", "fax", "street", "zip", "city", "country", "notes", "search_text", "created_at", "updated_at", "confirmed_at", "last_activity_at", "deleted_at", "deactivated_at", "conversation_count", "merged_into", "version") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)"#;

/// `roster_db::outbox::append` with one event.
const INSERT_OUTBOX: &str = r#"INSERT INTO "outbox_events" ("workspace_id", "event_id", "occurred_at", "actor_kind", "actor_id", "action", "target_type", "target_id", "changes", "request_id", "trace_id", "peer_ip", "user_agent", "outcome", "delivered_at", "attempts", "traceparent") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"#;

/// `store::search::list_users` for the filter `email:<term>` in the default order
/// (created_at, then user_id), first page: live users only, the trigram pre-filter on
/// `search_text`, then the e-mail check, LIMIT page size + 1.
pub const SEARCH_FIRST_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    identities_column!(),
    r#" FROM "end_users" WHERE "end_users"."workspace_id" = $1 AND "end_users"."status" NOT IN ($2, $3, $4) AND ("end_users"."search_text" LIKE $5 ESCAPE E'\\' AND "end_users"."email_key" LIKE $6 ESCAPE E'\\') ORDER BY "end_users"."created_at" ASC, "end_users"."user_id" ASC LIMIT $7"#
);

/// The same with the keyset cursor of a later page.
pub const SEARCH_NEXT_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    identities_column!(),
    r#" FROM "end_users" WHERE "end_users"."workspace_id" = $1 AND "end_users"."status" NOT IN ($2, $3, $4) AND ("end_users"."search_text" LIKE $5 ESCAPE E'\\' AND "end_users"."email_key" LIKE $6 ESCAPE E'\\') AND ("end_users"."created_at", "end_users"."user_id") > ($7, $8) ORDER BY "end_users"."created_at" ASC, "end_users"."user_id" ASC LIMIT $9"#
);

const RETIRED: [&str; 3] = ["deleted", "merged", "erased"];

/// Every column of `end_users`, decoded as the service decodes it into its model.
pub fn decode_user(row: &PgRow) -> Result<end_user::Model, sqlx::Error> {
    Ok(end_user::Model {
        workspace_id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        external_id: row.try_get(2)?,
        email: row.try_get(3)?,
        email_key: row.try_get(4)?,
        name: row.try_get(5)?,
        avatar_url: row.try_get(6)?,
        customer_id: row.try_get(7)?,
        status: row.try_get(8)?,
        restore_status: row.try_get(9)?,
        title: row.try_get(10)?,
        first_name: row.try_get(11)?,
        last_name: row.try_get(12)?,
        phone: row.try_get(13)?,
        mobile: row.try_get(14)?,
        fax: row.try_get(15)?,
        street: row.try_get(16)?,
        zip: row.try_get(17)?,
        city: row.try_get(18)?,
        country: row.try_get(19)?,
        notes: row.try_get(20)?,
        search_text: row.try_get(21)?,
        created_at: row.try_get(22)?,
        updated_at: row.try_get(23)?,
        confirmed_at: row.try_get(24)?,
        last_activity_at: row.try_get(25)?,
        deleted_at: row.try_get(26)?,
        deactivated_at: row.try_get(27)?,
        conversation_count: row.try_get(28)?,
        merged_into: row.try_get(29)?,
        version: row.try_get(30)?,
    })
}

/// The `identities` column (index 31) split into (source, key) pairs.
fn decode_identities(row: &PgRow) -> Result<Vec<(String, String)>, sqlx::Error> {
    let aggregated: Option<String> = row.try_get(31)?;
    Ok(aggregated
        .unwrap_or_default()
        .split('\u{1e}')
        .filter_map(|pair| pair.split_once('\u{1f}'))
        .map(|(source, key)| (source.to_owned(), key.to_owned()))
        .collect())
}

/// GetUser's read: the user and its identities in one statement.
pub async fn get_user(
    pool: &PgPool,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<Option<UserView>, sqlx::Error> {
    let Some(row) = sqlx::query(GET_USER)
        .bind(workspace_id)
        .bind(user_id)
        .bind(1_i64)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(UserView {
        user: decode_user(&row)?,
        identities: decode_identities(&row)?,
    }))
}

/// A new active user as CreateUser builds it (derived e-mail key and search text).
pub fn new_user(workspace_id: &str, email: &str, name: &str, now_us: i64) -> end_user::Model {
    let mut user = end_user::Model {
        workspace_id: workspace_id.to_owned(),
        user_id: Uuid::now_v7(),
        external_id: String::new(),
        email: email.to_owned(),
        email_key: String::new(),
        name: name.to_owned(),
        avatar_url: String::new(),
        customer_id: String::new(),
        status: "active".to_owned(),
        restore_status: None,
        title: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        phone: String::new(),
        mobile: String::new(),
        fax: String::new(),
        street: String::new(),
        zip: String::new(),
        city: String::new(),
        country: String::new(),
        notes: String::new(),
        search_text: String::new(),
        created_at: now_us,
        updated_at: now_us,
        confirmed_at: Some(now_us),
        last_activity_at: 0,
        deleted_at: None,
        deactivated_at: None,
        conversation_count: 0,
        merged_into: None,
        version: 1,
    };
    refresh_derived(&mut user);
    user
}

/// `roster_db::Db::insert_atomically` of the user and its event, as the service sends it
/// on PostgreSQL: the user's INSERT as a data-modifying CTE of the outbox INSERT, one
/// statement and so one round trip, atomic without BEGIN and COMMIT.
fn insert_user_and_event() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let outbox = shift_placeholders(INSERT_OUTBOX, INSERT_USER.matches('$').count());
        format!(r#"WITH "w0" AS ({INSERT_USER}) {outbox}"#)
    })
}

/// `sql` with every placeholder `$n` renumbered to `$(n + by)`.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut shifted = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        shifted.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[..digits].parse::<usize>() {
            Ok(n) => shifted.push_str(&(n + by).to_string()),
            Err(_) => shifted.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    shifted.push_str(rest);
    shifted
}

/// CreateUser's writes as a plain client writes them: the user row and its
/// `end_user.created` outbox event (with the same before/after payload the service records)
/// in one transaction, BEGIN, INSERT, INSERT, COMMIT.
pub async fn create_user(pool: &PgPool, user: &end_user::Model) -> anyhow::Result<()> {
    let mut txn = pool.begin().await?;
    bind_user(sqlx::query(INSERT_USER), user)
        .execute(&mut *txn)
        .await?;
    bind_event(sqlx::query(INSERT_OUTBOX), user)?
        .execute(&mut *txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// The same writes in the one statement the service sends.
pub async fn create_user_in_one_statement(
    pool: &PgPool,
    user: &end_user::Model,
) -> anyhow::Result<()> {
    let query = sqlx::query(insert_user_and_event());
    bind_event(bind_user(query, user), user)?
        .execute(pool)
        .await?;
    Ok(())
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the `end_user.created` event of `user` after whatever `query` has bound.
fn bind_event<'q>(query: PgQuery<'q>, user: &'q end_user::Model) -> anyhow::Result<PgQuery<'q>> {
    let changes = serde_json::to_value(user_changes(None, user))?;
    Ok(query
        .bind(&user.workspace_id)
        .bind(Uuid::now_v7())
        .bind(user.created_at)
        .bind("agent")
        .bind("agent-bench")
        .bind("end_user.created")
        .bind("end_user")
        .bind(user.user_id.to_string())
        .bind(changes)
        .bind(Uuid::new_v4().to_string())
        .bind(None::<String>)
        .bind(Some("127.0.0.1".to_owned()))
        .bind(Some("roster-bench".to_owned()))
        .bind("success")
        .bind(None::<i64>)
        .bind(0_i32)
        .bind(None::<String>))
}

/// Binds every column of `user` in `INSERT_USER`'s order after whatever `query` has bound.
fn bind_user<'q>(query: PgQuery<'q>, user: &'q end_user::Model) -> PgQuery<'q> {
    query
        .bind(&user.workspace_id)
        .bind(user.user_id)
        .bind(&user.external_id)
        .bind(&user.email)
        .bind(&user.email_key)
        .bind(&user.name)
        .bind(&user.avatar_url)
        .bind(&user.customer_id)
        .bind(&user.status)
        .bind(&user.restore_status)
        .bind(&user.title)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&user.phone)
        .bind(&user.mobile)
        .bind(&user.fax)
        .bind(&user.street)
        .bind(&user.zip)
        .bind(&user.city)
        .bind(&user.country)
        .bind(&user.notes)
        .bind(&user.search_text)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.confirmed_at)
        .bind(user.last_activity_at)
        .bind(user.deleted_at)
        .bind(user.deactivated_at)
        .bind(user.conversation_count)
        .bind(user.merged_into)
        .bind(user.version)
}

/// Where a page of the default order starts: after (created_at, user_id) of the last row.
#[derive(Clone, Copy, Debug)]
pub struct PageCursor {
    pub created_at: i64,
    pub user_id: Uuid,
}

impl PageCursor {
    /// The baseline server's page token: `created_at.user_id` in the clear.
    pub fn token(self) -> String {
        format!("{}.{}", self.created_at, self.user_id)
    }

    pub fn from_token(token: &str) -> Option<Self> {
        let (created_at, user_id) = token.split_once('.')?;
        Some(Self {
            created_at: created_at.parse().ok()?,
            user_id: user_id.parse().ok()?,
        })
    }
}

/// `%term%` with LIKE's wildcards escaped, as `store::search::like_pattern` builds it.
pub fn like_pattern(term: &str) -> String {
    roster_directory::store::search::like_pattern(term)
}

/// One ListUsers page for `email:<term>` (page size `page_size`), with identities, as the
/// service reads it (one statement). Returns the page and the cursor of the next one.
pub async fn search_page(
    pool: &PgPool,
    workspace_id: &str,
    term: &str,
    page_size: i64,
    after: Option<PageCursor>,
) -> anyhow::Result<(Vec<UserView>, Option<PageCursor>)> {
    let pattern = like_pattern(&term.to_lowercase());
    let query = match after {
        None => sqlx::query(SEARCH_FIRST_PAGE),
        Some(_) => sqlx::query(SEARCH_NEXT_PAGE),
    }
    .bind(workspace_id)
    .bind(RETIRED[0])
    .bind(RETIRED[1])
    .bind(RETIRED[2])
    .bind(pattern.clone())
    .bind(pattern);
    let query = match after {
        None => query,
        Some(cursor) => query.bind(cursor.created_at).bind(cursor.user_id),
    };
    let rows = query.bind(page_size + 1).fetch_all(pool).await?;
    let mut users = rows
        .iter()
        .map(|row| {
            Ok(UserView {
                user: decode_user(row)?,
                identities: decode_identities(row)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let next = if users.len() as i64 > page_size {
        users.truncate(usize::try_from(page_size)?);
        users.last().map(|last| PageCursor {
            created_at: last.user.created_at,
            user_id: last.user.user_id,
        })
    } else {
        None
    };
    Ok((users, next))
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the list query for `email:<term>`, with the same bound
/// parameters (so PostgreSQL plans it as it plans the service's first executions).
pub async fn explain_search(
    conn: &mut PgConnection,
    workspace_id: &str,
    term: &str,
    page_size: i64,
    after: Option<PageCursor>,
) -> anyhow::Result<Vec<String>> {
    let pattern = like_pattern(&term.to_lowercase());
    let sql = match after {
        None => format!("EXPLAIN (ANALYZE, BUFFERS) {SEARCH_FIRST_PAGE}"),
        Some(_) => format!("EXPLAIN (ANALYZE, BUFFERS) {SEARCH_NEXT_PAGE}"),
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workspace_id)
        .bind(RETIRED[0])
        .bind(RETIRED[1])
        .bind(RETIRED[2])
        .bind(pattern.clone())
        .bind(pattern);
    let query = match after {
        None => query,
        Some(cursor) => query.bind(cursor.created_at).bind(cursor.user_id),
    };
    let rows = query.bind(page_size + 1).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| row.try_get::<String, _>(0).map_err(anyhow::Error::from))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use roster_db::outbox::{self, AuditEvent};

    use super::*;

    #[test]
    fn the_one_statement_create_is_what_the_store_sends() {
        let user = new_user("ws", "a@example.com", "A", 1);
        let event = AuditEvent {
            event_id: Uuid::now_v7(),
            workspace_id: "ws".to_owned(),
            occurred_at_us: 1,
            actor_kind: "agent".to_owned(),
            actor_id: "agent-1".to_owned(),
            action: "end_user.created".to_owned(),
            target_type: "end_user".to_owned(),
            target_id: user.user_id.to_string(),
            changes: user_changes(None, &user),
            request_id: String::new(),
            trace_id: None,
            traceparent: None,
            peer_ip: None,
            user_agent: None,
            outcome: "success".to_owned(),
        };
        let inserts = vec![
            roster_directory::store::users::insert_statement(&user),
            outbox::insert_statement(&[event]).unwrap(),
        ];

        let sent = roster_db::postgres_atomic_insert(inserts).unwrap();

        assert_eq!(sent.sql, insert_user_and_event());
    }
}
