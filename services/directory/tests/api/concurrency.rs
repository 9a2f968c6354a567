//! Concurrent imports of one new person yield one user, and a customer is never deleted
//! from under a user joining it, on SQLite and on PostgreSQL.

use roster_proto::directory::v1 as pb;

use crate::helpers::{TestApp, WS};
use crate::on_both_databases;

on_both_databases!(
    fifty_concurrent_upserts_of_one_identity_make_one_user,
    concurrent_retries_of_one_create_answer_with_one_user,
    concurrent_activity_loses_no_conversation,
    deleting_a_customer_never_strands_a_user_joining_it,
);

/// Starts every call on its own task at once, then waits for all of them.
async fn all_at_once<T: Send + 'static>(
    calls: impl Iterator<Item = impl Future<Output = Result<T, tonic::Status>> + Send + 'static>,
) -> Vec<Result<T, tonic::Status>> {
    let tasks: Vec<_> = calls.map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("a call's task panicked"));
    }
    results
}

async fn fifty_concurrent_upserts_of_one_identity_make_one_user(app: TestApp) {
    let token = app.admin_token();
    let calls = (0..50).map(|i| {
        let mut client = app.client();
        let request = app.with_token(
            &token,
            pb::UpsertUserRequest {
                workspace_id: WS.into(),
                identity: Some(pb::Identity {
                    source: pb::IdentitySource::Widget as i32,
                    key: "vendor-kirk".into(),
                }),
                user: Some(pb::User {
                    external_id: "vendor-kirk".into(),
                    email: "kirk@example.com".into(),
                    name: if i % 2 == 0 {
                        "Kirk".into()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                }),
                customer_name: String::new(),
            },
        );
        async move {
            client
                .upsert_user(request)
                .await
                .map(tonic::Response::into_inner)
        }
    });
    let mut ids = Vec::new();
    let mut created = 0;
    for response in all_at_once(calls).await {
        let response = response.expect("every upsert succeeds");
        if response.outcome == pb::UpsertOutcome::Created as i32 {
            created += 1;
        }
        ids.push(response.user.unwrap().user_id);
    }
    assert_eq!(created, 1, "exactly one call created the user");
    ids.dedup();
    assert_eq!(ids.len(), 1, "all calls saw the same user: {ids:?}");

    let listed = app.list("").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_id, ids[0]);
    assert_eq!(listed[0].identities.len(), 1);
    let found = app
        .lookup(pb::lookup_user_request::Key::Identity(pb::Identity {
            source: pb::IdentitySource::Widget as i32,
            key: "vendor-kirk".into(),
        }))
        .await
        .unwrap();
    assert_eq!(found.user_id, ids[0]);
    let (all, _) = app.list_page("", "", 100, "", true).await;
    assert_eq!(
        all.len(),
        1,
        "no half-written duplicates, even deleted ones"
    );
    let created_events = app.count_events("end_user.created").await;
    assert_eq!(created_events, 1);
}

async fn concurrent_activity_loses_no_conversation(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let token = app.admin_token();
    let calls = (0..20).map(|_| {
        let mut client = app.client();
        let request = app.with_token(
            &token,
            pb::RecordActivityRequest {
                etag: String::new(),
                request_id: String::new(),
                workspace_id: WS.into(),
                user_id: kirk.user_id.clone(),
                occurred_at: None,
                conversations_started: 1,
            },
        );
        async move { client.record_activity(request).await }
    });
    for recorded in all_at_once(calls).await {
        recorded.expect("every activity is recorded");
    }
    assert_eq!(
        app.get_user(&kirk.user_id)
            .await
            .unwrap()
            .conversation_count,
        20
    );
}

