//! MergeUsers moves identities and history; EraseUser scrubs personal data for good.

use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, ts, us, user};
use crate::on_both_databases;

on_both_databases!(
    merge_moves_identities_and_history_to_the_target,
    merge_refuses_itself_and_retired_users,
    erase_scrubs_personal_data_and_keeps_the_id,
    after_erasure_the_same_person_is_a_new_user,
    erasure_leaves_the_person_nowhere_in_the_database,
);

async fn merge(
    app: &TestApp,
    source: &str,
    target: &str,
) -> Result<pb::MergeUsersResponse, tonic::Status> {
    app.client()
        .merge_users(app.admin(pb::MergeUsersRequest {
            request_id: String::new(),
            source_etag: String::new(),
            target_etag: String::new(),
            workspace_id: WS.into(),
            source_user_id: source.into(),
            target_user_id: target.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

fn identity_keys(user: &pb::User) -> Vec<(i32, String)> {
    let mut keys: Vec<(i32, String)> = user
        .identities
        .iter()
        .map(|identity| (identity.source, identity.key.clone()))
        .collect();
    keys.sort();
    keys
}

async fn merge_moves_identities_and_history_to_the_target(app: TestApp) {
    // The same person reached us twice: through Slack (with an old address) and the widget.
    let mut slack_user = user("slack-kirk", "jim@starfleet.example");
    slack_user.phone = "+1 555 0100".into();
    let source = app
        .upsert(Some((pb::IdentitySource::Slack, "T01:U01")), slack_user, "")
        .await
        .unwrap()
        .user
        .unwrap();
    let target = app
        .upsert(
            Some((pb::IdentitySource::Widget, "kirk-1")),
            user("k001", "kirk@example.com"),
            "",
        )
        .await
        .unwrap()
        .user
        .unwrap();
    let created = us(target.created_at.as_ref());
    let source_active = created + 7_200_000_000;
    let target_active = created + 3_600_000_000;
    app.record_activity(&source.user_id, Some(ts(source_active)), 3)
        .await
        .unwrap();
    app.record_activity(&target.user_id, Some(ts(target_active)), 2)
        .await
        .unwrap();

    let merged = merge(&app, &source.user_id, &target.user_id).await.unwrap();
    let target_after = merged.target.unwrap();
    let source_after = merged.source.unwrap();

    assert_eq!(target_after.user_id, target.user_id);
    assert_eq!(target_after.conversation_count, 5);
    assert_eq!(us(target_after.last_activity_at.as_ref()), source_active);
    assert_eq!(
        identity_keys(&target_after),
        vec![
            (pb::IdentitySource::Widget as i32, "kirk-1".to_owned()),
            (pb::IdentitySource::Slack as i32, "T01:U01".to_owned()),
        ]
    );
    // The target keeps its own keys and gains what it lacked.
    assert_eq!(target_after.external_id, "k001");
    assert_eq!(target_after.email, "kirk@example.com");
    assert_eq!(target_after.phone, "+1 555 0100");

    assert_eq!(source_after.status, pb::UserStatus::Merged as i32);
    assert_eq!(source_after.merged_into_user_id, target.user_id);
    assert!(source_after.identities.is_empty());
    // What later calls see.
    let fetched_source = app.get_user(&source.user_id).await.unwrap();
    assert_eq!(fetched_source.status, pb::UserStatus::Merged as i32);
    assert_eq!(fetched_source.merged_into_user_id, target.user_id);
    assert_eq!(app.get_user(&target.user_id).await.unwrap(), target_after);

    // The source's keys no longer find the source.
    assert_code(app.lookup_external_id("slack-kirk").await, Code::NotFound);
    assert_code(
        app.lookup(pb::lookup_user_request::Key::Email(
            "jim@starfleet.example".into(),
        ))
        .await,
        Code::NotFound,
    );
    let by_slack = app
        .lookup(pb::lookup_user_request::Key::Identity(pb::Identity {
            source: pb::IdentitySource::Slack as i32,
            key: "T01:U01".into(),
        }))
        .await
        .unwrap();
    assert_eq!(by_slack.user_id, target.user_id);
    // The merged user is hidden from lists; the target remains.
    let listed: Vec<String> = app.list("").await.into_iter().map(|u| u.user_id).collect();
    assert_eq!(listed, vec![target.user_id.clone()]);
    assert_eq!(app.list("status:merged").await.len(), 1);

    // Slack sends the person again: it lands on the target, not on the merged source.
    let again = app
        .upsert(
            Some((pb::IdentitySource::Slack, "T01:U01")),
            pb::User {
                name: "Jim".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(again.user.unwrap().user_id, target.user_id);
}

async fn merge_refuses_itself_and_retired_users(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let spock = app.create_user("k002", "spock@example.com", "Spock").await;
    let bones = app.create_user("k003", "bones@example.com", "Bones").await;

    assert_invalid(
        merge(&app, &kirk.user_id, &kirk.user_id).await,
        "target_user_id",
    );

    app.delete_user(&spock.user_id).await.unwrap();
    let status = assert_code(
        merge(&app, &spock.user_id, &kirk.user_id).await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("deleted"), "{}", status.message());
    assert_code(
        merge(&app, &kirk.user_id, &spock.user_id).await,
        Code::FailedPrecondition,
    );
    // A merged user cannot be merged again.
    merge(&app, &bones.user_id, &kirk.user_id).await.unwrap();
    assert_code(
        merge(&app, &bones.user_id, &kirk.user_id).await,
        Code::FailedPrecondition,
    );
    // Nothing moved by the refused calls.
    let kirk_after = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(kirk_after.status, pb::UserStatus::Active as i32);
    assert_eq!(
        app.get_user(&spock.user_id).await.unwrap().status,
        pb::UserStatus::Deleted as i32
    );
}

async fn erase_scrubs_personal_data_and_keeps_the_id(app: TestApp) {
    app.create_customer("uss001", "USS Enterprise").await;
    let mut person = user("k001", "kirk@example.com");
    person.name = "James T. Kirk".into();
    person.customer_id = "uss001".into();
    person.phone = "+1 555 0100".into();
    person.city = "Riverside".into();
    person.notes = "Prefers chat in the evening".into();
    let kirk = app
        .upsert(Some((pb::IdentitySource::Slack, "T01:U01")), person, "")
        .await
        .unwrap()
        .user
        .unwrap();
    app.record_activity(&kirk.user_id, None, 4).await.unwrap();

    let erased = app
        .client()
        .erase_user(app.admin(pb::EraseUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.user_id, kirk.user_id);
    assert_eq!(erased.status, pb::UserStatus::Erased as i32);
    let fetched = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(fetched.user_id, kirk.user_id);
    assert_eq!(fetched.status, pb::UserStatus::Erased as i32);
    for (field, value) in [
        ("external_id", &fetched.external_id),
        ("email", &fetched.email),
        ("name", &fetched.name),
        ("customer_id", &fetched.customer_id),
        ("phone", &fetched.phone),
        ("city", &fetched.city),
        ("notes", &fetched.notes),
    ] {
        assert!(value.is_empty(), "{field} survived erasure: {value}");
    }
    assert!(fetched.identities.is_empty());
    assert!(fetched.last_activity_at.is_none());
    assert_eq!(fetched.conversation_count, 0);

    // Nothing finds the person any more.
    assert_code(app.lookup_external_id("k001").await, Code::NotFound);
    assert_code(
        app.lookup(pb::lookup_user_request::Key::Email(
            "kirk@example.com".into(),
        ))
        .await,
        Code::NotFound,
    );
    assert_code(
        app.lookup(pb::lookup_user_request::Key::Identity(pb::Identity {
            source: pb::IdentitySource::Slack as i32,
            key: "T01:U01".into(),
        }))
        .await,
        Code::NotFound,
    );
    let (all, _) = app.list_page("kirk", "", 100, "", true).await;
    assert!(all.is_empty(), "{all:?}");

    // The erasure event names the scrubbed fields but carries none of their values, and
    // no event written *after* erasure leaks them either.
    let events = app.events_for(&kirk.user_id).await;
    let erase_event = events
        .iter()
        .find(|event| event.action == "end_user.erased")
        .expect("an erasure event");
    let fields: Vec<&str> = erase_event
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert!(
        fields.contains(&"email") && fields.contains(&"name"),
        "{fields:?}"
    );
    for change in &erase_event.changes {
        assert!(
            change.before.is_none() && change.after.is_none(),
            "erasure event keeps a value: {change:?}"
        );
    }
    let text = serde_json::to_string(&erase_event.changes).unwrap();
    for secret in ["kirk@example.com", "James", "Riverside", "0100", "T01:U01"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Erasing twice is harmless; an erased user cannot be changed or undeleted.
    app.client()
        .erase_user(app.admin(pb::EraseUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await
        .unwrap();
    let undelete = app
        .client()
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await;
    assert_code(undelete, Code::FailedPrecondition);
    assert_code(
        app.deactivate_user(&kirk.user_id).await,
        Code::FailedPrecondition,
    );
    // The customer has no live users left and may be deleted.
    app.client()
        .delete_customer(app.admin(pb::DeleteCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
            etag: String::new(),
        }))
        .await
        .unwrap();
}

async fn after_erasure_the_same_person_is_a_new_user(app: TestApp) {
    let first = app
        .upsert(
            Some((pb::IdentitySource::Widget, "kirk-1")),
            user("k001", "kirk@example.com"),
            "",
        )
        .await
        .unwrap()
        .user
        .unwrap();
    app.client()
        .erase_user(app.admin(pb::EraseUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: first.user_id.clone(),
        }))
        .await
        .unwrap();

    // Through UpsertUser, by the same identity, external id and e-mail.
    let again = app
        .upsert(
            Some((pb::IdentitySource::Widget, "kirk-1")),
            user("k001", "kirk@example.com"),
            "",
        )
        .await
        .unwrap();
    assert_eq!(again.outcome, pb::UpsertOutcome::Created as i32);
    let second = again.user.unwrap();
    assert_ne!(second.user_id, first.user_id);

    // Through a CSV import of the same e-mail with another id.
    app.client()
        .erase_user(app.admin(pb::EraseUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: second.user_id.clone(),
        }))
        .await
        .unwrap();
    let result = app
        .import_csv(
            b"external_id,email,name\nk001,kirk@example.com,Kirk\n",
            64,
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        (result.created, result.undeleted, result.failed),
        (1, 0, 0),
        "{result:?}"
    );
    let third = app.lookup_external_id("k001").await.unwrap();
    assert_ne!(third.user_id, first.user_id);
    assert_ne!(third.user_id, second.user_id);
    // The tombstones stay erased.
    for id in [&first.user_id, &second.user_id] {
        let tombstone = app.get_user(id).await.unwrap();
        assert_eq!(tombstone.status, pb::UserStatus::Erased as i32);
        assert!(tombstone.email.is_empty());
    }
}

async fn erasure_leaves_the_person_nowhere_in_the_database(app: TestApp) {
    // Distinctive values, so a hit cannot be someone else's data.
    let imported = app
        .import_csv(
            b"external_id,email,name,phone\n\
              zq-4711,Xavera.Quillfeather@example.com,Xavera Quillfeather,+49 30 9876543\n\
              other-1,bystander@example.com,Bystander Person,+1 555 0000\n",
            64,
            false,
            true,
        )
        .await
        .unwrap();
    assert_eq!(imported.created, 2, "{imported:?}");
    let person = app.lookup_external_id("zq-4711").await.unwrap();
    let bystander = app.lookup_external_id("other-1").await.unwrap();
    // A duplicate record of the same person, merged into the imported one.
    let mut duplicate = user("zq-dup-0815", "xq.private@example.net");
    duplicate.name = "X. Quillfeather".into();
    duplicate.mobile = "+49 171 5550199".into();
    let duplicate = app
        .upsert(
            Some((pb::IdentitySource::Slack, "TQ1:UQUILL")),
            duplicate,
            "",
        )
        .await
        .unwrap()
        .user
        .unwrap();
    app.record_activity(&duplicate.user_id, None, 2)
        .await
        .unwrap();
    merge(&app, &duplicate.user_id, &person.user_id)
        .await
        .unwrap();
    app.record_activity(&person.user_id, None, 1).await.unwrap();

    // Merging already scrubbed the duplicate, which keeps only its id and its link.
    let merged = app.get_user(&duplicate.user_id).await.unwrap();
    assert_eq!(merged.status, pb::UserStatus::Merged as i32);
    assert_eq!(merged.merged_into_user_id, person.user_id);
    assert!(merged.email.is_empty() && merged.name.is_empty() && merged.mobile.is_empty());
    assert!(merged.external_id.is_empty() && merged.identities.is_empty());

    app.client()
        .erase_user(app.admin(pb::EraseUserRequest {
            workspace_id: WS.into(),
            user_id: person.user_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();

    let secrets = [
        "Xavera.Quillfeather@example.com",
        "Quillfeather",
        "xavera",
        "9876543",
        "zq-4711",
        "xq.private@example.net",
        "zq-dup-0815",
        "5550199",
        "TQ1:UQUILL",
    ];
    let dump = database_dump(&app).await;
    assert!(
        dump.iter()
            .any(|(_, _, text)| text.contains("bystander@example.com")),
        "the dump reads the data (the bystander is there)"
    );
    for (table, column, text) in &dump {
        for secret in secrets {
            assert!(
                !text.contains(&secret.to_lowercase()),
                "{secret} is still in {table}.{column}: {text}"
            );
        }
    }
    if app.backend_name == "sqlite" {
        // The trigram index keeps terms, not text: none of the person's trigrams may remain.
        let index = dump
            .iter()
            .filter(|(table, _, _)| table == "end_users_fts_data")
            .map(|(_, _, text)| text.as_str())
            .collect::<String>();
        for trigram in ["qui", "uil", "llf", "lfe", "fea", "xav", "ave", "ver"] {
            assert!(
                !index.contains(trigram),
                "trigram {trigram} of the person is still in the FTS index"
            );
        }
    }

    // Both records are erased, each with its own event; the earlier events about them keep
    // no values of personal fields, no peer address and no user agent.
    let events = app.pending_events().await;
    for id in [&person.user_id, &duplicate.user_id] {
        assert_eq!(
            app.get_user(id).await.unwrap().status,
            pb::UserStatus::Erased as i32
        );
        let about: Vec<_> = events.iter().filter(|e| &e.target_id == id).collect();
        assert!(about.iter().any(|e| e.action == "end_user.erased"), "{id}");
        // And a request, through the outbox, that the audit service erase them too.
        assert_eq!(
            about
                .iter()
                .filter(|e| e.action == "subject.erasure_requested")
                .count(),
            1,
            "{id}"
        );
        for event in about.iter().filter(|e| e.action != "end_user.erased") {
            assert!(
                event.peer_ip.is_none() && event.user_agent.is_none(),
                "{event:?}"
            );
        }
    }
    // Nobody else's history was touched.
    let untouched = events
        .iter()
        .find(|e| e.target_id == bystander.user_id)
        .expect("the bystander's import event");
    assert!(untouched.peer_ip.is_some());
    assert!(
        serde_json::to_string(&untouched.changes)
            .unwrap()
            .contains("bystander@example.com")
    );
}

/// Every value in every table of the directory's database (see `roster_testkit::dump`).
async fn database_dump(app: &TestApp) -> Vec<(String, String, String)> {
    let dump = roster_testkit::dump::database_dump(&app.database_url).await;
    assert!(dump.iter().any(|(table, _, _)| table == "outbox_events"));
    dump
}
