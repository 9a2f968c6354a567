//! Set-based writes on PostgreSQL: many rows per statement, held column by column.
//!
//! New rows go in with one `COPY … FROM STDIN` per batch, the cheapest way into a table
//! with indexes: the server skips the executor and fills pages many rows at a time, so an
//! import pays little beyond index maintenance. Changed rows bind one array per column and
//! are merged with one `UPDATE … FROM unnest($1, $2, …)`, prepared once per connection.
//! (COPY needs `TCP_NODELAY`: its data and its end marker are separate writes, and with
//! Nagle's algorithm on every COPY waited out a 40 ms delayed ACK; see `vendor/README.md`.)
//!
//! SeaORM does not expose a transaction's connection, so a bulk path runs its whole
//! transaction on a raw sqlx connection from [`Db::begin_postgres`](crate::Db::begin_postgres).
//! Rows are taken from SeaORM models column by column in the entity's own column order, so
//! the statement can never drift from the schema the entity describes.

use sea_orm::sqlx::postgres::{PgArguments, PgConnection};
use sea_orm::sqlx::query::Query;
use sea_orm::sqlx::{self, AssertSqlSafe, Postgres};
use sea_orm::{
    ActiveModelTrait, EntityTrait, IdenStatic, IntoActiveModel, Iterable, PrimaryKeyToColumn, Value,
};

use crate::error::{DbError, Result};

/// A PostgreSQL transaction on a raw sqlx connection (see [`Db::begin_postgres`]): `&mut
/// *txn` is a `PgConnection` for this module's functions and for sqlx queries. Dropping it
/// rolls back.
///
/// [`Db::begin_postgres`]: crate::Db::begin_postgres
pub type PgTxn = sqlx::Transaction<'static, Postgres>;

/// One value of a row to write, typed as the column's array will be.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(Option<String>),
    /// JSON already serialised: sent as text and cast, so the database parses it once and
    /// the service never builds a JSON tree just to print it.
    Json(Option<String>),
    BigInt(Option<i64>),
    Int(Option<i32>),
    Bool(Option<bool>),
    Uuid(Option<uuid::Uuid>),
}

impl TryFrom<Value> for Cell {
    type Error = DbError;

    fn try_from(value: Value) -> Result<Cell> {
        Ok(match value {
            Value::String(v) => Cell::Text(v),
            Value::Json(v) => Cell::Json(v.map(|json| json.to_string())),
            Value::BigInt(v) => Cell::BigInt(v),
            Value::Int(v) => Cell::Int(v),
            Value::Bool(v) => Cell::Bool(v),
            Value::Uuid(v) => Cell::Uuid(v),
            other => {
                return Err(DbError::Other(format!(
                    "bulk writes cannot bind a column of {other:?}"
                )));
            }
        })
    }
}

impl Cell {
    /// Appends the value in COPY's text format.
    fn push_copy_text(&self, out: &mut String) {
        match self {
            Cell::Text(Some(text)) | Cell::Json(Some(text)) => push_copy_escaped(text, out),
            Cell::BigInt(Some(n)) => push_display(n, out),
            Cell::Int(Some(n)) => push_display(n, out),
            Cell::Bool(Some(b)) => out.push(if *b { 't' } else { 'f' }),
            Cell::Uuid(Some(id)) => {
                let mut buffer = uuid::Uuid::encode_buffer();
                out.push_str(id.hyphenated().encode_lower(&mut buffer));
            }
            Cell::Text(None)
            | Cell::Json(None)
            | Cell::BigInt(None)
            | Cell::Int(None)
            | Cell::Bool(None)
            | Cell::Uuid(None) => out.push_str(COPY_NULL),
        }
    }

    /// Bytes the value takes in COPY's text format, escapes aside.
    fn copy_len(&self) -> usize {
        match self {
            Cell::Text(Some(text)) | Cell::Json(Some(text)) => text.len(),
            Cell::Uuid(Some(_)) => 36,
            _ => 20,
        }
    }
}