/// A caller that retries CreateUser after a timeout may have its retries race the first
/// attempt: with the same request id, every one of them gets the same user, whichever
/// unique index the losers ran into first.
async fn concurrent_retries_of_one_create_answer_with_one_user(app: TestApp) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let calls = (0..20).map(|_| {
        let kirk = pb::User {
            external_id: "k001".into(),
            email: "kirk@example.com".into(),
            ..Default::default()
        };
        app.create_user_once(kirk, &request_id)
    });
    let mut ids = Vec::new();
    for created in all_at_once(calls).await {
        ids.push(created.expect("every retry succeeds").user_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all retries saw the same user: {ids:?}");
    let (all, _) = app.list_page("", "", 100, "", true).await;
    assert_eq!(all.len(), 1);
    let created_events = app.count_events("end_user.created").await;
    assert_eq!(created_events, 1);
}

/// How a racing call puts a user into a customer.
#[derive(Clone, Copy, Debug)]
enum Join {
    CreateUser,
    UpsertUser,
    MoveUser,
    ImportUsers,
}

/// Puts a user into `customer_id` the way `join` does; `mover` is the user MoveUser moves.
async fn join_customer(
    app: TestApp,
    join: Join,
    customer_id: String,
    mover: String,
) -> Result<(), tonic::Status> {
    let external_id = format!("{customer_id}-user");
    let user = pb::User {
        email: format!("{external_id}@example.com"),
        external_id: external_id.clone(),
        customer_id: customer_id.clone(),
        ..Default::default()
    };
    match join {
        Join::CreateUser => app.try_create_user(user).await.map(drop),
        Join::UpsertUser => app.upsert(None, user, "").await.map(drop),
        Join::MoveUser => app
            .client()
            .update_user(app.admin(pb::UpdateUserRequest {
                workspace_id: WS.into(),
                user: Some(pb::User {
                    user_id: mover,
                    customer_id,
                    ..Default::default()
                }),
                update_mask: crate::helpers::mask(&["customer_id"]),
            }))
            .await
            .map(drop),
        Join::ImportUsers => {
            let csv = format!(
                "external_id,email,customer_id\n{external_id},{external_id}@example.com,{customer_id}\n"
            );
            let imported = app.import_csv(csv.as_bytes(), 1024, false, false).await?;
            assert_eq!(imported.failed, 0, "{imported:?}");
            Ok(())
        }
    }
}

/// DeleteCustomer racing each way a user joins a customer: whichever wins, no live user
/// ends up in a deleted customer. CreateUser and a move lose to the delete
/// (FAILED_PRECONDITION) or make it refuse; upserts and imports may also restore it.
async fn deleting_a_customer_never_strands_a_user_joining_it(app: TestApp) {
    const PAIRS: usize = 50;
    let joins = [
        Join::CreateUser,
        Join::UpsertUser,
        Join::MoveUser,
        Join::ImportUsers,
    ];
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let customer_id = format!("race{i:02}x");
        app.create_customer(&customer_id, "Racing").await;
        let join = joins[i % joins.len()];
        let mover = match join {
            Join::MoveUser => {
                app.create_user(
                    &format!("mover{i:02}"),
                    &format!("mover{i:02}@example.com"),
                    "",
                )
                .await
                .user_id
            }
            _ => String::new(),
        };
        pairs.push((customer_id, join, mover));
    }
    type Call = std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;
    let calls = pairs.iter().flat_map(|(customer_id, join, mover)| {
        let delete: Call = {
            let mut client = app.client();
            let request = app.admin(pb::DeleteCustomerRequest {
                workspace_id: WS.into(),
                customer_id: customer_id.clone(),
                etag: String::new(),
            });
            Box::pin(async move { client.delete_customer(request).await.map(drop) })
        };
        let join: Call = Box::pin(join_customer(
            app.clone(),
            *join,
            customer_id.clone(),
            mover.clone(),
        ));
        [delete, join]
    });
    let results = all_at_once(calls).await;
    for ((customer_id, join, _), outcome) in pairs.iter().zip(results.chunks(2)) {
        for result in outcome {
            if let Err(status) = result {
                assert_eq!(
                    status.code(),
                    tonic::Code::FailedPrecondition,
                    "{customer_id} ({join:?}): {status:?}"
                );
            }
        }
        let (deleted, joined) = (outcome[0].is_ok(), outcome[1].is_ok());
        if matches!(join, Join::CreateUser | Join::MoveUser) {
            assert!(
                deleted != joined,
                "{customer_id} ({join:?}): exactly one of the delete and the join wins"
            );
        }
        let customer = app
            .client()
            .get_customer(app.admin(pb::GetCustomerRequest {
                workspace_id: WS.into(),
                customer_id: customer_id.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        let members = app.list(&format!("customer:{customer_id}")).await;
        if customer.deleted_at.is_some() {
            assert!(
                members.is_empty(),
                "{customer_id} ({join:?}) is deleted but has live users: {members:?}"
            );
        } else {
            assert!(
                joined,
                "{customer_id} ({join:?}) is live only if the join won"
            );
        }
        assert_eq!(
            members.len(),
            usize::from(joined),
            "{customer_id} ({join:?}): the joined user is live and in it"
        );
    }
}
