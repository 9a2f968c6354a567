//! `roster-directory dead-letters`: what an operator runs to see the events the audit
//! service refused, and to put them back in the queue once the cause is fixed.

use std::process::Command;

use roster_db::outbox;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

use crate::helpers::TestApp;
use crate::on_both_databases;

on_both_databases!(dead_letters_are_listed_with_why_and_retried_from_the_command_line);

fn run(app: &TestApp, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_roster-directory"))
        .args(args)
        .env("ROSTER_DIRECTORY_DATABASE_URL", &app.database_url)
        .env("ROSTER_LOG_FORMAT", "json")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

async fn dead_letters_are_listed_with_why_and_retried_from_the_command_line(app: TestApp) {
    let user = app
        .create_user("k-dead", "dead@example.com", "Dead Letter")
        .await;
    app.execute_sql(
        "UPDATE outbox_events SET dead_at = 1, refusals = 8, \
         last_error = 'InvalidArgument INVALID_ARGUMENT: changes[0].field is empty'",
    )
    .await;

    let listed = run(&app, &["dead-letters"]);
    assert!(listed.contains("end_user.created"), "{listed}");
    assert!(listed.contains("changes[0].field is empty"), "{listed}");
    assert!(listed.contains("1 dead letters listed"), "{listed}");
    assert!(
        !listed.contains("dead@example.com"),
        "no values are printed: {listed}"
    );

    let retried = run(&app, &["dead-letters", "--retry"]);
    assert!(
        retried.contains("1 dead letters are back in the queue"),
        "{retried}"
    );
    let listed = run(&app, &["dead-letters"]);
    assert!(listed.contains("0 dead letters listed"), "{listed}");
    // Back in the queue: pending again, with fresh attempts.
    let db = roster_db::Db::connect(&roster_db::DbSettings::new(&app.database_url))
        .await
        .unwrap();
    let rows = outbox::entity::Entity::find()
        .filter(outbox::entity::Column::TargetId.eq(user.user_id.as_str()))
        .all(db.conn())
        .await
        .unwrap();
    db.close().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].dead_at, None);
    assert_eq!((rows[0].attempts, rows[0].refusals), (0, 0));
}