/// One column's values across all rows, bound as one PostgreSQL array.
#[derive(Debug)]
enum Array {
    Text(Vec<Option<String>>),
    Json(Vec<Option<String>>),
    BigInt(Vec<Option<i64>>),
    Int(Vec<Option<i32>>),
    Bool(Vec<Option<bool>>),
    Uuid(Vec<Option<uuid::Uuid>>),
}

impl Array {
    fn for_cell(cell: &Cell) -> Array {
        match cell {
            Cell::Text(_) => Array::Text(Vec::new()),
            Cell::Json(_) => Array::Json(Vec::new()),
            Cell::BigInt(_) => Array::BigInt(Vec::new()),
            Cell::Int(_) => Array::Int(Vec::new()),
            Cell::Bool(_) => Array::Bool(Vec::new()),
            Cell::Uuid(_) => Array::Uuid(Vec::new()),
        }
    }

    fn sql_type(&self) -> &'static str {
        match self {
            Array::Text(_) => "text[]",
            Array::Json(_) => "text[]::jsonb[]",
            Array::BigInt(_) => "int8[]",
            Array::Int(_) => "int4[]",
            Array::Bool(_) => "bool[]",
            Array::Uuid(_) => "uuid[]",
        }
    }

    fn push(&mut self, cell: Cell) -> Result<()> {
        match (self, cell) {
            (Array::Text(values), Cell::Text(v)) => values.push(v),
            (Array::Json(values), Cell::Json(v)) => values.push(v),
            (Array::BigInt(values), Cell::BigInt(v)) => values.push(v),
            (Array::Int(values), Cell::Int(v)) => values.push(v),
            (Array::Bool(values), Cell::Bool(v)) => values.push(v),
            (Array::Uuid(values), Cell::Uuid(v)) => values.push(v),
            (array, cell) => {
                return Err(DbError::Other(format!(
                    "bulk writes: {cell:?} in a column of {}",
                    array.sql_type()
                )));
            }
        }
        Ok(())
    }

    fn bind(self, query: Query<'_, Postgres, PgArguments>) -> Query<'_, Postgres, PgArguments> {
        match self {
            Array::Text(values) | Array::Json(values) => query.bind(values),
            Array::BigInt(values) => query.bind(values),
            Array::Int(values) => query.bind(values),
            Array::Bool(values) => query.bind(values),
            Array::Uuid(values) => query.bind(values),
        }
    }
}

/// How COPY's text format spells NULL.
const COPY_NULL: &str = "\\N";

fn push_display(value: impl std::fmt::Display, out: &mut String) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = write!(out, "{value}");
}

/// COPY's text format gives backslash, tab, newline and carriage return a meaning, so those
/// are escaped; everything else, multi-byte UTF-8 included, goes through as it is. Text
/// rarely holds any of the four, so it is copied in runs between them.
fn push_copy_escaped(text: &str, out: &mut String) {
    let mut run = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => continue,
        };
        // The four are ASCII, so `at` is a character boundary.
        out.push_str(&text[run..at]);
        out.push_str(escaped);
        run = at + 1;
    }
    out.push_str(&text[run..]);
}

/// Rows to insert with [`insert`], already in COPY's text format: tab-separated, one line
/// per row, so a batch is one buffer rather than a value per cell.
#[derive(Debug, Default)]
pub struct CopyRows {
    columns: Vec<&'static str>,
    text: String,
    rows: usize,
}

impl CopyRows {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one row: `(column, value)` in the same column order for every row.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = (&'static str, Cell)>) -> Result<()> {
        let start = self.text.len();
        let outcome = self.push_cells(row);
        if outcome.is_err() {
            // Leave no partial line behind.
            self.text.truncate(start);
        }
        outcome
    }

