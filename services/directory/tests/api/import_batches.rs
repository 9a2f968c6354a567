//! ImportUsers decides each batch in memory and writes it set-based; these cases pin down
//! that rows still behave as if written one at a time in file order.

use roster_proto::directory::v1 as pb;

use crate::helpers::{TestApp, WS};
use crate::on_both_databases;

on_both_databases!(
    rows_of_one_batch_see_each_other,
    keys_handed_between_users_in_one_file,
    an_undelete_that_would_reuse_a_taken_id_fails_alone,
    files_larger_than_a_batch,
    a_batch_sees_users_the_batch_before_created,
    a_key_handed_over_across_batches,
    stop_mode_keeps_the_rows_before_the_clash,
    an_import_racing_other_writers_loses_no_write,
    a_row_naming_no_customer_brings_a_deleted_user_back_with_its_customer,
);

async fn customer_name(app: &TestApp, customer_id: &str) -> String {
    app.client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: customer_id.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .name
}

async fn rows_of_one_batch_see_each_other(app: TestApp) {
    let before = app.pending_events().await.len();
    let csv = b"customer_name,customer_id,user_name,user_email,user_id\n\
USS Enterprise,uss001,Kirk,kirk@example.com,k001\n\
USS Enterprise,uss001,Kirk,kirk@example.com,k001\n\
Enterprise (NCC-1701),uss001,James T. Kirk,KIRK@example.com,k001\n\
,,Spock,spock@example.com,\n\
,,,SPOCK@example.com,k002\n";
    let result = app.import_csv(csv, 7, false, false).await.unwrap();
    assert_eq!(
        (
            result.created,
            result.updated,
            result.unchanged,
            result.failed,
            result.customers_created
        ),
        (2, 2, 1, 0, 1),
        "{result:?}"
    );
    let kirk = app.lookup_external_id("k001").await.unwrap();
    assert_eq!(
        (kirk.name.as_str(), kirk.email.as_str(), kirk.etag.as_str()),
        ("James T. Kirk", "KIRK@example.com", "2")
    );
    let spock = app.lookup_external_id("k002").await.unwrap();
    assert_eq!((spock.name.as_str(), spock.etag.as_str()), ("Spock", "2"));
    assert_eq!(app.list("").await.len(), 2);
    assert_eq!(customer_name(&app, "uss001").await, "Enterprise (NCC-1701)");
    let actions: Vec<String> = app.pending_events().await[before..]
        .iter()
        .map(|event| event.action.clone())
        .collect();
    assert_eq!(
        actions,
        [
            "customer.created",
            "end_user.created",
            "customer.updated",
            "end_user.updated",
            "end_user.created",
            "end_user.updated",
        ]
    );
    let again = app.import_csv(csv, 64, false, false).await.unwrap();
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 4, 1),
        "the file renames back and forth: {again:?}"
    );
}

/// Row order decides who holds an e-mail at each step: the writes must not collide on the
/// unique indexes when one row frees a key that a later row takes.
async fn keys_handed_between_users_in_one_file(app: TestApp) {
    let a = app.create_user("a", "x@example.com", "A").await;
    let b = app.create_user("b", "y@example.com", "B").await;
    let csv = b"external_id,email\n\
a,z@example.com\n\
b,x@example.com\n\
c,y@example.com\n\
a,w@example.com\n\
d,z@example.com\n";
    let result = app.import_csv(csv, 1024, false, false).await.unwrap();
    assert_eq!(
        (result.created, result.updated, result.failed),
        (2, 3, 0),
        "{result:?}"
    );
    let emails: Vec<(String, String)> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|id| id.to_owned())
        .zip([
            "w@example.com",
            "x@example.com",
            "y@example.com",
            "z@example.com",
        ])
        .map(|(id, email)| (id, email.to_owned()))
        .collect();
    for (id, email) in emails {
        assert_eq!(app.lookup_external_id(&id).await.unwrap().email, email);
    }
    assert_eq!(
        app.get_user(&a.user_id).await.unwrap().etag,
        "3",
        "two rows, two versions"
    );
    assert_eq!(app.get_user(&b.user_id).await.unwrap().etag, "2");
    // A is touched first (a rename), B then frees an e-mail and A takes it: A's write
    // must wait for B's.
    let csv = b"external_id,email,name\n\
a,w@example.com,Alpha\n\
b,v@example.com,\n\
a,x@example.com,Alpha\n";
    let result = app.import_csv(csv, 1024, false, false).await.unwrap();
    assert_eq!((result.updated, result.failed), (3, 0), "{result:?}");
    assert_eq!(
        app.get_user(&a.user_id).await.unwrap().email,
        "x@example.com"
    );
    assert_eq!(
        app.get_user(&b.user_id).await.unwrap().email,
        "v@example.com"
    );
    // Taking a key someone still holds fails that row alone.
    let clash = app
        .import_csv(b"external_id,email\nb,x@example.com\n", 64, false, false)
        .await
        .unwrap();
    assert_eq!(clash.failed, 1, "{clash:?}");
    assert!(
        clash.failures[0].reason.contains(&format!(
            "e-mail 'x@example.com' already belongs to end-user {}",
            a.user_id
        )),
        "{clash:?}"
    );
}

