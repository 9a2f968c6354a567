//! Ready for Citus sharded by `workspace_id` (DESIGN.md, *Scaling past one machine*): the
//! checks that keep that step a configuration change.
//!
//! 1. **The catalog.** Each service's migrations run on a fresh PostgreSQL database; its
//!    catalog must give every table a `workspace_id` column, and every primary key, unique
//!    constraint and index must lead with it. What may differ is listed once, below, with
//!    its reason ([`TABLE_EXCEPTIONS`], [`INDEX_EXCEPTIONS`]); an exception that no longer
//!    applies fails the check too, so the lists cannot rot.
//! 2. **The queries.** The services run representative flows of the suite through their
//!    gRPC APIs while every statement they send is captured (sqlx logs each one through
//!    `tracing`); a statement that reads or writes a workspace's table must pin
//!    `workspace_id`, in its WHERE, its join conditions or its inserted columns, unless it
//!    is one of the cross-workspace jobs of [`QUERY_EXCEPTIONS`].
//! 3. **The runbook.** `docs/operations.md` (*Moving to Citus*) holds, per service, the
//!    `create_distributed_table`/`create_reference_table` statements rendered here from
//!    the catalog, verbatim.
//!
//! All of it needs PostgreSQL; without `ROSTER_TEST_DATABASE_URL` the tests are reported
//! ignored with that reason.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use roster_db::Db;
use roster_testkit::TestDatabase;
use sea_orm::{ConnectionTrait as _, Statement};

/// A service whose migrated database is checked.
struct Service {
    name: &'static str,
    /// The distributed table every other one is colocated with (`colocate_with`).
    anchor: &'static str,
}

const SERVICES: [Service; 3] = [
    Service {
        name: "directory",
        anchor: "end_users",
    },
    Service {
        name: "staff",
        anchor: "agents",
    },
    Service {
        name: "audit",
        anchor: "audit_logs",
    },
];

async fn migrate(service: &str, db: &Db) {
    match service {
        "directory" => db.migrate::<roster_directory::migration::Migrator>().await,
        "staff" => db.migrate::<roster_staff::migration::Migrator>().await,
        "audit" => db.migrate::<roster_audit::migration::Migrator>().await,
        other => panic!("no migrator for {other}"),
    }
    .unwrap();
}

/// Where a table without `workspace_id` goes under Citus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// `create_reference_table`: a copy on every node, read (and joined) anywhere.
    Reference,
    /// Left a plain table on the coordinator, which the services and the migrate Job
    /// connect to.
    Local,
}

/// A table with no `workspace_id`: platform data that belongs to no workspace.
struct TableException {
    service: &'static str,
    table: &'static str,
    placement: Placement,
    reason: &'static str,
}

const TABLE_EXCEPTIONS: &[TableException] = &[
    TableException {
        service: "directory",
        table: "seaql_migrations",
        placement: Placement::Local,
        reason: "sea-orm-migration's bookkeeping, read and written by the migrate Job and \
                 the start-up check on the coordinator only",
    },
    TableException {
        service: "staff",
        table: "seaql_migrations",
        placement: Placement::Local,
        reason: "as the directory's",
    },
    TableException {
        service: "audit",
        table: "seaql_migrations",
        placement: Placement::Local,
        reason: "as the directory's",
    },
    TableException {
        service: "staff",
        table: "signing_keys",
        placement: Placement::Reference,
        reason: "the platform's token-signing keys: one keyring signs for every workspace \
                 (their audit events carry the workspace id `*`)",
    },
    TableException {
        service: "audit",
        table: "audit_log_key",
        placement: Placement::Reference,
        reason: "the one checkpoint-signing key (slot 1) of every workspace's log",
    },
];

/// A non-unique index of a distributed table that does not lead with `workspace_id`, for a
/// job that reads across workspaces. Each shard keeps its own, so it does not stand in the
/// way of distribution; a unique one could not be enforced by Citus and is never allowed.
struct IndexException {
    service: &'static str,
    table: &'static str,
    index: &'static str,
    reason: &'static str,
}

const INDEX_EXCEPTIONS: &[IndexException] = &[
    IndexException {
        service: "directory",
        table: "outbox_events",
        index: "outbox_events_due_idx",
        reason: "the relay's claim reads which workspaces hold the oldest due rows, over all \
                 workspaces in one order and without locks (roster_db::delivery::claim)",
    },
    IndexException {
        service: "directory",
        table: "outbox_events",
        index: "outbox_events_delivered_idx",
        reason: "the relay's purge of rows delivered before the retention (roster_db::outbox)",
    },
    IndexException {
        service: "directory",
        table: "request_ids",
        index: "request_ids_created_at",
        reason: "the purge of request ids past their retention",
    },
    IndexException {
        service: "staff",
        table: "outbox_events",
        index: "outbox_events_due_idx",
        reason: "as the directory's",
    },
    IndexException {
        service: "staff",
        table: "outbox_events",
        index: "outbox_events_delivered_idx",
        reason: "as the directory's",
    },
    IndexException {
        service: "staff",
        table: "request_ids",
        index: "request_ids_created_at",
        reason: "as the directory's",
    },
    IndexException {
        service: "staff",
        table: "token_revocations",
        index: "token_revocations_at",
        reason: "the revocation feed every service follows is read by time, over all workspaces",
    },
];

