//! Synthetic end-users, bulk-loaded with COPY straight into the directory's migrated schema
//! (every index, the trigram ones included, is in place while loading), and the same people
//! as a Fogbender CSV for ImportUsers.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use roster_directory::domain::user_fields::search_text;
use sea_orm::sqlx::{Executor as _, PgConnection};
use uuid::Uuid;

/// The workspace every bench user lives in.
pub const WORKSPACE: &str = "bench";
/// A search term that only the few planted users match.
pub const SELECTIVE_TERM: &str = "kirk";
/// A search term that nine in ten users match (their e-mail domain).
pub const COMMON_TERM: &str = "example";
/// How many users are planted with [`SELECTIVE_TERM`] in their e-mail.
pub const PLANTED: u64 = 5;
/// Customers the import spreads its users over.
const CUSTOMERS: u64 = 1000;
/// Bytes buffered before each COPY message.
const COPY_CHUNK: usize = 1 << 20;
/// How many user ids are kept for GetUser to pick from.
const SAMPLE_IDS: u64 = 10_000;
/// created_at of user 0 (2026-01-01T00:00:00Z, µs); user i was created i ms later.
const BASE_CREATED_US: i64 = 1_767_225_600_000_000;

const FIRST: [&str; 20] = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
];
const LAST: [&str; 20] = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
];

/// User `i` of a data set of `total`.
pub struct Person {
    pub external_id: String,
    pub email: String,
    pub name: String,
    pub phone: String,
    pub created_at: i64,
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn person(i: u64, total: u64) -> Person {
    let planted_every = (total / PLANTED).max(1);
    let (first, last) = if i % planted_every == planted_every / 2 {
        ("captain", "kirk")
    } else {
        (FIRST[(i % 20) as usize], LAST[((i / 20) % 20) as usize])
    };
    let domain = if i % 10 == 9 {
        "acme.test"
    } else {
        "example.com"
    };
    Person {
        external_id: format!("ext-{i}"),
        email: format!("{first}.{last}{i}@{domain}"),
        name: format!("{} {}", capitalised(first), capitalised(last)),
        phone: format!("+1 555 {:07}", i % 10_000_000),
        created_at: BASE_CREATED_US
            .saturating_add(i64::try_from(i).unwrap_or(i64::MAX).saturating_mul(1000)),
    }
}

fn customer_of(i: u64) -> (String, String) {
    let n = i % CUSTOMERS;
    (format!("cust-{n:04}"), format!("Customer {n:04}"))
}

/// Appends `value` to a COPY text-format row, escaping what the format requires.
fn push_field(row: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => row.push_str("\\\\"),
            '\n' => row.push_str("\\n"),
            '\r' => row.push_str("\\r"),
            '\t' => row.push_str("\\t"),
            c => row.push(c),
        }
    }
}

/// One `end_users` row as the directory stores a new active user (derived `email_key` and
/// `search_text`; columns not listed take their defaults).
const USER_COPY: &str = "COPY end_users (workspace_id, user_id, external_id, email, email_key, \
    name, customer_id, status, phone, search_text, created_at, updated_at, confirmed_at) FROM STDIN";

fn push_user_row(buffer: &mut String, person: &Person, user_id: Uuid, customer_id: &str) {
    let email_key = person.email.to_lowercase();
    let search = search_text(&person.email, &person.name, &person.external_id);
    let fields: [&str; 10] = [
        WORKSPACE,
        &user_id.to_string(),
        &person.external_id,
        &person.email,
        &email_key,
        &person.name,
        customer_id,
        "active",
        &person.phone,
        &search,
    ];
    for field in fields {
        push_field(buffer, field);
        buffer.push('\t');
    }
    let created = person.created_at.to_string();
    buffer.push_str(&created);
    buffer.push('\t');
    buffer.push_str(&created);
    buffer.push('\t');
    buffer.push_str(&created);
    buffer.push('\n');
}