    fn push_cells(&mut self, row: impl IntoIterator<Item = (&'static str, Cell)>) -> Result<()> {
        let mut index = 0;
        for (name, value) in row {
            if self.rows == 0 {
                self.columns.push(name);
            } else if self.columns.get(index) != Some(&name) {
                return Err(DbError::Other(format!(
                    "bulk writes: column {name} where {} was expected",
                    self.columns
                        .get(index)
                        .copied()
                        .unwrap_or("the end of the row")
                )));
            }
            if index > 0 {
                self.text.push('\t');
            }
            self.text.reserve(value.copy_len() + 1);
            value.push_copy_text(&mut self.text);
            index += 1;
        }
        if index != self.columns.len() {
            return Err(DbError::Other(format!(
                "bulk writes: a row of {index} columns among rows of {}",
                self.columns.len()
            )));
        }
        self.text.push('\n');
        self.rows += 1;
        Ok(())
    }

    /// Every column of `model`, in the entity's column order.
    pub fn push_model<E>(&mut self, model: E::Model) -> Result<()>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
    {
        self.push_row(model_cells::<E>(model)?)
    }
}

/// Every column of `model` as a cell, in the entity's column order, moved rather than copied.
fn model_cells<E>(model: E::Model) -> Result<Vec<(&'static str, Cell)>>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let mut active = model.into_active_model();
    let mut cells = Vec::with_capacity(E::Column::iter().len() + 1);
    for column in E::Column::iter() {
        let value = active.take(column).into_value().ok_or_else(|| {
            DbError::Other(format!("bulk writes: {} has no value", column.as_str()))
        })?;
        cells.push((column.as_str(), Cell::try_from(value)?));
    }
    Ok(cells)
}

/// Rows to merge with [`update_models`], held column by column, each bound as one array.
#[derive(Debug, Default)]
pub struct Columns {
    columns: Vec<(&'static str, Array)>,
    rows: usize,
}

impl Columns {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one row: `(column, value)` in the same column order for every row.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = (&'static str, Cell)>) -> Result<()> {
        let mut index = 0;
        for (name, value) in row {
            if index == self.columns.len() {
                if self.rows > 0 {
                    return Err(DbError::Other(format!(
                        "bulk writes: column {name} missing from earlier rows"
                    )));
                }
                self.columns.push((name, Array::for_cell(&value)));
            }
            let (expected, array) = &mut self.columns[index];
            if *expected != name {
                return Err(DbError::Other(format!(
                    "bulk writes: column {name} where {expected} was expected"
                )));
            }
            array.push(value)?;
            index += 1;
        }
        if index != self.columns.len() {
            return Err(DbError::Other(format!(
                "bulk writes: a row of {index} columns among rows of {}",
                self.columns.len()
            )));
        }
        self.rows += 1;
        Ok(())
    }

    /// [`Columns::push_row`] of every column of `model` plus one trailing column.
    fn push_model_and<E>(&mut self, model: E::Model, extra: (&'static str, Cell)) -> Result<()>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
    {
        let mut cells = model_cells::<E>(model)?;
        cells.push(extra);
        self.push_row(cells)
    }

    fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(name, _)| *name).collect()
    }

    /// `unnest($1::text[], …) AS alias (columns)`, numbering parameters from 1.
    fn unnest(&self, alias: &str) -> String {
        let arrays = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, array))| format!("${}::{}", i + 1, array.sql_type()))
            .collect::<Vec<_>>()
            .join(", ");
        format!("unnest({arrays}) AS {alias} ({})", self.names().join(", "))
    }

    fn bind(self, sql: &str) -> Query<'_, Postgres, PgArguments> {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (_, array) in self.columns {
            query = array.bind(query);
        }
        query
    }
}

/// `COPY table (columns) FROM STDIN` of every row; returns the rows inserted. A unique or
/// other constraint violation fails the whole COPY, as it would a multi-row INSERT.
///
/// `table` and the column names come from code (entity definitions), never from requests;
/// values travel as COPY data, never as SQL.
pub async fn insert(conn: &mut PgConnection, table: &str, rows: CopyRows) -> Result<u64> {
    if rows.rows == 0 {
        return Ok(0);
    }
    let statement = format!("COPY {table} ({}) FROM STDIN", rows.columns.join(", "));
    let mut copy = conn.copy_in_raw(&statement).await?;
    // On error the COPY is abandoned with the connection's transaction, which fails.
    copy.send(rows.text.into_bytes()).await?;
    Ok(copy.finish().await?)
}

