//! ListEvents: newest first, keyset pages that later appends do not shift, and filters.

use roster_proto::audit::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, event, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    pages_run_newest_first_without_gaps_or_repeats,
    filters_narrow_the_log,
    bad_filters_and_foreign_page_tokens_are_refused,
);

fn leaves(page: &pb::ListEventsResponse) -> Vec<i64> {
    page.events.iter().map(|e| e.leaf_index).collect()
}

async fn pages_run_newest_first_without_gaps_or_repeats(app: TestApp) {
    app.append_each(7).await;
    let first = app
        .list(pb::ListEventsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await;
    assert_eq!(leaves(&first), [6, 5, 4]);
    // Events recorded meanwhile appear on a new first page, not in the pages under way.
    app.append_each(2).await;
    let second = app
        .list(pb::ListEventsRequest {
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(leaves(&second), [3, 2, 1]);
    let last = app
        .list(pb::ListEventsRequest {
            page_size: 3,
            page_token: second.next_page_token,
            ..Default::default()
        })
        .await;
    assert_eq!(leaves(&last), [0]);
    assert!(last.next_page_token.is_empty());
    let all = app.list(pb::ListEventsRequest::default()).await;
    assert_eq!(leaves(&all), [8, 7, 6, 5, 4, 3, 2, 1, 0]);
    assert!(all.next_page_token.is_empty());
}

async fn filters_narrow_the_log(app: TestApp) {
    let mut by_spock = event("end_user.deactivated");
    by_spock.actor = Some(pb::Actor {
        kind: pb::ActorKind::Agent as i32,
        id: "agent-2".into(),
        display_name: "Spock".into(),
    });
    let mut about_customer = event("customer.renamed");
    about_customer.target = Some(pb::Target {
        r#type: "customer".into(),
        id: "mil".into(),
    });
    let mut failed = event("agent.login_failed");
    failed.outcome = pb::Outcome::Failure as i32;
    failed.target = Some(pb::Target {
        r#type: "agent".into(),
        id: "agent-2".into(),
    });
    let mut early = event("end_user.created");
    early.occurred_at = Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    });
    let other_user = {
        let mut e = event("end_user.updated");
        e.target = Some(pb::Target {
            r#type: "end_user".into(),
            id: "user-2".into(),
        });
        e
    };
    // Leaves: 0 by_spock, 1 about_customer, 2 failed, 3 early, 4 other_user.
    app.append(vec![by_spock, about_customer, failed, early, other_user])
        .await;
    let cases = [
        (
            pb::ListEventsRequest {
                actor_id: "agent-2".into(),
                ..Default::default()
            },
            vec![0],
        ),
        (
            pb::ListEventsRequest {
                target_type: "end_user".into(),
                target_id: "user-1".into(),
                ..Default::default()
            },
            vec![3, 0],
        ),
        (
            pb::ListEventsRequest {
                target_type: "end_user".into(),
                ..Default::default()
            },
            vec![4, 3, 0],
        ),
        (
            pb::ListEventsRequest {
                action_prefix: "end_user.".into(),
                ..Default::default()
            },
            vec![4, 3, 0],
        ),
        (
            pb::ListEventsRequest {
                action_prefix: "end_user.de".into(),
                ..Default::default()
            },
            vec![0],
        ),
        (
            pb::ListEventsRequest {
                outcome: pb::Outcome::Failure as i32,
                ..Default::default()
            },
            vec![2],
        ),
        (
            pb::ListEventsRequest {
                occurred_before: Some(prost_types::Timestamp {
                    seconds: 1_750_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
            vec![3],
        ),
        (
            pb::ListEventsRequest {
                occurred_after: Some(prost_types::Timestamp {
                    seconds: 1_750_000_000,
                    nanos: 0,
                }),
                action_prefix: "customer.".into(),
                ..Default::default()
            },
            vec![1],
        ),
        (
            pb::ListEventsRequest {
                action_prefix: "customer.renamed_".into(),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (request, expected) in cases {
        let described = format!("{request:?}");
        assert_eq!(leaves(&app.list(request).await), expected, "{described}");
    }
    // Filters page like the whole log does.
    let page = app
        .list(pb::ListEventsRequest {
            target_type: "end_user".into(),
            page_size: 2,
            ..Default::default()
        })
        .await;
    assert_eq!(leaves(&page), [4, 3]);
    let rest = app
        .list(pb::ListEventsRequest {
            target_type: "end_user".into(),
            page_size: 2,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await;
    assert_eq!(leaves(&rest), [0]);
}

async fn bad_filters_and_foreign_page_tokens_are_refused(app: TestApp) {
    app.append_each(3).await;
    let page = app
        .list(pb::ListEventsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await;
    let refused = |request: pb::ListEventsRequest| {
        let app = app.clone();
        async move {
            app.client()
                .list_events(app.admin(pb::ListEventsRequest {
                    workspace_id: WS.into(),
                    ..request
                }))
                .await
        }
    };
    let status = assert_refused(
        refused(pb::ListEventsRequest {
            page_token: page.next_page_token.clone(),
            actor_id: "agent-1".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = assert_refused(
        refused(pb::ListEventsRequest {
            page_size: -1,
            target_id: "user-1".into(),
            action_prefix: "end_user%".into(),
            occurred_after: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: -1,
            }),
            outcome: 42,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "action_prefix",
            "occurred_after",
            "outcome",
            "page_size",
            "target_type"
        ]
    );
    assert_refused(
        refused(pb::ListEventsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_refused(
        app.client()
            .list_events(app.admin(pb::ListEventsRequest {
                workspace_id: "a b".into(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}