/// Streams rows produced by `row(i, buffer)` for `i` in `0..count` through one COPY.
async fn copy_rows(
    conn: &mut PgConnection,
    statement: &str,
    count: u64,
    mut row: impl FnMut(u64, &mut String) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut copy = conn
        .copy_in_raw(statement)
        .await
        .with_context(|| format!("starting {statement}"))?;
    let mut buffer = String::with_capacity(COPY_CHUNK + 4096);
    for i in 0..count {
        row(i, &mut buffer)?;
        if buffer.len() >= COPY_CHUNK {
            copy.send(buffer.as_bytes()).await?;
            buffer.clear();
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.as_bytes()).await?;
    }
    copy.finish()
        .await
        .with_context(|| format!("finishing {statement}"))?;
    Ok(())
}

pub struct Loaded {
    /// Up to [`SAMPLE_IDS`] user ids spread over the whole set, for GetUser.
    pub sample_ids: Vec<Uuid>,
    pub copy_time: Duration,
    pub vacuum_time: Duration,
}

/// Loads `total` users into [`WORKSPACE`] with one COPY, then `VACUUM (ANALYZE)` so the
/// table has statistics and a visibility map, as a table that autovacuum has seen would.
pub async fn load_users(conn: &mut PgConnection, total: u64) -> anyhow::Result<Loaded> {
    let keep_every = (total / SAMPLE_IDS).max(1);
    let mut sample_ids = Vec::new();
    let started = Instant::now();
    copy_rows(conn, USER_COPY, total, |i, buffer| {
        let user_id = Uuid::now_v7();
        if i % keep_every == 0 {
            sample_ids.push(user_id);
        }
        push_user_row(buffer, &person(i, total), user_id, "");
        Ok(())
    })
    .await?;
    let copy_time = started.elapsed();
    let started = Instant::now();
    vacuum_analyze(conn).await?;
    Ok(Loaded {
        sample_ids,
        copy_time,
        vacuum_time: started.elapsed(),
    })
}

pub async fn vacuum_analyze(conn: &mut PgConnection) -> anyhow::Result<()> {
    conn.execute("VACUUM (ANALYZE) end_users")
        .await
        .context("VACUUM (ANALYZE) end_users")?;
    Ok(())
}

/// COPYs the people of the import CSV ([`write_import_csv`], first `rows` of `total`) with
/// their customers into an empty, migrated database: the database's own bulk path, for
/// comparison with ImportUsers. Returns the time taken.
pub async fn copy_import_rows(
    conn: &mut PgConnection,
    rows: u64,
    total: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let customers = rows.min(CUSTOMERS);
    copy_rows(
        conn,
        "COPY customers (workspace_id, customer_id, name, status, created_at, updated_at) FROM STDIN",
        customers,
        |i, buffer| {
            let (id, name) = customer_of(i);
            for field in [WORKSPACE, &id, &name, "active"] {
                push_field(buffer, field);
                buffer.push('\t');
            }
            buffer.push_str(&format!("{BASE_CREATED_US}\t{BASE_CREATED_US}\n"));
            Ok(())
        },
    )
    .await?;
    copy_rows(conn, USER_COPY, rows, |i, buffer| {
        let (customer_id, _) = customer_of(i);
        push_user_row(buffer, &person(i, total), Uuid::now_v7(), &customer_id);
        Ok(())
    })
    .await?;
    Ok(started.elapsed())
}

/// Writes `total` people as a Fogbender export plus a phone column:
/// `customer_name,customer_id,user_name,user_email,user_id,phone`. Returns the file size.
pub fn write_import_csv(path: &Path, total: u64) -> anyhow::Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(
        out,
        "customer_name,customer_id,user_name,user_email,user_id,phone"
    )?;
    for i in 0..total {
        let person = person(i, total);
        let (customer_id, customer_name) = customer_of(i);
        writeln!(
            out,
            "{customer_name},{customer_id},{},{},{},{}",
            person.name, person.email, person.external_id, person.phone
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}