/// Inserts `models` (every column of the entity).
pub async fn insert_models<E>(conn: &mut PgConnection, rows: CopyRows) -> Result<u64>
where
    E: EntityTrait,
{
    insert(conn, E::default().table_name(), rows).await
}

/// Rows for [`update_models`]: each current model with the version it was read at.
pub fn versioned_rows<E>(changes: impl IntoIterator<Item = (i64, E::Model)>) -> Result<Columns>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let mut rows = Columns::new();
    for (stored_version, model) in changes {
        rows.push_model_and::<E>(
            model,
            ("stored_version", Cell::BigInt(Some(stored_version))),
        )?;
    }
    Ok(rows)
}

/// Writes every row of [`versioned_rows`] over the row with the same primary key, only where
/// that row still has the version it was read at in `version_column`: one `UPDATE … FROM
/// unnest(…)`. Returns the rows updated; fewer than given means someone else wrote first.
pub async fn update_models<E: EntityTrait>(
    conn: &mut PgConnection,
    version_column: E::Column,
    rows: Columns,
) -> Result<u64> {
    if rows.rows == 0 {
        return Ok(0);
    }
    let keys: Vec<&str> = E::PrimaryKey::iter()
        .map(|key| key.into_column().as_str())
        .collect();
    let assigned: Vec<&str> = E::Column::iter()
        .map(|column| column.as_str())
        .filter(|column| !keys.contains(column))
        .collect();
    let matches = keys
        .iter()
        .map(|key| format!("t.{key} = r.{key}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sources = assigned
        .iter()
        .map(|column| format!("r.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE {table} AS t SET ({targets}) = ROW({sources}) FROM {unnest} \
         WHERE {matches} AND t.{version} = r.stored_version",
        table = E::default().table_name(),
        targets = assigned.join(", "),
        unnest = rows.unnest("r"),
        version = version_column.as_str(),
    );
    Ok(rows.bind(&sql).execute(conn).await?.rows_affected())
}

/// Whether a read locks the rows it finds until its transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locking {
    /// Plain reads: writes are checked against the versions read instead.
    None,
    /// `FOR UPDATE`: no other writer can change the rows before this transaction ends.
    ForUpdate,
    /// `FOR KEY SHARE`: the rows can be updated but not deleted, nor locked `FOR UPDATE`,
    /// before this transaction ends; for rows the transaction's writes depend on without
    /// changing them (the customer of a new user).
    KeyShare,
}

/// Rows of `E` in the workspace whose `column` is one of `values`: one statement binding one
/// array, however many values.
///
/// Written as one index probe per value (a `LATERAL` subquery that `OFFSET 0` keeps from
/// being flattened into a join) rather than `column = ANY($2)`: planned for a 1000-value
/// array on a table whose statistics are stale, as they are during a large import, `ANY`
/// is estimated to match most of the table and becomes a sequential scan per batch (an
/// import of a million rows slowed to a few thousand rows a second). A probe per value uses
/// the index whatever the statistics say.
///
/// With locking the values are probed in sorted order (the lateral join walks the array in
/// order), so two transactions locking overlapping sets take the locks in the same order.
pub async fn select_any<E: EntityTrait>(
    conn: &mut PgConnection,
    workspace_id: &str,
    column: E::Column,
    values: &[String],
    locking: Locking,
) -> Result<Vec<E::Model>> {
    use sea_orm::{FromQueryResult, QueryResult};
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let sql = select_any_statement::<E>(column, locking);
    let query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id);
    let query = match locking {
        Locking::None => query.bind(values),
        Locking::ForUpdate | Locking::KeyShare => {
            let mut sorted = values.to_vec();
            sorted.sort_unstable();
            query.bind(sorted)
        }
    };
    let rows = query.fetch_all(conn).await?;
    rows.into_iter()
        .map(|row| Ok(E::Model::from_query_result(&QueryResult::from(row), "")?))
        .collect()
}

/// The statement [`select_any`] runs, with the workspace as `$1` and the values as `$2`
/// (for plan checks).
pub fn select_any_statement<E: EntityTrait>(column: E::Column, locking: Locking) -> String {
    format!(
        "SELECT t.* FROM unnest($2::text[]) AS k (value) CROSS JOIN LATERAL \
         (SELECT * FROM {} WHERE workspace_id = $1 AND {} = k.value OFFSET 0{}) AS t",
        E::default().table_name(),
        column.as_str(),
        match locking {
            Locking::None => "",
            Locking::ForUpdate => " FOR UPDATE",
            Locking::KeyShare => " FOR KEY SHARE",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, n: Option<i64>) -> Vec<(&'static str, Cell)> {
        vec![
            ("id", Cell::Text(Some(id.to_owned()))),
            ("n", Cell::BigInt(n)),
        ]
    }

    #[test]
    fn columns_are_typed_by_their_values_and_nulls_keep_the_type() {
        let mut rows = Columns::new();
        rows.push_row(row("a", None)).ok();
        rows.push_row(row("b", Some(2))).ok();
        assert_eq!(rows.rows(), 2);
        assert_eq!(
            rows.unnest("r"),
            "unnest($1::text[], $2::int8[]) AS r (id, n)"
        );
    }

    #[test]
    fn rows_must_agree_on_their_columns() {
        let mut rows = Columns::new();
        assert!(rows.push_row(row("a", Some(1))).is_ok());
        assert!(rows.push_row(vec![("id", Cell::Text(None))]).is_err());
        assert!(
            rows.push_row(vec![("n", Cell::BigInt(None)), ("id", Cell::Text(None))])
                .is_err()
        );
        assert!(
            rows.push_row(vec![
                ("id", Cell::BigInt(Some(1))),
                ("n", Cell::BigInt(None))
            ])
            .is_err()
        );
    }

    #[test]
    fn json_travels_as_text_and_is_cast() {
        let mut rows = Columns::new();
        let doc = Cell::try_from(Value::Json(Some(Box::new(serde_json::json!({"a": 1})))));
        assert_eq!(
            doc.as_ref().ok(),
            Some(&Cell::Json(Some("{\"a\":1}".to_owned())))
        );
        rows.push_row(doc.map(|doc| ("doc", doc))).ok();
        assert_eq!(rows.unnest("r"), "unnest($1::text[]::jsonb[]) AS r (doc)");
    }

    #[test]
    fn copy_text_escapes_what_the_format_reserves_and_spells_null() {
        let mut rows = CopyRows::new();
        let id = uuid::Uuid::nil();
        rows.push_row([
            ("t", Cell::Text(Some("a\tb\\c\nd\re ✓ \\N".to_owned()))),
            ("n", Cell::BigInt(None)),
            ("j", Cell::Json(Some(r#"{"a":"x\ty"}"#.to_owned()))),
            ("b", Cell::Bool(Some(true))),
            ("u", Cell::Uuid(Some(id))),
        ])
        .ok();
        rows.push_row([
            ("t", Cell::Text(None)),
            ("n", Cell::BigInt(Some(-7))),
            ("j", Cell::Json(None)),
            ("b", Cell::Bool(Some(false))),
            ("u", Cell::Uuid(None)),
        ])
        .ok();
        assert_eq!(rows.rows(), 2);
        assert_eq!(
            rows.text,
            "a\\tb\\\\c\\nd\\re ✓ \\\\N\t\\N\t{\"a\":\"x\\\\ty\"}\tt\t00000000-0000-0000-0000-000000000000\n\
             \\N\t-7\t\\N\tf\t\\N\n"
        );
    }

    #[test]
    fn copy_rows_must_agree_on_their_columns_and_keep_no_partial_line() {
        let mut rows = CopyRows::new();
        assert!(rows.push_row(row("a", Some(1))).is_ok());
        assert!(rows.push_row(vec![("id", Cell::Text(None))]).is_err());
        assert!(
            rows.push_row(vec![("n", Cell::BigInt(None)), ("id", Cell::Text(None))])
                .is_err()
        );
        assert_eq!((rows.rows(), rows.text.as_str()), (1, "a\t1\n"));
        assert_eq!(rows.columns, ["id", "n"]);
    }

    #[test]
    fn unsupported_values_are_errors() {
        assert!(Cell::try_from(Value::Bytes(Some(vec![1]))).is_err());
    }
}
