//! The relays deliver the directory's and the staff service's outboxes to the audit
//! service: every committed change's event is listable there exactly once, whatever
//! outages and replicas happen on the way, and nothing else is.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use roster_auth::{PrincipalKind, TokenRequest, VerifierSettings, WorkspaceAccess};
use roster_db::Db;
use roster_db::outbox::{self, AuditEvent, FieldChange};
use roster_proto::audit::v1 as audit;
use roster_proto::directory::v1 as directory;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_proto::staff::v1 as staff;
use roster_testkit::with_bearer;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use tonic::transport::Channel;

use crate::helpers::{Suite, WS};

crate::on_both_databases!(
    directory_and_staff_writes_become_listable_in_the_audit_log,
    writes_go_on_while_the_audit_service_is_down_and_their_events_arrive_once_after,
    a_rolled_back_change_leaves_no_event,
    an_event_the_audit_service_refuses_becomes_a_dead_letter_and_the_others_arrive,
    erasing_a_user_erases_them_from_the_audit_log_through_the_outbox,
);
crate::on_postgres_only!(two_directory_replicas_on_one_database_deliver_each_event_once);

/// Long enough for any machine; the tests poll, so a fast one finishes early.
const DEADLINE: Duration = Duration::from_secs(60);

/// A token the staff service's key signed (what the directory and the audit service
/// trust): an admin of `WS`.
pub(crate) async fn admin(suite: &Suite) -> String {
    let signer = suite.keys.current_signer().await.unwrap();
    let defaults = VerifierSettings::default();
    signer
        .mint_for(
            &TokenRequest {
                subject: uuid::Uuid::now_v7().to_string(),
                kind: PrincipalKind::Agent,
                workspaces: [(WS.to_owned(), WorkspaceAccess::new("admin", &[]))].into(),
                generation: 0,
                ttl: Duration::from_secs(600),
                issuer: defaults.issuer,
                audience: defaults.audience,
            },
            roster_auth::unix_now(),
        )
        .unwrap()
}

async fn create_user(
    directory: &DirectoryServiceClient<Channel>,
    token: &str,
    email: &str,
) -> String {
    directory
        .clone()
        .create_user(crate::helpers::create_user_request(token, email))
        .await
        .unwrap()
        .into_inner()
        .user_id
}

