//! Rows of one workspace looked up by many keys of a unique index, one index probe a key.
//!
//! Not `key IN (…)`, nor a plain join: before PostgreSQL has analyzed a young log, it
//! planned both as a scan of all the workspace's rows, matched against the keys, a cost
//! that grows with the log: 21 ms for a batch of 100 event ids at 14,000 events (paid under
//! the log's lock by every append), 47 ms for the 400 hashes of a round of proofs at
//! 200,000 events, against 0.3 ms through the index. A LATERAL lookup with `LIMIT 1` cannot
//! be flattened into such a join, so PostgreSQL probes the index once per key; SQLite,
//! which has no LATERAL, probes it for a join on a unique index anyway.

use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, Value};

use crate::error::Result;

/// Keys per statement on SQLite, which binds at most 32,766 values (PostgreSQL binds one
/// array, whatever its length).
const SQLITE_KEYS_PER_STATEMENT: usize = 5000;

/// The keys looked up, all of one column's type.
pub enum Keys {
    Uuids(Vec<uuid::Uuid>),
    BigInts(Vec<i64>),
}

impl Keys {
    /// The keys in runs of at most `size`.
    fn chunks(self, size: usize) -> Vec<Keys> {
        match self {
            Keys::Uuids(keys) => keys
                .chunks(size)
                .map(|run| Keys::Uuids(run.to_vec()))
                .collect(),
            Keys::BigInts(keys) => keys
                .chunks(size)
                .map(|run| Keys::BigInts(run.to_vec()))
                .collect(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Keys::Uuids(keys) => keys.len(),
            Keys::BigInts(keys) => keys.len(),
        }
    }

    fn into_values(self) -> Vec<Value> {
        match self {
            Keys::Uuids(keys) => keys.into_iter().map(Value::from).collect(),
            Keys::BigInts(keys) => keys.into_iter().map(Value::from).collect(),
        }
    }

    /// One array parameter, so the statement's text is the same for any number of keys
    /// and the connection prepares it once.
    fn into_array(self) -> (Value, &'static str) {
        match self {
            Keys::Uuids(keys) => (array(ArrayType::Uuid, keys), "uuid[]"),
            Keys::BigInts(keys) => (array(ArrayType::BigInt, keys), "bigint[]"),
        }
    }
}

fn array<T: Into<Value>>(of: ArrayType, keys: Vec<T>) -> Value {
    Value::Array(
        of,
        Some(Box::new(keys.into_iter().map(Into::into).collect())),
    )
}

/// The rows of `E` in `workspace_id` whose `key_column` is one of `keys`, by [`statement`].
pub async fn find<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    key_column: &str,
    workspace_id: &str,
    keys: Keys,
) -> Result<Vec<E::Model>> {
    let backend = conn.get_database_backend();
    let per_statement = match backend {
        DbBackend::Postgres => usize::MAX,
        _ => SQLITE_KEYS_PER_STATEMENT,
    };
    let mut found = Vec::new();
    for run in keys.chunks(per_statement) {
        let table = E::default().table_name().to_owned();
        let statement = statement(backend, &table, key_column, workspace_id, run);
        found.extend(E::find().from_raw_sql(statement).all(conn).await?);
    }
    Ok(found)
}

/// Selects every column of `table`'s rows in `workspace_id` whose `key_column` is one of
/// `keys`. `table` and `key_column` are the code's own names, never input.
pub fn statement(
    backend: DbBackend,
    table: &str,
    key_column: &str,
    workspace_id: &str,
    keys: Keys,
) -> Statement {
    match backend {
        DbBackend::Postgres => {
            let (keys, array_type) = keys.into_array();
            let sql = format!(
                "SELECT found.* FROM unnest($2::{array_type}) AS wanted (key) CROSS JOIN LATERAL \
                 (SELECT * FROM {table} WHERE workspace_id = $1 \
                 AND {key_column} = wanted.key LIMIT 1) AS found"
            );
            Statement::from_sql_and_values(backend, sql, [workspace_id.into(), keys])
        }
        _ => {
            let sql = format!(
                "SELECT found.* FROM (VALUES {}) AS wanted JOIN {table} AS found \
                 ON found.workspace_id = ? AND found.{key_column} = wanted.column1",
                vec!["(?)"; keys.len()].join(", ")
            );
            // `?` are numbered in text order: the keys, then the workspace.
            let mut values = keys.into_values();
            values.push(workspace_id.into());
            Statement::from_sql_and_values(backend, sql, values)
        }
    }
}