// ---------------------------------------------------------------------------------------
// The catalog and its check

/// What the check needs of a database's catalog (its current schema).
#[derive(Debug, Default)]
struct Catalog {
    tables: BTreeMap<String, Table>,
}

#[derive(Debug, Default)]
struct Table {
    has_workspace_id: bool,
    keys: Vec<Key>,
    /// Triggers written by us (not PostgreSQL's internal ones).
    triggers: Vec<String>,
}

#[derive(Debug)]
struct Key {
    name: String,
    /// "primary key", "unique constraint", "unique index" or "index".
    kind: String,
    unique: bool,
    /// `None` when the first key column is an expression.
    first_column: Option<String>,
    definition: String,
}

async fn read_catalog(db: &Db) -> Catalog {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let mut catalog = Catalog::default();
    let tables = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT c.relname AS table_name,
                    EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'workspace_id'
                              AND a.attnum > 0 AND NOT a.attisdropped) AS has_workspace_id
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
        ))
        .await
        .unwrap();
    for row in tables {
        let name: String = row.try_get("", "table_name").unwrap();
        let has_workspace_id: bool = row.try_get("", "has_workspace_id").unwrap();
        catalog.tables.insert(
            name,
            Table {
                has_workspace_id,
                ..Table::default()
            },
        );
    }
    // A primary key or unique constraint is backed by an index of its name, so reading
    // the indexes reads them all; `indkey[0]` is 0 for an expression.
    let keys = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT t.relname AS table_name, i.relname AS index_name,
                    CASE con.contype WHEN 'p' THEN 'primary key'
                                     WHEN 'u' THEN 'unique constraint'
                                     WHEN 'x' THEN 'exclusion constraint'
                                     ELSE CASE WHEN x.indisunique THEN 'unique index'
                                               ELSE 'index' END END AS kind,
                    x.indisunique AS is_unique,
                    a.attname::text AS first_column,
                    pg_get_indexdef(x.indexrelid) AS definition
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = t.oid
             LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
             WHERE n.nspname = current_schema()
             ORDER BY 1, 2",
        ))
        .await
        .unwrap();
    for row in keys {
        let table: String = row.try_get("", "table_name").unwrap();
        let key = Key {
            name: row.try_get("", "index_name").unwrap(),
            kind: row.try_get("", "kind").unwrap(),
            unique: row.try_get("", "is_unique").unwrap(),
            first_column: row.try_get("", "first_column").unwrap(),
            definition: row.try_get("", "definition").unwrap(),
        };
        catalog.tables.entry(table).or_default().keys.push(key);
    }
    let triggers = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT c.relname AS table_name, tg.tgname::text AS trigger_name
             FROM pg_trigger tg
             JOIN pg_class c ON c.oid = tg.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND NOT tg.tgisinternal
             ORDER BY 1, 2",
        ))
        .await
        .unwrap();
    for row in triggers {
        let table: String = row.try_get("", "table_name").unwrap();
        let trigger: String = row.try_get("", "trigger_name").unwrap();
        catalog
            .tables
            .entry(table)
            .or_default()
            .triggers
            .push(trigger);
    }
    catalog
}

/// Every way `service`'s catalog breaks the rule, one line each, naming the table and the
/// key; empty when it is ready to be distributed by `workspace_id`.
fn check_catalog(
    service: &str,
    catalog: &Catalog,
    table_exceptions: &[TableException],
    index_exceptions: &[IndexException],
) -> Vec<String> {
    let mut problems = Vec::new();
    let excepted_table = |table: &str| {
        table_exceptions
            .iter()
            .find(|e| e.service == service && e.table == table)
    };
    let excepted_index = |table: &str, index: &str| {
        index_exceptions
            .iter()
            .find(|e| e.service == service && e.table == table && e.index == index)
    };

    for (name, table) in &catalog.tables {
        if !table.has_workspace_id {
            if excepted_table(name).is_none() {
                problems.push(format!(
                    "{service}: table {name} has no workspace_id column (add it, or list the \
                     table in TABLE_EXCEPTIONS with its reason)"
                ));
            }
            continue;
        }
        for key in &table.keys {
            if key.first_column.as_deref() == Some("workspace_id") {
                continue;
            }
            match excepted_index(name, &key.name) {
                Some(_) if key.unique => problems.push(format!(
                    "{service}: {} {} on {name} does not lead with workspace_id, and \
                     INDEX_EXCEPTIONS cannot excuse a unique one: Citus enforces uniqueness \
                     only with the distribution column ({})",
                    key.kind, key.name, key.definition
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{service}: {} {} on {name} does not lead with workspace_id: {}",
                    key.kind, key.name, key.definition
                )),
            }
        }
    }

    for exception in table_exceptions.iter().filter(|e| e.service == service) {
        if exception.reason.trim().is_empty() {
            problems.push(format!(
                "{service}: TABLE_EXCEPTIONS lists {} without a reason",
                exception.table
            ));
        }
        match catalog.tables.get(exception.table) {
            None => problems.push(format!(
                "{service}: TABLE_EXCEPTIONS lists {}, which no longer exists: remove it",
                exception.table
            )),
            Some(table) if table.has_workspace_id => problems.push(format!(
                "{service}: TABLE_EXCEPTIONS lists {}, which has workspace_id now: remove \
                 the exception so it is checked and distributed",
                exception.table
            )),
            Some(_) => {}
        }
    }
    for exception in index_exceptions.iter().filter(|e| e.service == service) {
        if exception.reason.trim().is_empty() {
            problems.push(format!(
                "{service}: INDEX_EXCEPTIONS lists {} without a reason",
                exception.index
            ));
        }
        let key = catalog
            .tables
            .get(exception.table)
            .and_then(|t| t.keys.iter().find(|k| k.name == exception.index));
        match key {
            None => problems.push(format!(
                "{service}: INDEX_EXCEPTIONS lists {} on {}, which no longer exists: remove it",
                exception.index, exception.table
            )),
            Some(key) if key.first_column.as_deref() == Some("workspace_id") => {
                problems.push(format!(
                    "{service}: INDEX_EXCEPTIONS lists {} on {}, which leads with \
                     workspace_id now: remove the exception",
                    exception.index, exception.table
                ))
            }
            Some(_) => {}
        }
    }
    problems
}