async fn invite(suite: &Suite, email: &str) -> String {
    suite
        .staff
        .clone()
        .invite_agent(with_bearer(
            &suite.tokens.agent(&[WS], "admin", &[]),
            staff::InviteAgentRequest {
                workspace_id: WS.into(),
                email: email.into(),
                role: "agent".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap()
        .agent_id
}

/// Every event of `WS`'s log that `request` selects, newest first.
pub(crate) async fn listed(
    suite: &Suite,
    request: audit::ListEventsRequest,
) -> Vec<audit::AuditEvent> {
    let token = admin(suite).await;
    let mut client = suite.audit_client().await;
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_events(with_bearer(
                &token,
                audit::ListEventsRequest {
                    workspace_id: WS.into(),
                    page_size: 1000,
                    page_token,
                    ..request.clone()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

async fn everything(suite: &Suite) -> Vec<audit::AuditEvent> {
    listed(suite, audit::ListEventsRequest::default()).await
}

/// Polls `listed` with `request` until it finds something.
pub(crate) async fn until_listed(
    suite: &Suite,
    request: audit::ListEventsRequest,
) -> Vec<audit::AuditEvent> {
    let started = Instant::now();
    loop {
        let events = listed(suite, request.clone()).await;
        if !events.is_empty() {
            return events;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "nothing listed for {request:?} after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until neither outbox holds a row still to deliver.
pub(crate) async fn until_drained(suite: &Suite) {
    let started = Instant::now();
    loop {
        let directory = roster_db::delivery::backlog(suite.directory_db.conn())
            .await
            .unwrap();
        let staff = roster_db::delivery::backlog(suite.staff_db.conn())
            .await
            .unwrap();
        if directory.pending == 0 && staff.pending == 0 {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "still waiting after {DEADLINE:?}: directory {directory:?}, staff {staff:?}, relays {:?} / {:?}",
            suite.directory_relay.figures(),
            suite.staff_relay.figures(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ids of every event `db`'s outbox holds for `WS`, delivered or not.
async fn outbox_ids(db: &Db) -> BTreeSet<String> {
    outbox::entity::Entity::find()
        .filter(outbox::entity::Column::WorkspaceId.eq(WS))
        .all(db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.event_id.to_string())
        .collect()
}

/// VerifyLog recomputes `WS`'s whole tree and finds it sound.
pub(crate) async fn assert_log_verifies(suite: &Suite) {
    let verified = suite
        .audit_client()
        .await
        .verify_log(with_bearer(
            &admin(suite).await,
            audit::VerifyLogRequest {
                workspace_id: WS.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.verified, "{:?}", verified.problem);
}

/// Every event the outboxes of both producers hold for `WS` is in the log exactly once,
/// and the log holds nothing else: as many leaves as distinct events.
async fn assert_log_matches_outboxes(suite: &Suite) {
    let mut committed = outbox_ids(&suite.directory_db).await;
    committed.extend(outbox_ids(&suite.staff_db).await);
    let events = everything(suite).await;
    let logged: BTreeSet<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(events.len(), logged.len(), "an event listed twice");
    assert_eq!(logged, committed, "the log against the outboxes");
    let checkpoint = suite
        .audit_client()
        .await
        .get_checkpoint(with_bearer(
            &admin(suite).await,
            audit::GetCheckpointRequest {
                workspace_id: WS.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        usize::try_from(checkpoint.tree_size).unwrap(),
        logged.len(),
        "one leaf per event"
    );
}

pub(crate) async fn directory_and_staff_writes_become_listable_in_the_audit_log(suite: Suite) {
    let token = admin(&suite).await;
    let user_id = create_user(&suite.directory, &token, "kirk@example.com").await;
    let agent_id = invite(&suite, "uhura@example.com").await;

    let created = until_listed(
        &suite,
        audit::ListEventsRequest {
            target_type: "end_user".into(),
            target_id: user_id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(created.len(), 1);
    let created = &created[0];
    assert_eq!(created.action, "end_user.created");
    assert_eq!(created.source_service, "directory");
    assert_eq!(created.schema_version, 1);
    assert_eq!(
        created.actor.as_ref().unwrap().kind,
        audit::ActorKind::Agent as i32
    );
    assert_eq!(created.outcome, audit::Outcome::Success as i32);
    let email = created
        .changes
        .iter()
        .find(|change| change.field == "email")
        .expect("the e-mail is a change");
    assert_eq!(email.before_json, None);
    assert_eq!(email.after_json.as_deref(), Some("\"kirk@example.com\""));

    let invited = until_listed(
        &suite,
        audit::ListEventsRequest {
            target_type: "agent".into(),
            target_id: agent_id.clone(),
            action_prefix: "agent.invited".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(invited.len(), 1);
    assert_eq!(invited[0].source_service, "staff");
    until_drained(&suite).await;
    assert_log_matches_outboxes(&suite).await;
}

async fn writes_go_on_while_the_audit_service_is_down_and_their_events_arrive_once_after(
    suite: Suite,
) {
    let token = admin(&suite).await;
    until_drained(&suite).await;
    suite.stop_audit().await;

    for at in 0..20 {
        create_user(&suite.directory, &token, &format!("crew-{at}@example.com")).await;
    }
    invite(&suite, "sulu@example.com").await;
    let waiting = roster_db::delivery::backlog(suite.directory_db.conn())
        .await
        .unwrap();
    assert_eq!(
        waiting.pending, 20,
        "every write's event waits: {waiting:?}"
    );
    assert!(waiting.oldest_pending_at.is_some());
    // The relay says why, and its figures (measured every few seconds) show the backlog.
    let started = Instant::now();
    loop {
        let figures = suite.directory_relay.figures();
        if figures.last_error.is_some() && figures.pending == 20 {
            assert!(figures.lag.is_some(), "{figures:?}");
            break;
        }
        assert!(started.elapsed() < DEADLINE, "{figures:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    suite.start_audit().await;
    until_drained(&suite).await;
    assert_log_matches_outboxes(&suite).await;
    let backlog = roster_db::delivery::backlog(suite.directory_db.conn())
        .await
        .unwrap();
    assert_eq!(backlog.dead, 0, "an outage kills no event");
}

async fn a_rolled_back_change_leaves_no_event(suite: Suite) {
    // The first row invites, the second cannot: all or nothing rolls the first back.
    let csv = "email,role\nchekov@example.com,agent\nnot-an-email,agent\n";
    let answer = suite
        .staff
        .clone()
        .bulk_invite_agents(with_bearer(
            &suite.tokens.agent(&[WS], "admin", &[]),
            tokio_stream::iter(vec![
                staff::BulkInviteAgentsRequest {
                    part: Some(staff::bulk_invite_agents_request::Part::Header(
                        staff::BulkInviteAgentsHeader {
                            workspace_id: WS.into(),
                            all_or_nothing: true,
                            ..Default::default()
                        },
                    )),
                },
                staff::BulkInviteAgentsRequest {
                    part: Some(staff::bulk_invite_agents_request::Part::Chunk(
                        csv.as_bytes().to_vec(),
                    )),
                },
            ]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.committed, "{answer:?}");
    assert_eq!((answer.succeeded, answer.failed), (1, 1));
    // A change that commits afterwards, to know the relay has come this far.
    let later = invite(&suite, "scotty@example.com").await;
    until_listed(
        &suite,
        audit::ListEventsRequest {
            target_id: later.clone(),
            target_type: "agent".into(),
            ..Default::default()
        },
    )
    .await;
    until_drained(&suite).await;

    let invitations: Vec<String> = listed(
        &suite,
        audit::ListEventsRequest {
            action_prefix: "agent.invited".into(),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .map(|event| event.target.unwrap().id)
    .collect();
    assert_eq!(invitations, [later], "only the committed invitation");
    assert_log_matches_outboxes(&suite).await;
}

/// An outbox row as a producer would write it, about end-user `target`.
fn event(target: &str, actor_kind: &str) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::now_v7(),
        workspace_id: WS.into(),
        occurred_at_us: roster_auth::unix_now() * 1_000_000,
        actor_kind: actor_kind.into(),
        actor_id: "agent-1".into(),
        action: "end_user.updated".into(),
        target_type: "end_user".into(),
        target_id: target.into(),
        changes: vec![FieldChange {
            field: "name".into(),
            before: Some(serde_json::json!("Jim")),
            after: Some(serde_json::json!("James")),
        }],
        request_id: "req-1".into(),
        trace_id: None,
        traceparent: None,
        peer_ip: Some("192.0.2.1".into()),
        user_agent: None,
        outcome: "success".into(),
    }
}

async fn an_event_the_audit_service_refuses_becomes_a_dead_letter_and_the_others_arrive(
    suite: Suite,
) {
    until_drained(&suite).await;
    // One batch, since they commit together: the audit service refuses the middle one (it
    // knows no actor kind "robot"), so it refuses the whole batch the first time.
    let good = event("user-1", "agent");
    let bad = event("user-2", "robot");
    let also_good = event("user-3", "service");
    let txn = suite.directory_db.begin_write().await.unwrap();
    outbox::append(&*txn, &[good.clone(), bad.clone(), also_good.clone()])
        .await
        .unwrap();
    txn.commit().await.unwrap();

    let started = Instant::now();
    loop {
        let backlog = roster_db::delivery::backlog(suite.directory_db.conn())
            .await
            .unwrap();
        if backlog.dead == 1 && backlog.pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no dead letter after {DEADLINE:?}: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = outbox::entity::Entity::find()
        .filter(outbox::entity::Column::DeadAt.is_not_null())
        .all(suite.directory_db.conn())
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].event_id, bad.event_id,
        "only the refused event died"
    );
    let why = dead[0].last_error.clone().unwrap_or_default();
    assert!(why.contains("InvalidArgument"), "{why}");
    assert_eq!(suite.directory_relay.figures().dead_lettered, 1);

    let logged: BTreeSet<String> = everything(&suite)
        .await
        .into_iter()
        .map(|event| event.event_id)
        .collect();
    assert!(logged.contains(&good.event_id.to_string()));
    assert!(logged.contains(&also_good.event_id.to_string()));
    assert!(!logged.contains(&bad.event_id.to_string()));
}

async fn two_directory_replicas_on_one_database_deliver_each_event_once(suite: Suite) {
    let (replica, replica_relay) = suite.directory_replica().await;
    let token = admin(&suite).await;
    // Both replicas write and both relays claim, at once.
    let writes = (0..60).map(|at| {
        let directory = if at % 2 == 0 {
            suite.directory.clone()
        } else {
            replica.clone()
        };
        let token = token.clone();
        async move { create_user(&directory, &token, &format!("ensign-{at}@example.com")).await }
    });
    futures_util::future::join_all(writes).await;
    until_drained(&suite).await;
    assert_log_matches_outboxes(&suite).await;
    let delivered = suite.directory_relay.figures().delivered + replica_relay.figures().delivered;
    assert!(delivered >= 60, "{delivered}");
}

pub(crate) async fn erasing_a_user_erases_them_from_the_audit_log_through_the_outbox(suite: Suite) {
    let token = admin(&suite).await;
    let user_id = create_user(&suite.directory, &token, "kirk@example.com").await;
    let about_kirk = audit::ListEventsRequest {
        target_type: "end_user".into(),
        target_id: user_id.clone(),
        ..Default::default()
    };
    let created = until_listed(&suite, about_kirk.clone()).await;
    let created_id = created[0].event_id.clone();

    suite
        .directory
        .clone()
        .erase_user(with_bearer(
            &token,
            directory::EraseUserRequest {
                workspace_id: WS.into(),
                user_id: user_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let erased = until_listed(
        &suite,
        audit::ListEventsRequest {
            action_prefix: "subject.erased".into(),
            ..about_kirk.clone()
        },
    )
    .await;
    // The request's outbox row names the erasure.
    let request = outbox::entity::Entity::find()
        .filter(outbox::entity::Column::WorkspaceId.eq(WS))
        .filter(outbox::entity::Column::Action.eq(outbox::ERASURE_REQUESTED))
        .all(suite.directory_db.conn())
        .await
        .unwrap();
    assert_eq!(request.len(), 1);
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].event_id, request[0].event_id.to_string());

    // What the log held about the person is unreadable now, and the log still verifies.
    let mut client = suite.audit_client().await;
    let before = client
        .get_event(with_bearer(
            &token,
            audit::GetEventRequest {
                workspace_id: WS.into(),
                event_id: created_id,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let email = before
        .changes
        .iter()
        .find(|change| change.field == "email")
        .unwrap();
    assert!(email.after_redacted, "{email:?}");
    assert_eq!(email.after_json, None);
    assert_log_verifies(&suite).await;
    until_drained(&suite).await;
    assert_log_matches_outboxes(&suite).await;
}