async fn an_undelete_that_would_reuse_a_taken_id_fails_alone(app: TestApp) {
    let old = app.create_user("d1", "dora@example.com", "Dora").await;
    app.delete_user(&old.user_id).await.unwrap();
    // The id was given to someone else meanwhile.
    let new = app.create_user("d1", "other@example.com", "Other").await;
    // By e-mail alone the row finds the deleted Dora, whose id is now taken.
    let result = app
        .import_csv(
            b"email,name\ndora@example.com,Dora\nfresh@example.com,Fresh\n",
            64,
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        (result.created, result.undeleted, result.failed),
        (1, 0, 1),
        "{result:?}"
    );
    assert_eq!(result.failures[0].row, 2);
    assert!(
        result.failures[0].reason.contains(&format!(
            "external id 'd1' already belongs to end-user {}",
            new.user_id
        )),
        "{result:?}"
    );
    assert_eq!(
        app.get_user(&old.user_id).await.unwrap().status,
        pb::UserStatus::Deleted as i32
    );
}

async fn files_larger_than_a_batch(app: TestApp) {
    let mut csv = String::from("customer_id,user_email,user_id,user_name\n");
    for i in 0..2600 {
        csv.push_str(&format!("c{},user{i}@example.com,u{i},User {i}\n", i % 7));
    }
    // The same person again, batches later, and once with a change.
    csv.push_str("c0,user0@example.com,u0,User 0\n");
    csv.push_str("c3,USER5@example.com,u5,User Five\n");
    let result = app
        .import_csv(csv.as_bytes(), 4096, false, false)
        .await
        .unwrap();
    assert_eq!(
        (
            result.created,
            result.updated,
            result.unchanged,
            result.failed,
            result.customers_created
        ),
        (2600, 1, 1, 0, 7),
        "{result:?}"
    );
    let five = app.lookup_external_id("u5").await.unwrap();
    assert_eq!(
        (five.name.as_str(), five.customer_id.as_str()),
        ("User Five", "c3")
    );
    let dry = app
        .import_csv(csv.as_bytes(), 4096, true, false)
        .await
        .unwrap();
    assert_eq!(
        (dry.created, dry.updated, dry.unchanged),
        (0, 2, 2600),
        "{dry:?}"
    );
}

/// On PostgreSQL the second batch is read while the first is still being written; rows of
/// the second that touch users of the first must still see them.
async fn a_batch_sees_users_the_batch_before_created(app: TestApp) {
    let mut csv = String::from("user_email,user_id,user_name\n");
    for i in 0..1000 {
        csv.push_str(&format!("user{i}@example.com,u{i},User {i}\n"));
    }
    // The second batch: one row matches by external id, one by e-mail alone.
    csv.push_str("user5@example.com,u5,User Five\n");
    csv.push_str("USER7@example.com,,User Seven\n");
    csv.push_str("new@example.com,n1,New\n");
    let result = app
        .import_csv(csv.as_bytes(), 8192, false, false)
        .await
        .unwrap();
    assert_eq!(
        (
            result.created,
            result.updated,
            result.unchanged,
            result.failed
        ),
        (1001, 2, 0, 0),
        "{result:?}"
    );
    assert_eq!(
        app.lookup_external_id("u5").await.unwrap().name,
        "User Five"
    );
    assert_eq!(
        app.lookup_external_id("u7").await.unwrap().name,
        "User Seven"
    );
}

/// A user gives up an e-mail in one batch and another user takes it in the next: the taker
/// must not find the key still held.
async fn a_key_handed_over_across_batches(app: TestApp) {
    app.create_user("old", "shared@example.com", "Old Holder")
        .await;
    let mut csv = String::from("user_id,user_email\n");
    csv.push_str("old,moved@example.com\n");
    for i in 0..999 {
        csv.push_str(&format!("f{i},filler{i}@example.com\n"));
    }
    csv.push_str("new,shared@example.com\n");
    let result = app
        .import_csv(csv.as_bytes(), 8192, false, false)
        .await
        .unwrap();
    assert_eq!(
        (result.created, result.updated, result.failed),
        (1000, 1, 0),
        "{result:?}"
    );
    assert_eq!(
        app.lookup_external_id("new").await.unwrap().email,
        "shared@example.com"
    );
    assert_eq!(
        app.lookup_external_id("old").await.unwrap().email,
        "moved@example.com"
    );
}