/// The Citus statements of `service`'s database, as *Moving to Citus* lists them.
fn citus_statements(service: &Service, catalog: &Catalog) -> String {
    let mut distributed: Vec<&str> = catalog
        .tables
        .iter()
        .filter(|(_, t)| t.has_workspace_id)
        .map(|(name, _)| name.as_str())
        .collect();
    distributed.sort_by_key(|name| (*name != service.anchor, *name));
    assert_eq!(
        distributed.first().copied(),
        Some(service.anchor),
        "{}: the anchor table is distributed",
        service.name
    );
    let mut sql = format!("-- the {} database\n", service.name);
    let with_triggers: Vec<&str> = distributed
        .iter()
        .copied()
        .filter(|name| !catalog.tables[*name].triggers.is_empty())
        .collect();
    if !with_triggers.is_empty() {
        sql.push_str(&format!(
            "-- {} carry triggers (see below)\nSET citus.enable_unsafe_triggers TO on;\n",
            with_triggers.join(", ")
        ));
    }
    for name in &distributed {
        if *name == service.anchor {
            sql.push_str(&format!(
                "SELECT create_distributed_table('{name}', 'workspace_id');\n"
            ));
        } else {
            sql.push_str(&format!(
                "SELECT create_distributed_table('{name}', 'workspace_id', colocate_with => '{}');\n",
                service.anchor
            ));
        }
    }
    for exception in TABLE_EXCEPTIONS
        .iter()
        .filter(|e| e.service == service.name && e.placement == Placement::Reference)
    {
        sql.push_str(&format!(
            "SELECT create_reference_table('{}');\n",
            exception.table
        ));
    }
    sql
}

