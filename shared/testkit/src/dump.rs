//! Every value a test database holds, for tests that prove something is gone from it
//! (erasure): nothing personal may survive in any table, index or column a later change
//! adds, so the dump reads whatever the catalogue lists rather than a fixed set.

use roster_db::{Db, DbSettings};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

/// Every value in every table of the database at `database_url`, as lower-cased text:
/// (table, column, value). On SQLite blobs are read as their bytes, so full-text indexes'
/// segments are searched too.
///
/// # Panics
///
/// The database cannot be read (a test helper: the test fails).
#[allow(clippy::unwrap_used)]
pub async fn database_dump(database_url: &str) -> Vec<(String, String, String)> {
    let db = Db::connect(&DbSettings::new(database_url)).await.unwrap();
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let strings = |sql: String| async move {
        conn.query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.try_get_by_index::<Option<String>>(0).unwrap())
            .collect::<Vec<_>>()
    };
    let columns_sql = |table: &str| match backend {
        DbBackend::Postgres => format!(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        _ => format!("SELECT name FROM pragma_table_info('{table}')"),
    };
    let tables_sql = match backend {
        DbBackend::Postgres => "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema()"
            .to_owned(),
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'".to_owned(),
    };
    let mut dump = Vec::new();
    for table in strings(tables_sql).await.into_iter().flatten() {
        for column in strings(columns_sql(&table)).await.into_iter().flatten() {
            let value = match backend {
                DbBackend::Postgres => format!("CAST(\"{column}\" AS TEXT)"),
                _ => format!("hex(CAST(\"{column}\" AS BLOB))"),
            };
            let values = strings(format!("SELECT {value} FROM \"{table}\"")).await;
            for text in values.into_iter().flatten() {
                let text = match backend {
                    DbBackend::Postgres => text,
                    _ => String::from_utf8_lossy(&unhex(&text)).into_owned(),
                };
                dump.push((table.clone(), column.clone(), text.to_lowercase()));
            }
        }
    }
    db.close().await;
    dump
}

#[allow(clippy::unwrap_used)]
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect()
}
