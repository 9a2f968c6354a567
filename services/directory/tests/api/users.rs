use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code};
use crate::on_both_databases;

on_both_databases!(
    create_then_get_user,
    every_field_reads_back_as_written,
    every_row_of_a_page_reads_as_get_user_does,
    fogbender_csv_imports_and_kirk_is_found,
    reimport_changes_nothing
);

const FOGBENDER: &[u8] = include_bytes!("../data/fogbender-users.csv");

async fn create_then_get_user(app: TestApp) {
    let kirk = app
        .create_user("k001", "Captain.Kirk@example.com", "Captain Kirk")
        .await;
    assert_eq!(kirk.status, pb::UserStatus::Active as i32);
    let fetched = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(fetched.email, "Captain.Kirk@example.com");
    assert_eq!(fetched.etag, kirk.etag);

    let same_email = app
        .client()
        .create_user(app.admin(pb::CreateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                external_id: "k999".into(),
                email: "captain.kirk@EXAMPLE.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
    assert_code(same_email, Code::AlreadyExists);
    assert_code(app.get_user("not-a-uuid").await, Code::InvalidArgument);
    assert_code(
        app.get_user("0190f0e1-0000-7000-8000-000000000000").await,
        Code::NotFound,
    );
}

async fn fogbender_csv_imports_and_kirk_is_found(app: TestApp) {
    let result = app.import_csv(FOGBENDER, 17, false, false).await.unwrap();
    assert_eq!(
        (result.created, result.failed, result.customers_created),
        (10, 0, 5),
        "{result:?}"
    );
    let found = app.list("kirk").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "Captain Kirk");
    assert_eq!(found[0].customer_id, "uss001");
}

async fn reimport_changes_nothing(app: TestApp) {
    app.import_csv(FOGBENDER, 4096, false, false).await.unwrap();
    let again = app.import_csv(FOGBENDER, 4096, false, false).await.unwrap();
    assert_eq!(
        (
            again.created,
            again.updated,
            again.unchanged,
            again.customers_created
        ),
        (0, 0, 10, 0),
        "{again:?}"
    );
}

/// Every field, set to a value no other field has, reads back in its own place through
/// GetUser and ListUsers alike, live and deleted.
/// A page reads its later rows as it reads its first: with identities or none, with NULL
/// times or set ones, each listed user equals what GetUser returns.
async fn every_row_of_a_page_reads_as_get_user_does(app: TestApp) {
    app.create_customer("c-1", "Customer One").await;
    let plain = app.create_user("p-1", "plain@example.com", "Plain").await;
    let slack = app
        .upsert(
            Some((pb::IdentitySource::Slack, "U-SLACK-1")),
            pb::User {
                external_id: "s-1".into(),
                email: "slack@example.com".into(),
                name: "From Slack".into(),
                avatar_url: "https://example.com/s.png".into(),
                customer_id: "c-1".into(),
                phone: "+1 555 0199".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap()
        .user
        .unwrap();
    app.upsert(
        Some((pb::IdentitySource::Msteams, "T-TEAMS-1")),
        pb::User {
            email: "slack@example.com".into(),
            ..Default::default()
        },
        "",
    )
    .await
    .unwrap();
    let guest = app.create_guest("Visitor").await.unwrap();
    let active = app.create_user("a-1", "active@example.com", "Active").await;
    app.record_activity(&active.user_id, None, 2).await.unwrap();

    let (listed, _) = app.list_page("", "created_at", 10, "", false).await;

    let ids = [&plain, &slack, &guest, &active].map(|user| user.user_id.clone());
    assert_eq!(
        listed
            .iter()
            .map(|user| user.user_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    for listed in &listed {
        assert_eq!(listed, &app.get_user(&listed.user_id).await.unwrap());
    }
    assert_eq!(listed[1].identities.len(), 2, "{:?}", listed[1].identities);
    assert!(listed[2].identities.is_empty());
    assert_eq!(listed[3].conversation_count, 2);
}

async fn every_field_reads_back_as_written(app: TestApp) {
    app.create_customer("c-1", "Customer One").await;
    let written = pb::User {
        external_id: "x-1".into(),
        email: "Every.Field@example.com".into(),
        name: "Every Field".into(),
        avatar_url: "https://example.com/avatar.png".into(),
        customer_id: "c-1".into(),
        title: "Dr".into(),
        first_name: "Every".into(),
        last_name: "Field".into(),
        phone: "+1 555 0101".into(),
        mobile: "+1 555 0102".into(),
        fax: "+1 555 0103".into(),
        street: "1 Main Street".into(),
        zip: "12345".into(),
        city: "Springfield".into(),
        country: "US".into(),
        notes: "tab\there, newline\nthere".into(),
        ..Default::default()
    };
    let created = app.try_create_user(written.clone()).await.unwrap();
    app.record_activity(&created.user_id, None, 3)
        .await
        .unwrap();

    let fetched = app.get_user(&created.user_id).await.unwrap();
    let expected = pb::User {
        user_id: created.user_id.clone(),
        workspace_id: WS.into(),
        status: created.status,
        identities: created.identities.clone(),
        created_at: created.created_at,
        confirmed_at: created.confirmed_at,
        updated_at: fetched.updated_at,
        last_activity_at: fetched.last_activity_at,
        conversation_count: 3,
        etag: fetched.etag.clone(),
        ..written
    };
    assert_eq!(fetched, expected);
    assert!(fetched.last_activity_at.is_some());
    let listed = app.list("external_id:x-1").await;
    assert_eq!(listed, vec![fetched.clone()]);

    let deleted = app.delete_user(&created.user_id).await.unwrap();
    let fetched = app.get_user(&created.user_id).await.unwrap();
    assert_eq!(fetched, deleted);
    assert!(fetched.deleted_at.is_some());
    let (listed, _) = app.list_page("external_id:x-1", "", 10, "", true).await;
    assert_eq!(listed, vec![fetched]);
}
