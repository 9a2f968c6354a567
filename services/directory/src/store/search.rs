//! ListUsers: filter terms to SQL, with the trigram index of each backend serving infix
//! matches, and keyset paging over the chosen order.
//!
//! PostgreSQL: `search_text LIKE '%term%'` is served by the pg_trgm GIN index
//! `end_users_search_trgm`. SQLite: terms of three or more characters go through the FTS5
//! trigram table `end_users_fts`; shorter terms have no trigram to look up and scan.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, Order, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::domain::UserStatus;
use crate::domain::filter::{Comparison, Term, TextField, TimeField, UserFilter};
use crate::domain::order::{SortKey, UserOrder};
use crate::entity::end_user;
use crate::error::{DirectoryError, Result};
use roster_core::paging::Cursor;

/// `%term%` with LIKE's wildcards escaped, for `LIKE … ESCAPE '\'`.
pub fn like_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// An FTS5 phrase: inside double quotes every character is literal but `"`, doubled.
fn fts_phrase(column: &str, term: &str) -> String {
    format!("{column} : \"{}\"", term.replace('"', "\"\""))
}

fn contains(column: SimpleExpr, term: &str) -> SimpleExpr {
    column.like(LikeExpr::new(like_pattern(term)).escape('\\'))
}

/// A condition that the search index can answer: `term` occurs in e-mail, name or
/// external id. Field-specific terms add it as a pre-filter, then check their field.
fn search_text_contains(backend: DbBackend, term: &str) -> SimpleExpr {
    if backend == DbBackend::Sqlite && term.chars().count() >= 3 {
        Expr::cust_with_values(
            "\"end_users\".\"seq\" IN (SELECT rowid FROM end_users_fts WHERE end_users_fts MATCH ?)",
            [fts_phrase("search_text", term)],
        )
    } else {
        contains(
            Expr::col((end_user::Entity, end_user::Column::SearchText)),
            term,
        )
    }
}

fn customer_contains(backend: DbBackend, term: &str) -> SimpleExpr {
    let lowered = contains(
        Expr::expr(Func::lower(Expr::col((
            end_user::Entity,
            end_user::Column::CustomerId,
        )))),
        term,
    );
    if backend == DbBackend::Sqlite && term.chars().count() >= 3 {
        Expr::cust_with_values(
            "\"end_users\".\"seq\" IN (SELECT rowid FROM end_users_fts WHERE end_users_fts MATCH ?)",
            [fts_phrase("customer_id", term)],
        )
        .and(lowered)
    } else {
        lowered
    }
}

fn lowered(column: end_user::Column) -> SimpleExpr {
    Expr::expr(Func::lower(Expr::col((end_user::Entity, column))))
}

fn term_condition(backend: DbBackend, term: &Term) -> SimpleExpr {
    match term {
        Term::Contains {
            field: TextField::Any,
            value,
        } => search_text_contains(backend, value),
        Term::Contains {
            field: TextField::Email,
            value,
        } => search_text_contains(backend, value).and(contains(
            Expr::col((end_user::Entity, end_user::Column::EmailKey)),
            value,
        )),
        Term::Contains {
            field: TextField::Name,
            value,
        } => search_text_contains(backend, value)
            .and(contains(lowered(end_user::Column::Name), value)),
        Term::Contains {
            field: TextField::ExternalId,
            value,
        } => search_text_contains(backend, value)
            .and(contains(lowered(end_user::Column::ExternalId), value)),
        Term::Contains {
            field: TextField::Customer,
            value,
        } => customer_contains(backend, value),
        Term::NoCustomer => end_user::Column::CustomerId.eq(""),
        Term::Status(status) => end_user::Column::Status.eq(status.as_str()),
        Term::Time {
            field,
            comparison,
            at_us,
        } => {
            let column = match field {
                TimeField::CreatedAt => end_user::Column::CreatedAt,
                TimeField::LastActivityAt => end_user::Column::LastActivityAt,
            };
            let at = *at_us;
            match comparison {
                Comparison::Lt => column.lt(at),
                Comparison::Le => column.lte(at),
                Comparison::Gt => column.gt(at),
                Comparison::Ge => column.gte(at),
                Comparison::Eq => column.eq(at),
            }
        }
    }
}

pub fn sort_column(key: SortKey) -> end_user::Column {
    match key {
        SortKey::Email => end_user::Column::EmailKey,
        SortKey::Status => end_user::Column::Status,
        SortKey::Conversations => end_user::Column::ConversationCount,
        SortKey::CreatedAt => end_user::Column::CreatedAt,
        SortKey::LastActivityAt => end_user::Column::LastActivityAt,
    }
}

/// The cursor that resumes after `user` in `order`.
pub fn cursor_after(user: &end_user::Model, order: UserOrder, fingerprint: String) -> Cursor {
    let (text, number) = match order.key {
        SortKey::Email => (Some(user.email_key.clone()), None),
        SortKey::Status => (Some(user.status.clone()), None),
        SortKey::Conversations => (None, Some(user.conversation_count)),
        SortKey::CreatedAt => (None, Some(user.created_at)),
        SortKey::LastActivityAt => (None, Some(user.last_activity_at)),
    };
    Cursor {
        text,
        number,
        id: Some(user.user_id.to_string()),
        query: fingerprint,
    }
}

fn after_cursor(order: UserOrder, cursor: &Cursor) -> Result<SimpleExpr> {
    let bad = || {
        DirectoryError::invalid(
            "page_token",
            "is not a token this list returned; start again without it",
        )
    };
    let id = cursor
        .id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(bad)?;
    let value: SimpleExpr = if order.key.is_text() {
        Expr::value(cursor.text.clone().ok_or_else(bad)?)
    } else {
        Expr::value(cursor.number.ok_or_else(bad)?)
    };
    // Row values let both engines seek the (workspace_id, sort column, user_id) index.
    let row = Expr::tuple([
        Expr::col((end_user::Entity, sort_column(order.key))),
        Expr::col((end_user::Entity, end_user::Column::UserId)),
    ]);
    let start = Expr::tuple([value, Expr::value(id)]);
    Ok(if order.descending {
        row.lt(start)
    } else {
        row.gt(start)
    })
}

pub struct UserQuery<'a> {
    pub workspace_id: &'a str,
    pub filter: &'a UserFilter,
    pub order: UserOrder,
    pub show_deleted: bool,
    pub cursor: Option<&'a Cursor>,
    pub limit: u64,
}

pub async fn list_users<C: ConnectionTrait>(
    conn: &C,
    query: &UserQuery<'_>,
) -> Result<Vec<(end_user::Model, Vec<(String, String)>)>> {
    let backend = conn.get_database_backend();
    let mut select =
        end_user::Entity::find().filter(end_user::Column::WorkspaceId.eq(query.workspace_id));
    if !query.show_deleted && !query.filter.mentions_status() {
        select = select.filter(end_user::Column::Status.is_not_in(UserStatus::retired_texts()));
    }
    for term in &query.filter.terms {
        select = select.filter(term_condition(backend, term));
    }
    if let Some(cursor) = query.cursor {
        select = select.filter(after_cursor(query.order, cursor)?);
    }
    let direction = if query.order.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    let select = select
        .order_by(sort_column(query.order.key), direction.clone())
        .order_by(end_user::Column::UserId, direction)
        .limit(query.limit);
    super::views::users_with_identities(conn, select).await
}