async fn migrated_catalog(backend: &roster_testkit::TestBackend, service: &str) -> Catalog {
    let database = TestDatabase::create(backend).await.unwrap();
    let db = Db::connect(&crate::helpers::db_settings(&database.url))
        .await
        .unwrap();
    migrate(service, &db).await;
    let catalog = read_catalog(&db).await;
    db.close().await;
    database.cleanup().await;
    catalog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn every_table_key_and_index_of_every_service_leads_with_workspace_id() {
    let backend = roster_testkit::postgres();
    let mut problems = Vec::new();
    for service in &SERVICES {
        let catalog = migrated_catalog(&backend, service.name).await;
        assert!(
            catalog.tables.len() > 3,
            "{}: migrations created tables",
            service.name
        );
        problems.extend(check_catalog(
            service.name,
            &catalog,
            TABLE_EXCEPTIONS,
            INDEX_EXCEPTIONS,
        ));
    }
    assert!(
        problems.is_empty(),
        "not ready for Citus by workspace_id:\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn the_runbook_distributes_every_table_the_migrations_create() {
    let backend = roster_testkit::postgres();
    let runbook = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operations.md"
    ))
    .unwrap();
    let mut missing = Vec::new();
    for service in &SERVICES {
        let catalog = migrated_catalog(&backend, service.name).await;
        let sql = citus_statements(service, &catalog);
        if !runbook.contains(&sql) {
            missing.push(sql);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/operations.md (Moving to Citus) must hold these blocks verbatim:\n\n{}",
        missing.join("\n")
    );
}

/// The check on a schema built to break it, in a scratch database: each kind of fault is
/// named with its table and key, and stale exceptions are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn the_catalog_check_names_each_table_and_index_that_breaks_the_rule() {
    let backend = roster_testkit::postgres();
    let database = TestDatabase::create(&backend).await.unwrap();
    let db = Db::connect(&crate::helpers::db_settings(&database.url))
        .await
        .unwrap();
    for statement in [
        "CREATE TABLE widgets (widget_id UUID PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE TABLE gadgets (
            workspace_id TEXT NOT NULL,
            gadget_id UUID NOT NULL,
            serial TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (gadget_id, workspace_id),
            CONSTRAINT gadgets_serial UNIQUE (serial)
        )",
        "CREATE INDEX gadgets_by_name ON gadgets (name, workspace_id)",
        "CREATE UNIQUE INDEX gadgets_lower_name ON gadgets (lower(name))",
        "CREATE INDEX gadgets_by_workspace ON gadgets (workspace_id, created_at)",
        "CREATE INDEX gadgets_created ON gadgets (created_at)",
        "CREATE UNIQUE INDEX gadgets_one_per_time ON gadgets (created_at)",
        "CREATE TABLE settings (workspace_id TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ] {
        db.conn().execute_unprepared(statement).await.unwrap();
    }
    let catalog = read_catalog(&db).await;
    db.close().await;
    database.cleanup().await;

    let tables = [
        TableException {
            service: "scratch",
            table: "gone",
            placement: Placement::Local,
            reason: "dropped long ago",
        },
        TableException {
            service: "scratch",
            table: "settings",
            placement: Placement::Reference,
            reason: "gained workspace_id since",
        },
    ];
    let indexes = [
        IndexException {
            service: "scratch",
            table: "gadgets",
            index: "gadgets_created",
            reason: "a purge by age",
        },
        IndexException {
            service: "scratch",
            table: "gadgets",
            index: "gadgets_one_per_time",
            reason: "unique, so never excusable",
        },
        IndexException {
            service: "scratch",
            table: "gadgets",
            index: "gadgets_by_workspace",
            reason: "leads with workspace_id already",
        },
        IndexException {
            service: "scratch",
            table: "gadgets",
            index: "gadgets_gone",
            reason: "",
        },
    ];
    let problems = check_catalog("scratch", &catalog, &tables, &indexes);
    let expected = [
        "scratch: primary key gadgets_pkey on gadgets does not lead with workspace_id: \
         CREATE UNIQUE INDEX gadgets_pkey ON public.gadgets USING btree (gadget_id, workspace_id)",
        "scratch: index gadgets_by_name on gadgets does not lead with workspace_id: \
         CREATE INDEX gadgets_by_name ON public.gadgets USING btree (name, workspace_id)",
        "scratch: unique index gadgets_lower_name on gadgets does not lead with workspace_id: \
         CREATE UNIQUE INDEX gadgets_lower_name ON public.gadgets USING btree (lower(name))",
        "scratch: unique index gadgets_one_per_time on gadgets does not lead with \
         workspace_id, and INDEX_EXCEPTIONS cannot excuse a unique one: Citus enforces \
         uniqueness only with the distribution column (CREATE UNIQUE INDEX \
         gadgets_one_per_time ON public.gadgets USING btree (created_at))",
        "scratch: unique constraint gadgets_serial on gadgets does not lead with \
         workspace_id: CREATE UNIQUE INDEX gadgets_serial ON public.gadgets USING btree (serial)",
        "scratch: table widgets has no workspace_id column (add it, or list the table in \
         TABLE_EXCEPTIONS with its reason)",
        "scratch: TABLE_EXCEPTIONS lists gone, which no longer exists: remove it",
        "scratch: TABLE_EXCEPTIONS lists settings, which has workspace_id now: remove the \
         exception so it is checked and distributed",
        "scratch: INDEX_EXCEPTIONS lists gadgets_by_workspace on gadgets, which leads with \
         workspace_id now: remove the exception",
        "scratch: INDEX_EXCEPTIONS lists gadgets_gone without a reason",
        "scratch: INDEX_EXCEPTIONS lists gadgets_gone on gadgets, which no longer exists: \
         remove it",
    ];
    let problems: BTreeSet<&str> = problems.iter().map(String::as_str).collect();
    let expected: BTreeSet<&str> = expected.into_iter().collect();
    assert_eq!(problems, expected);
}

// ---------------------------------------------------------------------------------------
// The statements

/// A statement that may span workspaces, by design: found in the code, with its reason.
struct QueryException {
    /// The file that sends it (from the repository's root) and a line of it that must
    /// still be there, so an exception whose code is gone fails
    /// ([`every_query_exception_still_has_its_code`]).
    file: &'static str,
    needle: &'static str,
    reason: &'static str,
    /// Recognises its text, as [`normalize`] writes it.
    matches: fn(&str) -> bool,
}

