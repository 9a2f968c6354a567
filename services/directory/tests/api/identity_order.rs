//! A user's identities come back in one order, source then key, from every call, however
//! they were added.

use roster_proto::directory::v1 as pb;

use crate::helpers::{TestApp, WS, mask, user};
use crate::on_both_databases;

on_both_databases!(identities_read_back_by_source_then_key_from_every_call);

fn pairs(user: &pb::User) -> Vec<(String, String)> {
    user.identities
        .iter()
        .map(|identity| {
            let source = pb::IdentitySource::try_from(identity.source)
                .unwrap()
                .as_str_name()
                .to_owned();
            (source, identity.key.clone())
        })
        .collect()
}

async fn identities_read_back_by_source_then_key_from_every_call(app: TestApp) {
    use pb::IdentitySource::{Email, Msteams, Slack, Widget};
    // Added in an order that is neither sorted nor reverse-sorted, on two users.
    let mut last = None;
    for (source, key) in [
        (Widget, "w-9"),
        (Slack, "T2:U2"),
        (Email, "kirk@work.example"),
        (Slack, "T1:U1"),
    ] {
        let response = app
            .upsert(Some((source, key)), user("k001", "kirk@example.com"), "")
            .await
            .unwrap();
        last = response.user;
    }
    let kirk = last.unwrap();
    for (source, key) in [(Slack, "T9:U9"), (Msteams, "m-1")] {
        app.upsert(Some((source, key)), user("k002", "jim@example.com"), "")
            .await
            .unwrap();
    }
    let expected = |keys: &[(&str, &str)]| -> Vec<(String, String)> {
        keys.iter()
            .map(|(source, key)| (format!("IDENTITY_SOURCE_{source}"), (*key).to_owned()))
            .collect()
    };
    let kirk_sorted = expected(&[
        ("EMAIL", "kirk@work.example"),
        ("SLACK", "T1:U1"),
        ("SLACK", "T2:U2"),
        ("WIDGET", "w-9"),
    ]);
    assert_eq!(pairs(&kirk), kirk_sorted, "UpsertUser");
    let id = kirk.user_id.clone();
    assert_eq!(
        pairs(&app.get_user(&id).await.unwrap()),
        kirk_sorted,
        "GetUser"
    );
    let listed = app.list("kirk").await;
    assert_eq!(pairs(&listed[0]), kirk_sorted, "ListUsers");
    assert_eq!(
        pairs(&app.lookup_external_id("k001").await.unwrap()),
        kirk_sorted,
        "LookupUser by external id"
    );
    let by_identity = app
        .lookup(pb::lookup_user_request::Key::Identity(pb::Identity {
            source: Widget as i32,
            key: "w-9".into(),
        }))
        .await
        .unwrap();
    assert_eq!(pairs(&by_identity), kirk_sorted, "LookupUser by identity");
    let updated = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: id.clone(),
                name: "Kirk".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pairs(&updated), kirk_sorted, "UpdateUser");
    assert_eq!(
        pairs(&app.deactivate_user(&id).await.unwrap()),
        kirk_sorted,
        "DeactivateUser"
    );

    let jim = app.lookup_external_id("k002").await.unwrap();
    let merged = app
        .client()
        .merge_users(app.admin(pb::MergeUsersRequest {
            workspace_id: WS.into(),
            source_user_id: jim.user_id.clone(),
            target_user_id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let all_sorted = expected(&[
        ("EMAIL", "kirk@work.example"),
        ("MSTEAMS", "m-1"),
        ("SLACK", "T1:U1"),
        ("SLACK", "T2:U2"),
        ("SLACK", "T9:U9"),
        ("WIDGET", "w-9"),
    ]);
    assert_eq!(pairs(&merged.target.unwrap()), all_sorted, "MergeUsers");
    assert_eq!(
        pairs(&app.get_user(&id).await.unwrap()),
        all_sorted,
        "GetUser after the merge"
    );
}