async fn stop_mode_keeps_the_rows_before_the_clash(app: TestApp) {
    let holder = app.create_user("h", "held@example.com", "Holder").await;
    app.create_user("b", "b@example.com", "B").await;
    let csv = b"external_id,email\n\
a,a@example.com\n\
b,held@example.com\n\
c,c@example.com\n";
    let result = app.import_csv(csv, 1024, false, true).await.unwrap();
    assert!(result.stopped, "{result:?}");
    assert_eq!((result.created, result.failed), (1, 1), "{result:?}");
    assert_eq!(result.failures[0].row, 3);
    assert!(
        result.failures[0].reason.contains(&holder.user_id),
        "{result:?}"
    );
    app.lookup_external_id("a").await.unwrap();
    assert!(app.lookup_external_id("c").await.is_err());
}

/// Batches in flight together, retried after losing a race with another writer, must still
/// land every row once and overwrite nothing the other writer did.
async fn an_import_racing_other_writers_loses_no_write(app: TestApp) {
    const USERS: usize = 3000;
    let file = |name: &str| {
        let mut csv = String::from("user_id,user_email,user_name\n");
        for i in 0..USERS {
            csv.push_str(&format!("u{i},user{i}@example.com,{name} {i}\n"));
        }
        csv
    };
    let seeded = app
        .import_csv(file("User").as_bytes(), 8192, false, false)
        .await
        .unwrap();
    assert_eq!(seeded.created, USERS as i64, "{seeded:?}");
    let user_ids: Vec<String> = app
        .list_all("", "", false)
        .await
        .into_iter()
        .map(|user| user.user_id)
        .collect();
    assert_eq!(user_ids.len(), USERS);

    let activity = {
        let token = app.admin_token();
        let requests: Vec<_> = user_ids
            .iter()
            .map(|user_id| {
                app.with_token(
                    &token,
                    pb::RecordActivityRequest {
                        etag: String::new(),
                        request_id: String::new(),
                        workspace_id: WS.into(),
                        user_id: user_id.clone(),
                        occurred_at: None,
                        conversations_started: 1,
                    },
                )
            })
            .collect();
        let mut client = app.client();
        tokio::spawn(async move {
            for request in requests {
                client.record_activity(request).await?;
            }
            Ok::<_, tonic::Status>(())
        })
    };
    let renamed = app
        .import_csv(file("Renamed").as_bytes(), 8192, false, false)
        .await
        .unwrap();
    activity.await.unwrap().expect("every activity is recorded");

    assert_eq!(
        (renamed.updated, renamed.created, renamed.failed),
        (USERS as i64, 0, 0),
        "{renamed:?}"
    );
    for user in app.list_all("", "", false).await {
        let index = user.external_id.trim_start_matches('u');
        assert_eq!(user.name, format!("Renamed {index}"), "{user:?}");
        assert_eq!(user.conversation_count, 1, "{user:?}");
    }
}

/// The rule UpsertUser follows (`imports_restore_a_deleted_customer_and_say_so`): a deleted
/// user that comes back restores the customer it belongs to, even when the row names none.
/// The import once decided rows by a copy of those rules that knew only the customers the
/// rows named, took the user's customer for missing and tried to create it again.
async fn a_row_naming_no_customer_brings_a_deleted_user_back_with_its_customer(app: TestApp) {
    app.create_customer("px002", "Planet Express").await;
    app.create_customer("mom003", "Mom's Friendly Robots").await;
    let mut ids = Vec::new();
    for (external_id, customer_id) in [("f001", "px002"), ("b001", "mom003")] {
        let user = app
            .try_create_user(pb::User {
                customer_id: customer_id.into(),
                ..crate::helpers::user(external_id, &format!("{external_id}@example.com"))
            })
            .await
            .unwrap();
        app.delete_user(&user.user_id).await.unwrap();
        ids.push(user.user_id);
    }
    app.client()
        .delete_customer(app.admin(pb::DeleteCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "mom003".into(),
            etag: String::new(),
        }))
        .await
        .unwrap();

    let csv = b"external_id,name\nf001,Fry\nb001,Bender\n";
    let result = app.import_csv(csv, 64, false, false).await.unwrap();
    assert_eq!(
        (
            result.undeleted,
            result.failed,
            result.customers_created,
            result.customers_undeleted
        ),
        (2, 0, 0, 1),
        "{result:?}"
    );
    for (user_id, customer_id) in ids.iter().zip(["px002", "mom003"]) {
        let user = app.get_user(user_id).await.unwrap();
        assert_eq!(
            (user.status, user.customer_id.as_str()),
            (pb::UserStatus::Active as i32, customer_id)
        );
    }
    let restored = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "mom003".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(restored.deleted_at.is_none(), "{restored:?}");
}