const QUERY_EXCEPTIONS: &[QueryException] = &[
    QueryException {
        file: "shared/db/src/delivery.rs",
        needle: "async fn due_shares<C: ConnectionTrait>(",
        reason: "the relay's claim, step 1: which workspaces hold the oldest due rows, read \
                 without locks; step 2 locks and leases each workspace's share in a \
                 statement pinned to it (FOR UPDATE SKIP LOCKED), checked like any other",
        matches: |t| {
            t == "select outbox_events.workspace_id from outbox_events where outbox_events.delivered_at is null and outbox_events.dead_at is null and outbox_events.next_attempt_at < = $1 order by outbox_events.next_attempt_at asc , outbox_events.seq asc limit $2"
        },
    },
    QueryException {
        file: "shared/db/src/delivery.rs",
        needle: "pub async fn purge_delivered<C: ConnectionTrait>(",
        reason: "the relay's purge of rows delivered longer than the retention ago",
        matches: |t| {
            t == "delete from outbox_events where ( workspace_id , event_id ) in ( select workspace_id , event_id from outbox_events where outbox_events.delivered_at < $1 limit $2 )"
        },
    },
    QueryException {
        file: "shared/db/src/delivery.rs",
        needle: "pub async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<Backlog> {",
        reason: "the relay's backlog figures (pending, dead letters, lag) every 5 s",
        matches: |t| {
            (t.starts_with("select count ( * ) as num_items from ( select outbox_events.")
                && (t.ends_with(" from outbox_events where outbox_events.delivered_at is null and outbox_events.dead_at is null ) as sub_query")
                    || t.ends_with(" from outbox_events where outbox_events.delivered_at is null and outbox_events.dead_at is not null ) as sub_query")))
                || t == "select outbox_events.occurred_at from outbox_events where outbox_events.delivered_at is null and outbox_events.dead_at is null order by outbox_events.seq asc limit $1"
        },
    },
    QueryException {
        file: "shared/db/src/delivery.rs",
        needle: "pub async fn retry_dead<C: ConnectionTrait>(conn: &C, now_us: i64) -> Result<u64> {",
        reason: "`roster-<service> dead-letters --retry`, an operator's requeue of every dead letter",
        matches: |t| {
            t.starts_with("update outbox_events set dead_at = $1 , attempts = $2 , refusals = $3 , next_attempt_at = $4 where outbox_events.dead_at is not null and outbox_events.delivered_at is null")
        },
    },
    QueryException {
        file: "services/directory/src/store/request_ids.rs",
        needle: "request_id::Entity::delete_many().filter(request_id::Column::CreatedAt.lt(cutoff_us));",
        reason: "the directory's periodic purge of request ids past their window",
        matches: |t| t == "delete from request_ids where request_ids.created_at < $1",
    },
    QueryException {
        file: "services/staff/src/store/request_ids.rs",
        needle: "request_id::Entity::delete_many().filter(request_id::Column::CreatedAt.lt(before));",
        reason: "the staff service's periodic purge of request ids past their window",
        matches: |t| t == "delete from request_ids where request_ids.created_at < $1",
    },
    QueryException {
        file: "services/directory/src/store/settings.rs",
        needle: "pub async fn with_plaintext_secrets<C: ConnectionTrait>(",
        reason: "the directory's start-up sealing of widget secrets still stored in plaintext",
        matches: |t| {
            t.starts_with("select workspace_settings.")
                && t.ends_with(" from workspace_settings where ( workspace_settings.widget_secret is not null and workspace_settings.widget_secret not like $1 ) or ( workspace_settings.previous_widget_secret is not null and workspace_settings.previous_widget_secret not like $2 )")
        },
    },
    QueryException {
        file: "services/staff/src/store/revocations.rs",
        needle: "pub async fn since<C: ConnectionTrait>(",
        reason: "the revocation feed (WatchRevocations) every service follows: all \
                 workspaces' revocations by time",
        matches: |t| {
            t == "select token_revocations.workspace_id , token_revocations.subject , token_revocations.min_generation , token_revocations.revoked_at from token_revocations where token_revocations.revoked_at > = $1 order by token_revocations.revoked_at asc"
        },
    },
    QueryException {
        file: "services/staff/src/store/revocations.rs",
        needle: "pub async fn purge<C: ConnectionTrait>(conn: &C, before: i64) -> Result<u64> {",
        reason: "the staff service's purge of revocations older than every token they refuse",
        matches: |t| t == "delete from token_revocations where token_revocations.revoked_at < $1",
    },
    QueryException {
        file: "services/audit/src/store/logs.rs",
        needle: "pub async fn with_retention<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>> {",
        reason: "the audit service's periodic prune lists the logs with a retention period \
                 (then prunes each in its own workspace)",
        matches: |t| {
            t == "select audit_logs.workspace_id from audit_logs where audit_logs.retention_us is not null"
        },
    },
];

