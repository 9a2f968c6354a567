//! The one import path: UpsertUser's matching rules and ImportUsers' CSV handling.

use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, user, widget_claims, widget_token};
use crate::on_both_databases;

on_both_databases!(
    upsert_matches_identity_then_external_id_then_email,
    slack_teams_and_widget_with_one_email_are_one_user,
    reintroducing_a_deleted_user_undeletes_it,
    csv_with_bom_crlf_and_quoted_commas_imports,
    a_bad_row_fails_alone_with_its_line_number,
    stop_mode_stops_at_the_first_bad_row,
    dry_run_writes_nothing,
    header_errors_refuse_the_whole_file,
    extra_columns_map_by_header_name,
);

async fn upsert_matches_identity_then_external_id_then_email(app: TestApp) {
    let created = app
        .upsert(
            Some((pb::IdentitySource::Slack, "T01:U01")),
            pb::User {
                name: "Kirk".into(),
                ..user("k001", "Captain.Kirk@example.com")
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(created.outcome, pb::UpsertOutcome::Created as i32);
    let kirk = created.user.unwrap();

    // By identity, even when the other keys changed.
    let by_identity = app
        .upsert(
            Some((pb::IdentitySource::Slack, "T01:U01")),
            user("k001-new", "jim@example.com"),
            "",
        )
        .await
        .unwrap();
    assert_eq!(by_identity.outcome, pb::UpsertOutcome::Updated as i32);
    let updated = by_identity.user.unwrap();
    assert_eq!(updated.user_id, kirk.user_id);
    assert_eq!(updated.external_id, "k001-new");
    assert_eq!(
        updated.name, "Kirk",
        "empty fields leave stored values alone"
    );

    // By external id, without an identity.
    let by_external = app
        .upsert(
            None,
            pb::User {
                external_id: "k001-new".into(),
                name: "James".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(by_external.user.unwrap().user_id, kirk.user_id);

    // By e-mail, case-insensitively, when neither identity nor external id match.
    let by_email = app
        .upsert(
            Some((pb::IdentitySource::Msteams, "aad-0001")),
            pb::User {
                email: "JIM@EXAMPLE.COM".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let matched = by_email.user.unwrap();
    assert_eq!(matched.user_id, kirk.user_id);
    assert_eq!(matched.email, "JIM@EXAMPLE.COM");

    // The same values again change nothing.
    let same = app
        .upsert(
            Some((pb::IdentitySource::Msteams, "aad-0001")),
            pb::User {
                email: "JIM@EXAMPLE.COM".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(same.outcome, pb::UpsertOutcome::Unchanged as i32);
    assert_eq!(same.user.unwrap().etag, matched.etag);
    assert_eq!(app.list("").await.len(), 1);

    // Upsert can create the customer it names.
    let with_customer = app
        .upsert(
            None,
            pb::User {
                customer_id: "uss001".into(),
                ..user("k002", "spock@example.com")
            },
            "USS Enterprise",
        )
        .await
        .unwrap();
    assert!(with_customer.customer_created);
    let customer = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(customer.name, "USS Enterprise");

    // Nothing to match by is a bad request.
    assert_invalid(
        app.upsert(
            None,
            pb::User {
                name: "Nobody".into(),
                ..Default::default()
            },
            "",
        )
        .await,
        "user",
    );
    assert_invalid(
        app.upsert(
            Some((pb::IdentitySource::Unspecified, "x")),
            user("k003", ""),
            "",
        )
        .await,
        "identity.source",
    );
}

async fn slack_teams_and_widget_with_one_email_are_one_user(app: TestApp) {
    let slack = app
        .upsert(
            Some((pb::IdentitySource::Slack, "T01:U01")),
            pb::User {
                email: "kirk@example.com".into(),
                name: "Kirk".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let teams = app
        .upsert(
            Some((pb::IdentitySource::Msteams, "aad-kirk")),
            pb::User {
                email: "Kirk@Example.com".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let secret = app.rotate_widget_secret().await.secret;
    let widget = app
        .import_widget_token(&widget_token(
            &secret,
            &widget_claims("vendor-kirk", "KIRK@example.com", "uss001"),
        ))
        .await
        .unwrap();
    let id = slack.user.unwrap().user_id;
    assert_eq!(teams.user.unwrap().user_id, id);
    let last = widget.user.unwrap();
    assert_eq!(last.user_id, id);
    let mut sources: Vec<i32> = last.identities.iter().map(|i| i.source).collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        vec![
            pb::IdentitySource::Widget as i32,
            pb::IdentitySource::Slack as i32,
            pb::IdentitySource::Msteams as i32,
        ]
    );
    let listed = app.list("").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].identities.len(), 3);
    for identity in &listed[0].identities {
        let found = app
            .lookup(pb::lookup_user_request::Key::Identity(identity.clone()))
            .await
            .unwrap();
        assert_eq!(found.user_id, id);
    }
}

async fn reintroducing_a_deleted_user_undeletes_it(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    app.deactivate_user(&kirk.user_id).await.unwrap();
    app.delete_user(&kirk.user_id).await.unwrap();
    let back = app
        .upsert(None, user("k001", "kirk@example.com"), "")
        .await
        .unwrap();
    assert_eq!(back.outcome, pb::UpsertOutcome::Undeleted as i32);
    let restored = back.user.unwrap();
    assert_eq!(restored.user_id, kirk.user_id);
    assert_eq!(
        restored.status,
        pb::UserStatus::Deactivated as i32,
        "the status it had"
    );
    assert!(restored.deleted_at.is_none());

    // Through a CSV, by e-mail alone.
    let spock = app.create_user("k002", "spock@example.com", "Spock").await;
    app.delete_user(&spock.user_id).await.unwrap();
    let result = app
        .import_csv(
            b"email,name\nSPOCK@example.com,Mr. Spock\n",
            7,
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            result.created,
            result.updated,
            result.undeleted,
            result.failed
        ),
        (0, 0, 1, 0),
        "{result:?}"
    );
    let fetched = app.get_user(&spock.user_id).await.unwrap();
    assert_eq!(fetched.status, pb::UserStatus::Active as i32);
    assert_eq!(fetched.name, "Mr. Spock");
    assert_eq!(app.list("").await.len(), 2);
}

async fn csv_with_bom_crlf_and_quoted_commas_imports(app: TestApp) {
    let csv = "\u{feff}customer_name,customer_id,user_name,user_email,user_id\r\n\
\"Enterprise, USS\",uss001,\"Kirk, James T.\",captain.kirk@example.com,k001\r\n\
\"Enterprise, USS\",uss001,\"Spock\",spock@example.com,k002\r\n\
\"Planet \"\"Express\"\"\",px002,Fry,fry@example.com,f001\r\n";
    // Tiny chunks split the BOM, the CRLFs and the quotes.
    let result = app
        .import_csv(csv.as_bytes(), 3, false, false)
        .await
        .unwrap();
    assert_eq!(
        (result.created, result.failed, result.customers_created),
        (3, 0, 2),
        "{result:?}"
    );
    let kirk = app.lookup_external_id("k001").await.unwrap();
    assert_eq!(kirk.name, "Kirk, James T.");
    assert_eq!(kirk.email, "captain.kirk@example.com");
    assert_eq!(kirk.customer_id, "uss001");
    let customer = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "px002".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(customer.name, "Planet \"Express\"");
    let customer = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(customer.name, "Enterprise, USS");
}

async fn a_bad_row_fails_alone_with_its_line_number(app: TestApp) {
    app.create_user("taken", "taken@example.com", "Taken").await;
    app.create_user("holder", "held@example.com", "Holder")
        .await;
    // Row 5 matches user "taken" by id and would give it the e-mail another user holds.
    let csv = b"user_email,user_id,user_name\n\
kirk@example.com,k001,Kirk\n\
not-an-email,k002,Spock\n\
fry@example.com,f001,Fry\n\
held@example.com,taken,Clash\n\
leela@example.com,f002,Leela\n";
    let result = app.import_csv(csv, 5, false, false).await.unwrap();
    assert_eq!((result.created, result.failed), (3, 2), "{result:?}");
    assert!(!result.stopped);
    let rows: Vec<i64> = result.failures.iter().map(|f| f.row).collect();
    assert_eq!(rows, vec![3, 5]);
    assert!(result.failures[0].reason.contains("email"), "{result:?}");
    assert!(
        result.failures[0].reason.contains("not-an-email"),
        "{result:?}"
    );
    assert!(
        result.failures[1].reason.contains("held@example.com"),
        "{result:?}"
    );
    for id in ["k001", "f001", "f002"] {
        app.lookup_external_id(id).await.unwrap();
    }
    assert_code(app.lookup_external_id("k002").await, Code::NotFound);
    // The clashing row did not touch the user that holds the id.
    let taken = app.lookup_external_id("taken").await.unwrap();
    assert_eq!(
        (taken.email.as_str(), taken.name.as_str()),
        ("taken@example.com", "Taken")
    );
}

async fn stop_mode_stops_at_the_first_bad_row(app: TestApp) {
    let csv = b"email,external_id\n\
a@example.com,a\n\
b@example.com,b\n\
broken@,c\n\
d@example.com,d\n";
    let result = app.import_csv(csv, 1024, false, true).await.unwrap();
    assert!(result.stopped, "{result:?}");
    assert_eq!((result.created, result.failed), (2, 1), "{result:?}");
    assert_eq!(result.failures[0].row, 4);
    let listed: Vec<String> = app
        .list("")
        .await
        .into_iter()
        .map(|u| u.external_id)
        .collect();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, ["a", "b"]);
}

async fn dry_run_writes_nothing(app: TestApp) {
    const FOGBENDER: &[u8] = include_bytes!("../data/fogbender-users.csv");
    let events_before = app.pending_events().await.len();
    let result = app.import_csv(FOGBENDER, 100, true, false).await.unwrap();
    assert!(result.dry_run);
    assert_eq!(
        (result.created, result.failed, result.customers_created),
        (10, 0, 5),
        "{result:?}"
    );
    assert!(app.list("").await.is_empty());
    let customers = app
        .client()
        .list_customers(app.admin(pb::ListCustomersRequest {
            workspace_id: WS.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(customers.customers.is_empty());
    assert_eq!(app.pending_events().await.len(), events_before);
    // The real run then does it.
    let real = app.import_csv(FOGBENDER, 100, false, false).await.unwrap();
    assert_eq!((real.created, real.dry_run), (10, false));
}

async fn header_errors_refuse_the_whole_file(app: TestApp) {
    let unknown = app
        .import_csv(b"email,shoe_size\nkirk@example.com,44\n", 64, false, false)
        .await;
    let status = assert_code(unknown, Code::InvalidArgument);
    assert!(
        status.message().contains("shoe_size"),
        "{}",
        status.message()
    );
    let no_key = app
        .import_csv(b"name,phone\nKirk,123\n", 64, false, false)
        .await;
    assert_code(no_key, Code::InvalidArgument);
    let empty = app.import_csv(b"", 64, false, false).await;
    assert_code(empty, Code::InvalidArgument);

    // The first message must be the header.
    let chunk_first = vec![pb::ImportUsersRequest {
        part: Some(pb::import_users_request::Part::Chunk(
            b"email\nkirk@example.com\n".to_vec(),
        )),
    }];
    let result = app
        .client()
        .import_users(app.admin(tokio_stream::iter(chunk_first)))
        .await;
    assert_invalid(result, "header");
    // A second header is refused too.
    let header = || pb::ImportUsersRequest {
        part: Some(pb::import_users_request::Part::Header(
            pb::ImportUsersHeader {
                workspace_id: WS.into(),
                dry_run: false,
                on_error: 0,
            },
        )),
    };
    let twice = vec![
        header(),
        pb::ImportUsersRequest {
            part: Some(pb::import_users_request::Part::Chunk(b"email\n".to_vec())),
        },
        header(),
    ];
    let result = app
        .client()
        .import_users(app.admin(tokio_stream::iter(twice)))
        .await;
    assert_code(result, Code::InvalidArgument);
    assert!(app.list("").await.is_empty());
}

async fn extra_columns_map_by_header_name(app: TestApp) {
    let csv = b"External_ID,Email,First_Name,Last_Name,Phone,City,Avatar_URL,Notes\n\
k001,kirk@example.com,James,Kirk,+1 555 0100,Riverside,https://cdn.example.com/k.png,\"Likes, commas\"\n";
    let result = app.import_csv(csv, 64, false, false).await.unwrap();
    assert_eq!((result.created, result.failed), (1, 0), "{result:?}");
    let kirk = app.lookup_external_id("k001").await.unwrap();
    assert_eq!(kirk.first_name, "James");
    assert_eq!(kirk.last_name, "Kirk");
    assert_eq!(kirk.phone, "+1 555 0100");
    assert_eq!(kirk.city, "Riverside");
    assert_eq!(kirk.avatar_url, "https://cdn.example.com/k.png");
    assert_eq!(kirk.notes, "Likes, commas");
    // A bad phone in such a column fails the row with the column named.
    let bad = app
        .import_csv(b"external_id,phone\nk002,call me\n", 64, false, false)
        .await
        .unwrap();
    assert_eq!(bad.failed, 1);
    assert!(bad.failures[0].reason.contains("phone"), "{bad:?}");
}
