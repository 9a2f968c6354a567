//! ImportUsers that ends before its file does: what committed is a whole number of batches,
//! the caller is told how many rows that is, and nothing is written once the call is gone.

use std::sync::Arc;
use std::time::Duration;

use roster_db::DbSettings;
use roster_directory::domain::ShiftedClock;
use roster_directory::prepare_database;
use roster_directory::widget_kek::WidgetKeyring;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_runtime::ServerSettings;
use sea_orm::{ConnectionTrait as _, DatabaseTransaction, Statement, TransactionTrait as _};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{TestApp, WS};
use crate::on_both_databases;

on_both_databases!(
    a_finished_import_reports_the_rows_it_committed,
    a_stream_failing_midway_commits_whole_batches_and_says_how_many,
);
roster_testkit::on_postgres_only!(
    crate::helpers::run => a_cancelled_import_writes_nothing_once_the_call_is_gone
);

/// Rows per batch on the service side (`service::import::BATCH_ROWS`).
const BATCH: usize = 1000;

/// A CSV of `rows` new users `u00001`, `u00002`, ….
fn csv(rows: usize) -> String {
    let mut csv = String::from("external_id,email,name\n");
    for n in 1..=rows {
        csv.push_str(&format!("u{n:05},u{n:05}@example.com,User {n}\n"));
    }
    csv
}

fn header(dry_run: bool, stop: bool) -> pb::ImportUsersRequest {
    pb::ImportUsersRequest {
        part: Some(pb::import_users_request::Part::Header(
            pb::ImportUsersHeader {
                workspace_id: WS.into(),
                dry_run,
                on_error: if stop {
                    pb::ImportErrorMode::Stop as i32
                } else {
                    pb::ImportErrorMode::SkipRow as i32
                },
            },
        )),
    }
}

fn chunks(csv: &str) -> impl Iterator<Item = pb::ImportUsersRequest> + '_ {
    csv.as_bytes()
        .chunks(16 * 1024)
        .map(|piece| pb::ImportUsersRequest {
            part: Some(pb::import_users_request::Part::Chunk(piece.to_vec())),
        })
}

/// A connection of the test's own to the service's database.
async fn database(app: &TestApp) -> roster_db::Db {
    roster_db::Db::connect(&DbSettings::new(&app.database_url))
        .await
        .unwrap()
}

async fn scalar(conn: &impl sea_orm::ConnectionTrait, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn users_in_database(db: &roster_db::Db) -> i64 {
    scalar(db.conn(), "SELECT COUNT(*) FROM end_users").await
}

/// Polls `probe` until it holds; the deadline only keeps a broken build from hanging.
async fn until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !probe().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_finished_import_reports_the_rows_it_committed(app: TestApp) {
    let file = csv(1500);
    let done = app
        .import_csv(file.as_bytes(), 8192, false, false)
        .await
        .unwrap();
    assert_eq!((done.created, done.rows_committed), (1500, 1500));

    let dry = app
        .import_csv(file.as_bytes(), 8192, true, false)
        .await
        .unwrap();
    assert_eq!((dry.unchanged, dry.rows_committed), (1500, 0));

    // Stop mode ends at the bad row, which is counted: the file is done up to it.
    let bad = b"external_id,email\nv1,v1@example.com\nv2,not-an-email\nv3,v3@example.com\n";
    let stopped = app.import_csv(bad, 64, false, true).await.unwrap();
    assert!(stopped.stopped);
    assert_eq!(
        (stopped.created, stopped.failed, stopped.rows_committed),
        (1, 1, 2)
    );
}

/// A stream that fails after two and a half batches (here a second header, the one thing
/// a client can send wrong mid-file) commits the two whole batches, not the half one it had
/// read before the failure, and its error says so.
async fn a_stream_failing_midway_commits_whole_batches_and_says_how_many(app: TestApp) {
    let file = csv(2 * BATCH + BATCH / 2);
    let messages: Vec<_> = std::iter::once(header(false, false))
        .chain(chunks(&file))
        .chain(std::iter::once(header(false, false)))
        .collect();
    let status = app
        .client()
        .import_users(app.admin(tokio_stream::iter(messages)))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("first 2000 rows were committed"),
        "{status:?}"
    );
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(
        info.metadata.get("rows_committed").map(String::as_str),
        Some("2000")
    );
    let db = database(&app).await;
    assert_eq!(users_in_database(&db).await, 2000);
    db.close().await;
}