/// Lower case, without identifier quotes, with every parenthesis, comma and comparison
/// a word of its own: `SELECT "a"."workspace_id" = $1` → `select a.workspace_id = $1`.
fn normalize(sql: &str) -> String {
    let mut spaced = String::with_capacity(sql.len() + 16);
    for c in sql.chars() {
        match c {
            '"' => {}
            '(' | ')' | ',' | '=' | ';' => {
                spaced.push(' ');
                spaced.push(c);
                spaced.push(' ');
            }
            c => spaced.extend(c.to_lowercase()),
        }
    }
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The column name of a word such as `end_users.workspace_id`.
fn column(word: &str) -> &str {
    word.rsplit('.').next().unwrap_or(word)
}

/// The words from `start` on at this nesting level, nested groups included except
/// subqueries (a `(` followed by `select` or `with`), up to the `)` that closes the level.
fn this_level(words: &[&str], start: usize) -> Vec<usize> {
    let mut taken = Vec::new();
    let mut depth = 0usize;
    let mut skipping: Option<usize> = None;
    let mut i = start;
    while i < words.len() {
        let word = words[i];
        if word == "(" {
            depth += 1;
            if skipping.is_none() && matches!(words.get(i + 1), Some(&"select" | &"with")) {
                skipping = Some(depth);
            }
        } else if word == ")" {
            if depth == 0 {
                break;
            }
            if skipping == Some(depth) {
                skipping = None;
                depth -= 1;
                i += 1;
                continue;
            }
            depth -= 1;
        }
        if skipping.is_none() {
            taken.push(i);
        }
        i += 1;
    }
    taken
}

/// Whether `workspace_id` is compared (`=`, `IN`, or as the head of a compared row) among
/// these words after a `where` or an `on`.
fn pins_workspace(words: &[&str], taken: &[usize]) -> bool {
    let mut filtering = false;
    for (k, &i) in taken.iter().enumerate() {
        let word = words[i];
        if matches!(word, "where" | "on") {
            filtering = true;
            continue;
        }
        if matches!(word, "group" | "order" | "limit" | "returning" | "set") {
            filtering = false;
        }
        if !filtering || column(word) != "workspace_id" {
            continue;
        }
        let before = k.checked_sub(1).map(|k| words[taken[k]]);
        let after = taken.get(k + 1).map(|&j| words[j]);
        if matches!(after, Some("=" | "in")) || before == Some("=") {
            return true;
        }
        // `(workspace_id, event_id) IN (…)`: the row's head pins it.
        if before == Some("(")
            && let Some(close) = taken[k..].iter().position(|&j| words[j] == ")")
            && matches!(
                taken.get(k + close + 1).map(|&j| words[j]),
                Some("=" | "in")
            )
        {
            return true;
        }
    }
    false
}

/// Why `sql` spans workspaces, one reason per table it reads or writes without pinning
/// `workspace_id`; empty when every workspace table it names is pinned.
fn unpinned(sql: &str, workspace_tables: &BTreeSet<String>) -> Vec<String> {
    let text = normalize(sql);
    let words: Vec<&str> = text.split(' ').collect();
    let mut reasons = Vec::new();
    for (i, &word) in words.iter().enumerate() {
        if !matches!(word, "from" | "join" | "into" | "update" | "copy") {
            continue;
        }
        let Some(table) = words
            .get(i + 1)
            .map(|t| t.trim_start_matches("public."))
            .filter(|t| workspace_tables.contains(*t))
        else {
            continue;
        };
        let pinned = match word {
            // The inserted (or copied) columns name it.
            "into" | "copy" => {
                words.get(i + 2) == Some(&"(")
                    && words[i + 3..]
                        .iter()
                        .take_while(|w| **w != ")")
                        .any(|w| *w == "workspace_id")
            }
            // Its join condition compares it.
            "join" => {
                let level = this_level(&words, i + 2);
                let on: Vec<usize> = level
                    .iter()
                    .copied()
                    .take_while(|&j| {
                        !matches!(words[j], "join" | "where" | "group" | "order" | "limit")
                    })
                    .collect();
                on.iter().any(|&j| column(words[j]) == "workspace_id")
            }
            // Its WHERE (or a join's ON) at its own level compares it.
            _ => pins_workspace(&words, &this_level(&words, i + 2)),
        };
        if !pinned {
            let how = match word {
                "into" | "copy" => "writes",
                "join" => "joins",
                "update" => "updates",
                _ => "reads",
            };
            reasons.push(format!("{how} {table} without pinning workspace_id"));
        }
    }
    reasons
}

/// Collects the text of every statement sqlx logs (target `sqlx::query`) on the threads it
/// is the default subscriber of.
#[derive(Clone, Default)]
struct StatementLog {
    statements: Arc<Mutex<Vec<String>>>,
}

struct StatementVisitor {
    summary: String,
    statement: String,
}

impl tracing::field::Visit for StatementVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "summary" => self.summary = format!("{value:?}"),
            "db.statement" => self.statement = format!("{value:?}"),
            _ => {}
        }
    }
}

impl tracing::Subscriber for StatementLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut visitor = StatementVisitor {
            summary: String::new(),
            statement: String::new(),
        };
        event.record(&mut visitor);
        // sqlx sends the whole text as `db.statement` only when the summary shortened it.
        let text = if visitor.statement.trim().is_empty() {
            visitor.summary
        } else {
            visitor.statement
        };
        self.statements.lock().unwrap().push(text);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Whether a normalized statement takes row locks explicitly (`FOR UPDATE`, `FOR NO KEY
/// UPDATE`, `FOR SHARE`, `FOR KEY SHARE`, in any subquery).
fn locks_rows(text: &str) -> bool {
    [
        " for update",
        " for no key update",
        " for share",
        " for key share",
    ]
    .iter()
    .any(|clause| text.contains(clause))
}

/// What the flows' statements must satisfy: each one that names a workspace's table pins
/// its workspace or is a listed cross-workspace job; `migrations` (sent by the migrators,
/// once, before any workspace exists) are not the services' queries.
fn check_statements(
    statements: &[String],
    migrations: &BTreeSet<String>,
    workspace_tables: &BTreeSet<String>,
    exceptions: &[QueryException],
) -> (Vec<String>, BTreeSet<usize>) {
    let mut problems = BTreeSet::new();
    let mut used = BTreeSet::new();
    for statement in statements {
        let text = normalize(statement);
        if migrations.contains(&text) {
            continue;
        }
        let reasons = unpinned(statement, workspace_tables);
        if reasons.is_empty() {
            continue;
        }
        // Citus takes row locks only in a query it routes to one shard, so no job may
        // lock rows across workspaces, listed or not.
        if locks_rows(&text) {
            problems.insert(format!(
                "{}, and locks rows (Citus refuses FOR UPDATE/SHARE over several shards; \
                 no exception excuses it)\n    {}",
                reasons.join("; "),
                text
            ));
            continue;
        }
        let matching: Vec<usize> = (0..exceptions.len())
            .filter(|&k| (exceptions[k].matches)(&text))
            .collect();
        if !matching.is_empty() {
            used.extend(matching);
            continue;
        }
        problems.insert(format!("{}\n    {}", reasons.join("; "), text));
    }
    (problems.into_iter().collect(), used)
}

#[test]
fn the_statement_check_tells_pinned_statements_from_spanning_ones() {
    let tables: BTreeSet<String> = ["end_users", "customers", "outbox_events"]
        .into_iter()
        .map(String::from)
        .collect();
    let pinned = [
        r#"SELECT "end_users"."user_id" FROM "end_users" WHERE "end_users"."workspace_id" = $1 AND "end_users"."user_id" = $2"#,
        "INSERT INTO customers (workspace_id, customer_id, name) VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id, customer_id) DO UPDATE SET name = excluded.name",
        "UPDATE end_users SET status = $1 WHERE workspace_id = $2 AND user_id = $3 AND version = $4",
        "DELETE FROM outbox_events WHERE (workspace_id, event_id) IN (($1, $2), ($3, $4))",
        "SELECT u.user_id FROM end_users u JOIN customers c ON c.workspace_id = u.workspace_id \
         AND c.customer_id = u.customer_id WHERE u.workspace_id = $1",
        "INSERT INTO end_users (workspace_id, user_id) SELECT $1, $2 WHERE EXISTS \
         (SELECT 1 FROM customers WHERE workspace_id = $1 AND customer_id = $3 FOR KEY SHARE)",
        "SELECT 1",
        "BEGIN",
    ];
    for sql in pinned {
        assert_eq!(unpinned(sql, &tables), Vec::<String>::new(), "{sql}");
    }
    let spanning = [
        (
            "SELECT user_id FROM end_users WHERE email_key = $1",
            "reads end_users without pinning workspace_id",
        ),
        (
            "SELECT u.user_id FROM end_users u JOIN customers c ON c.customer_id = u.customer_id \
             WHERE u.workspace_id = $1",
            "joins customers without pinning workspace_id",
        ),
        (
            "INSERT INTO customers (customer_id, name) VALUES ($1, $2)",
            "writes customers without pinning workspace_id",
        ),
        (
            "UPDATE end_users SET status = 'deleted' WHERE deleted_at < $1",
            "updates end_users without pinning workspace_id",
        ),
        (
            "DELETE FROM outbox_events WHERE delivered_at < $1",
            "reads outbox_events without pinning workspace_id",
        ),
        // The subquery pins its own table, not the outer one.
        (
            "SELECT * FROM end_users WHERE customer_id IN \
             (SELECT customer_id FROM customers WHERE workspace_id = $1)",
            "reads end_users without pinning workspace_id",
        ),
        (
            "SELECT workspace_id, count(*) FROM outbox_events GROUP BY workspace_id",
            "reads outbox_events without pinning workspace_id",
        ),
    ];
    for (sql, reason) in spanning {
        assert_eq!(unpinned(sql, &tables), [reason], "{sql}");
    }

    // A spanning statement fails the check unless an exception recognises it; one the
    // migrators sent is not the services'.
    let statements = vec![
        "DELETE FROM outbox_events WHERE delivered_at < $1".to_owned(),
        "SELECT user_id FROM end_users WHERE email_key = $1".to_owned(),
        "UPDATE end_users SET deactivated_at = updated_at WHERE status = 'deactivated'".to_owned(),
    ];
    let migrations = [normalize(&statements[2])].into_iter().collect();
    let exceptions = [QueryException {
        file: "shared/db/src/outbox.rs",
        needle: "",
        reason: "the purge",
        matches: |text| text.starts_with("delete from outbox_events where delivered_at <"),
    }];
    let (problems, used) = check_statements(&statements, &migrations, &tables, &exceptions);
    assert_eq!(
        problems,
        ["reads end_users without pinning workspace_id\n    \
          select user_id from end_users where email_key = $1"]
    );
    assert_eq!(used, [0].into_iter().collect());

    // Row locks over workspaces fail even when an exception recognises the statement;
    // pinned to one workspace they pass.
    let statements = vec![
        "UPDATE outbox_events SET attempts = attempts + 1 WHERE (workspace_id, event_id) IN \
         (SELECT workspace_id, event_id FROM outbox_events WHERE next_attempt_at <= $1 \
         LIMIT $2 FOR UPDATE SKIP LOCKED)"
            .to_owned(),
        "UPDATE outbox_events SET attempts = attempts + 1 WHERE workspace_id = $1 AND \
         (workspace_id, event_id) IN (SELECT workspace_id, event_id FROM outbox_events \
         WHERE workspace_id = $2 AND next_attempt_at <= $3 LIMIT $4 FOR UPDATE SKIP LOCKED)"
            .to_owned(),
    ];
    let exceptions = [QueryException {
        file: "shared/db/src/delivery.rs",
        needle: "",
        reason: "a claim over every workspace",
        matches: |text| text.starts_with("update outbox_events set attempts"),
    }];
    let (problems, used) = check_statements(&statements, &BTreeSet::new(), &tables, &exceptions);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "reads outbox_events without pinning workspace_id, and locks rows (Citus refuses"
        ),
        "{problems:?}"
    );
    assert!(used.is_empty(), "the exception did not excuse it");
}