/// A second directory on the app's database that admits one call at a time, so that a call
/// getting in proves the one before it is over on the server (its handler was dropped). It
/// serves until the returned server is stopped or dropped.
async fn one_call_at_a_time(app: &TestApp) -> (TestApp, roster_testkit::Served) {
    let mut db_settings = DbSettings::new(&app.database_url);
    db_settings.max_connections = 8;
    let db = prepare_database(&db_settings).await.unwrap();
    let verifier = app.tokens.verifier();
    let mut server = ServerSettings::for_tests();
    server.concurrency_limit = 1;
    let running = crate::helpers::serve(
        server,
        db,
        verifier,
        Arc::new(ShiftedClock::default()),
        WidgetKeyring::generate("test-kek").unwrap(),
    )
    .await;
    let limited = TestApp {
        addr: running.addr,
        client: DirectoryServiceClient::new(running.channel.clone()),
        ..app.clone()
    };
    (limited, running)
}

/// Cancels an upload while a batch is held up in the database (the test locks a row it
/// updates) and others are queued behind it, waits until the server has dropped the call,
/// then lets the database go. Writers the call left running would now commit; nothing may.
/// PostgreSQL only: the held-up writer needs row locks, and SQLite writes on the call's own
/// task anyway.
async fn a_cancelled_import_writes_nothing_once_the_call_is_gone(app: TestApp) {
    let held = BATCH + BATCH / 2;
    app.create_user(
        &format!("u{held:05}"),
        &format!("u{held:05}@example.com"),
        "Old name",
    )
    .await;
    let db = database(&app).await;
    let lock: DatabaseTransaction = db.conn().begin().await.unwrap();
    lock.execute_unprepared(&format!(
        "SELECT 1 FROM end_users WHERE external_id = 'u{held:05}' FOR UPDATE"
    ))
    .await
    .unwrap();

    let (limited, _serving) = one_call_at_a_time(&app).await;
    let (send, receive) = tokio::sync::mpsc::channel(64);
    let file = csv(4 * BATCH);
    send.send(header(false, false)).await.unwrap();
    for chunk in chunks(&file) {
        send.send(chunk).await.unwrap();
    }
    let call = {
        let (mut client, request) = (
            limited.client(),
            limited.admin(ReceiverStream::new(receive)),
        );
        tokio::spawn(async move { client.import_users(request).await })
    };
    // The stream stays open (`send` is alive): the import waits for more of the file.
    until("the first batch committed", || async {
        users_in_database(&db).await == 1 + BATCH as i64
    })
    .await;
    until("the second batch waits for the test's lock", || async {
        scalar(
            db.conn(),
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await
            > 0
    })
    .await;

    call.abort();
    drop(send);
    until("the server dropped the cancelled call", || async {
        let probe = limited
            .client()
            .get_user(limited.admin(pb::GetUserRequest {
                workspace_id: WS.into(),
                user_id: uuid::Uuid::now_v7().to_string(),
            }))
            .await;
        !matches!(probe, Err(status) if status.code() == Code::ResourceExhausted)
    })
    .await;
    let when_gone = users_in_database(&db).await;

    lock.rollback().await.unwrap();
    until("every transaction on the database ended", || async {
        scalar(
            db.conn(),
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' \
             AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')",
        )
        .await
            == 0
    })
    .await;
    assert_eq!(
        users_in_database(&db).await,
        when_gone,
        "rows were written after the call was gone"
    );
    assert_eq!(
        when_gone,
        1 + BATCH as i64,
        "a whole batch, and the user held"
    );
    db.close().await;
}