#[test]
fn every_query_exception_still_has_its_code() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for exception in QUERY_EXCEPTIONS {
        let source = std::fs::read_to_string(format!("{root}/{}", exception.file))
            .unwrap_or_else(|e| panic!("QUERY_EXCEPTIONS names {}: {e}", exception.file));
        assert!(
            !exception.needle.is_empty() && source.contains(exception.needle),
            "QUERY_EXCEPTIONS: {} no longer holds {:?} ({}); update or remove the exception",
            exception.file,
            exception.needle,
            exception.reason
        );
    }
}

/// Runs the suite's flows on PostgreSQL with every statement captured: the directory's
/// users, customers, merges, exports and erasure, the staff service's sign-in, roles,
/// deactivation and revocations, the relays and the audit log's listings, proofs and
/// erasure. A plain test with a runtime of its own, so the capture is the default
/// subscriber of exactly the threads these services run on.
#[test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
fn no_statement_of_the_suites_flows_spans_workspaces_but_the_listed_jobs() {
    let log = StatementLog::default();
    let dispatch = tracing::Dispatch::new(log.clone());
    // While one dispatcher exists, tracing-core asks the *current thread's* subscriber for a
    // callsite's interest and caches the answer process-wide, so sqlx's callsites, first
    // hit by a test running beside this one, would stay disabled here. With a second
    // (inert) one registered it asks every live dispatcher, this capture included.
    let _inert = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start({
            let dispatch = dispatch.clone();
            // The runtime's threads live as long as it does; so does their default.
            move || std::mem::forget(tracing::dispatcher::set_default(&dispatch))
        })
        .build()
        .unwrap();
    let _main_thread = tracing::dispatcher::set_default(&dispatch);
    let backend = roster_testkit::postgres();

    let workspace_tables = runtime.block_on(async {
        let mut tables = BTreeSet::new();
        for service in &SERVICES {
            let catalog = migrated_catalog(&backend, service.name).await;
            tables.extend(
                catalog
                    .tables
                    .into_iter()
                    .filter(|(_, t)| t.has_workspace_id)
                    .map(|(name, _)| name),
            );
        }
        tables
    });
    let migrations: BTreeSet<String> = std::mem::take(&mut *log.statements.lock().unwrap())
        .iter()
        .map(|s| normalize(s))
        .collect();

    runtime.block_on(async {
        use crate::helpers::run;
        run(
            backend.clone(),
            crate::relay::directory_and_staff_writes_become_listable_in_the_audit_log,
        )
        .await;
        run(
            backend.clone(),
            crate::relay::erasing_a_user_erases_them_from_the_audit_log_through_the_outbox,
        )
        .await;
        run(
            backend.clone(),
            crate::export::an_export_holds_the_profile_customer_merged_users_and_every_audit_event_once,
        )
        .await;
        run(
            backend.clone(),
            crate::audit::a_staff_token_reads_the_audit_log_by_its_role_until_revoked,
        )
        .await;
        run(
            backend.clone(),
            crate::revocation::deactivating_an_agent_refuses_its_token_at_the_directory_within_seconds,
        )
        .await;
        // What `roster-directory dead-letters --retry` sends.
        run(backend.clone(), |suite| async move {
            roster_db::delivery::retry_dead(suite.directory_db.conn(), 0)
                .await
                .unwrap();
        })
        .await;
    });
    drop(runtime);

    let statements = std::mem::take(&mut *log.statements.lock().unwrap());
    assert!(
        statements.len() > 100,
        "the capture saw the services' statements: {}",
        statements.len()
    );
    assert!(
        statements.iter().map(|s| normalize(s)).any(|t| {
            t.starts_with("update outbox_events set next_attempt_at")
                && t.contains(" for update skip locked ")
        }),
        "the relay's claim locked rows in the flows (its per-workspace step)"
    );
    let (problems, used) = check_statements(
        &statements,
        &migrations,
        &workspace_tables,
        QUERY_EXCEPTIONS,
    );
    assert!(
        problems.is_empty(),
        "{} statement(s) read or write a workspace's table without pinning workspace_id \
         (pin it, or list the job in QUERY_EXCEPTIONS with its reason):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Every job runs at start-up or in these flows, so an exception nothing matched any
    // more describes a statement the code no longer sends.
    let unused: Vec<String> = (0..QUERY_EXCEPTIONS.len())
        .filter(|k| !used.contains(k))
        .map(|k| {
            format!(
                "{} ({})",
                QUERY_EXCEPTIONS[k].file, QUERY_EXCEPTIONS[k].reason
            )
        })
        .collect();
    assert!(
        unused.is_empty(),
        "QUERY_EXCEPTIONS that matched no statement: update or remove them:\n{}",
        unused.join("\n")
    );
}
