//! BulkInviteAgents, BulkUpdateAgents and BulkDeactivateAgents: each item as its single
//! call would be, one result per item, and `all_or_nothing` and `dry_run` writing nothing.

use pb::bulk_agent_result::Outcome as AgentOutcome;
use pb::bulk_invite_result::Outcome as InviteOutcome;
use pb::bulk_update_agents_request::Action;
use roster_proto::staff::v1 as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::helpers::{PASSWORD, TestApp, WS, assert_refused, change_of, violated_fields};
use crate::on_both_databases;
use crate::revocations::published;

on_both_databases!(
    a_file_invites_every_row_and_answers_each_secret_once,
    a_request_id_replays_the_first_answer_without_secrets,
    bad_rows_fail_alone_with_their_lines,
    a_bad_file_fails_the_call,
    rows_past_the_seat_limit_fail,
    all_or_nothing_writes_nothing_when_an_item_fails,
    a_dry_run_decides_everything_and_writes_nothing,
    bulk_role_changes_are_audited_and_end_the_old_tokens,
    agents_join_and_leave_a_team_in_bulk,
    the_last_admin_and_the_callers_own_role_are_kept_in_bulk,
    bulk_deactivation_frees_seats_and_ends_sign_ins,
    bulk_calls_need_staff_manage,
);

fn header(dry_run: bool, all_or_nothing: bool, request_id: &str) -> pb::BulkInviteAgentsHeader {
    pb::BulkInviteAgentsHeader {
        workspace_id: WS.into(),
        dry_run,
        all_or_nothing,
        request_id: request_id.into(),
    }
}

/// Streams `csv` in chunks of `chunk` bytes after `header`.
async fn invite_file(
    app: &TestApp,
    token: &str,
    header: pb::BulkInviteAgentsHeader,
    csv: &str,
    chunk: usize,
) -> Result<pb::BulkInviteAgentsResponse, Status> {
    let mut messages = vec![pb::BulkInviteAgentsRequest {
        part: Some(pb::bulk_invite_agents_request::Part::Header(header)),
    }];
    for piece in csv.as_bytes().chunks(chunk) {
        messages.push(pb::BulkInviteAgentsRequest {
            part: Some(pb::bulk_invite_agents_request::Part::Chunk(piece.to_vec())),
        });
    }
    app.client()
        .bulk_invite_agents(app.with(token, tokio_stream::iter(messages)))
        .await
        .map(tonic::Response::into_inner)
}

async fn invite(app: &TestApp, csv: &str) -> pb::BulkInviteAgentsResponse {
    invite_file(
        app,
        &app.admin_token(),
        header(false, false, ""),
        csv,
        1 << 16,
    )
    .await
    .expect("bulk invite")
}

async fn update(
    app: &TestApp,
    token: &str,
    agent_ids: &[&str],
    action: Action,
    all_or_nothing: bool,
    dry_run: bool,
) -> Result<pb::BulkAgentsResponse, Status> {
    app.client()
        .bulk_update_agents(app.with(
            token,
            pb::BulkUpdateAgentsRequest {
                workspace_id: WS.into(),
                agent_ids: agent_ids.iter().map(|id| (*id).to_owned()).collect(),
                action: Some(action),
                all_or_nothing,
                dry_run,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn deactivate(
    app: &TestApp,
    token: &str,
    agent_ids: &[&str],
    all_or_nothing: bool,
    dry_run: bool,
) -> Result<pb::BulkAgentsResponse, Status> {
    app.client()
        .bulk_deactivate_agents(app.with(
            token,
            pb::BulkDeactivateAgentsRequest {
                workspace_id: WS.into(),
                agent_ids: agent_ids.iter().map(|id| (*id).to_owned()).collect(),
                reason: "team restructured".into(),
                all_or_nothing,
                dry_run,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn invited(result: &pb::BulkInviteResult) -> &pb::InviteAgentResponse {
    match &result.outcome {
        Some(InviteOutcome::Invited(invited)) => invited,
        other => panic!("line {} did not invite: {other:?}", result.line),
    }
}

/// A failed item's code, reason and violated fields.
type Failure = (Code, String, Vec<String>);

/// A failed row's (code, reason, fields).
fn invite_error(result: &pb::BulkInviteResult) -> Failure {
    match &result.outcome {
        Some(InviteOutcome::Error(error)) => item_error(error),
        other => panic!("line {} did not fail: {other:?}", result.line),
    }
}

fn item_error(error: &pb::BulkItemError) -> Failure {
    (
        Code::from_i32(error.code),
        error.reason.clone(),
        error
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect(),
    )
}

fn agent_of(result: &pb::BulkAgentResult) -> &pb::Agent {
    match &result.outcome {
        Some(AgentOutcome::Agent(agent)) => agent,
        other => panic!("item {} failed: {other:?}", result.index),
    }
}

fn agent_error(result: &pb::BulkAgentResult) -> (Code, String) {
    match &result.outcome {
        Some(AgentOutcome::Error(error)) => {
            let (code, reason, _) = item_error(error);
            (code, reason)
        }
        other => panic!("item {} did not fail: {other:?}", result.index),
    }
}

async fn pending_invitations(app: &TestApp) -> Vec<pb::Invitation> {
    app.client()
        .list_invitations(app.admin(pb::ListInvitationsRequest {
            workspace_id: WS.into(),
            page_size: 100,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .invitations
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

async fn a_file_invites_every_row_and_answers_each_secret_once(app: TestApp) {
    let tier1 = app.create_team("Tier 1", &[]).await;
    let billing = app.create_team("Billing", &[]).await;
    let csv = format!(
        "Email,Role,Team,Name\r\n\
         ada@example.com,admin,tier 1,Ada Lovelace\r\n\
         bob@example.com,Viewer,{},\r\n\
         \r\n\
         cat@example.com,,,Cat\r\n",
        billing.team_id
    );
    // Chunks that split lines, cells and CRLFs arrive as one file.
    let answer = invite_file(&app, &app.admin_token(), header(false, false, ""), &csv, 7)
        .await
        .unwrap();
    assert!(answer.committed && !answer.dry_run && !answer.replayed);
    assert_eq!((answer.succeeded, answer.failed), (3, 0));
    let lines: Vec<i64> = answer.results.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 5]);

    let ada = invited(&answer.results[0]);
    let bob = invited(&answer.results[1]);
    let cat = invited(&answer.results[2]);
    let roles: Vec<&str> = [ada, bob, cat]
        .iter()
        .map(|i| i.agent.as_ref().unwrap().role.as_str())
        .collect();
    assert_eq!(roles, ["admin", "viewer", "agent"]);
    assert_eq!(
        ada.agent.as_ref().unwrap().team_ids,
        std::slice::from_ref(&tier1.team_id)
    );
    assert_eq!(
        bob.agent.as_ref().unwrap().team_ids,
        std::slice::from_ref(&billing.team_id)
    );
    assert_eq!(ada.agent.as_ref().unwrap().name, "Ada Lovelace");
    assert!([ada, bob, cat].iter().all(|i| !i.secret.is_empty()));
    assert_eq!(pending_invitations(&app).await.len(), 3);
    assert_eq!(app.usage().await.seats_used, 3);
    assert_eq!(count(&app.actions().await, "agent.invited"), 3);

    // The secret is the invitation's: accepting it activates the agent.
    let accepted = app.accept(&ada.secret).await.unwrap();
    assert_eq!(accepted.status, pb::AgentStatus::Active as i32);

    // A row for an e-mail already INVITED re-sends: the old secret dies, the seat stays.
    let again = invite(&app, "email,role\nbob@example.com,viewer\n").await;
    assert!(again.results[0].resent);
    let bob_again = invited(&again.results[0]);
    assert_eq!(
        bob_again.agent.as_ref().unwrap().agent_id,
        bob.agent.as_ref().unwrap().agent_id
    );
    assert_refused(
        app.accept(&bob.secret).await,
        Code::FailedPrecondition,
        "INVITATION_SUPERSEDED",
    );
    app.accept(&bob_again.secret).await.unwrap();
    assert_eq!(app.usage().await.seats_used, 3);
    assert_eq!(count(&app.actions().await, "agent.invitation_resent"), 1);
}

async fn a_request_id_replays_the_first_answer_without_secrets(app: TestApp) {
    let request_id = uuid::Uuid::now_v7().to_string();
    let csv = "email,role\nada@example.com,agent\nnot an e-mail,agent\n";
    let first = invite_file(
        &app,
        &app.admin_token(),
        header(false, false, &request_id),
        csv,
        5,
    )
    .await
    .unwrap();
    assert_eq!((first.succeeded, first.failed), (1, 1));
    let events = app.events().await.len();

    // The same file, chunked otherwise, is the same request.
    let replay = invite_file(
        &app,
        &app.admin_token(),
        header(false, false, &request_id),
        csv,
        64,
    )
    .await
    .unwrap();
    assert!(replay.replayed && replay.committed);
    assert_eq!((replay.succeeded, replay.failed), (1, 1));
    let (first_ada, replayed_ada) = (invited(&first.results[0]), invited(&replay.results[0]));
    assert_eq!(first_ada.agent, replayed_ada.agent);
    assert_eq!(first_ada.invitation, replayed_ada.invitation);
    assert!(replayed_ada.secret.is_empty() && replayed_ada.replayed);
    assert_eq!(
        invite_error(&replay.results[1]),
        invite_error(&first.results[1])
    );
    assert_eq!(app.events().await.len(), events, "a replay writes nothing");
    app.accept(&first_ada.secret).await.unwrap();

    // Other content under the same id is refused.
    assert_refused(
        invite_file(
            &app,
            &app.admin_token(),
            header(false, false, &request_id),
            "email\nbob@example.com\n",
            64,
        )
        .await,
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
    );
    let status = invite_file(
        &app,
        &app.admin_token(),
        header(false, false, "nope"),
        csv,
        64,
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["header.request_id"]);
}

async fn bad_rows_fail_alone_with_their_lines(app: TestApp) {
    app.active("active@example.com", "agent").await;
    app.create_team("Tier 1", &["customers.write"]).await;
    let csv = "email,role,team\n\
               good@example.com,agent,\n\
               not-an-email,agent,\n\
               ghost@example.com,wizard,\n\
               lost@example.com,agent,Nowhere\n\
               GOOD@example.com,viewer,\n\
               active@example.com,agent,\n\
               short@example.com\n";
    let answer = invite(&app, csv).await;
    assert!(answer.committed);
    assert_eq!((answer.succeeded, answer.failed), (1, 6));
    let failures: Vec<(i64, Failure)> = answer.results[1..]
        .iter()
        .map(|r| (r.line, invite_error(r)))
        .collect();
    let invalid = |field: &str| {
        (
            Code::InvalidArgument,
            "INVALID_ARGUMENT".to_owned(),
            vec![field.to_owned()],
        )
    };
    assert_eq!(
        failures,
        [
            (3, invalid("email")),
            (4, invalid("role")),
            (5, (Code::NotFound, "TEAM_NOT_FOUND".into(), vec![])),
            (6, invalid("email")),
            (
                7,
                (Code::AlreadyExists, "AGENT_ALREADY_ACTIVE".into(), vec![])
            ),
            (8, invalid("row")),
        ]
    );
    let Some(InviteOutcome::Error(repeat)) = &answer.results[4].outcome else {
        panic!()
    };
    assert!(repeat.message.contains("line 2"), "{}", repeat.message);
    assert_eq!(answer.results[1].email, "not-an-email");
    assert_eq!(pending_invitations(&app).await.len(), 1);

    // Nobody grants what they lack, row by row: a manager invites viewers, not admins,
    // nor into a team whose permissions they do not hold.
    let manager = app.token("agent", &["staff.manage"]);
    let answer = invite_file(
        &app,
        &manager,
        header(false, false, ""),
        "email,role,team\nv@example.com,viewer,\na@example.com,admin,\nt@example.com,viewer,Tier 1\n",
        64,
    )
    .await
    .unwrap();
    invited(&answer.results[0]);
    for result in &answer.results[1..] {
        let (code, reason, _) = invite_error(result);
        assert_eq!(
            (code, reason.as_str()),
            (Code::PermissionDenied, "GRANT_NOT_HELD")
        );
    }
}

async fn a_bad_file_fails_the_call(app: TestApp) {
    let admin = app.admin_token();
    let call = |csv: String| {
        let (app, admin) = (app.clone(), admin.clone());
        async move { invite_file(&app, &admin, header(false, false, ""), &csv, 1 << 16).await }
    };
    for (csv, says) in [
        (
            "email,mail\na@example.com,x\n".to_owned(),
            "unknown column 'mail'",
        ),
        ("name,role\nAda,agent\n".to_owned(), "needs an email column"),
        ("email,role\n".to_owned(), "no rows"),
        (String::new(), "empty"),
    ] {
        let status = call(csv.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{csv:?}");
        assert_eq!(violated_fields(&status), ["chunk"], "{csv:?}");
        assert!(violation_says(&status, says), "{csv:?}: {status:?}");
    }
    let mut many = String::from("email\n");
    for n in 0..=1000 {
        many.push_str(&format!("a{n}@example.com\n"));
    }
    let status = call(many).await.unwrap_err();
    assert!(violation_says(&status, "more than 1000 rows"), "{status:?}");
    let huge = format!("email,name\na@example.com,{}\n", "x".repeat(1024 * 1024));
    let status = call(huge).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(violation_says(&status, "larger than"), "{status:?}");

    // The header must come first, once.
    let status = app
        .client()
        .bulk_invite_agents(
            app.admin(tokio_stream::iter(vec![pb::BulkInviteAgentsRequest {
                part: Some(pb::bulk_invite_agents_request::Part::Chunk(
                    b"email\n".to_vec(),
                )),
            }])),
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["header"]);
    assert!(app.actions().await.is_empty(), "nothing was written");
}

async fn rows_past_the_seat_limit_fail(app: TestApp) {
    app.set_seats(3).await;
    app.active("root@example.com", "admin").await;
    let answer = invite(
        &app,
        "email\na@example.com\nb@example.com\nc@example.com\nd@example.com\n",
    )
    .await;
    assert_eq!((answer.succeeded, answer.failed), (2, 2));
    for result in &answer.results[2..] {
        let (code, reason, _) = invite_error(result);
        assert_eq!(
            (code, reason.as_str()),
            (Code::FailedPrecondition, "SEAT_LIMIT_REACHED")
        );
        let Some(InviteOutcome::Error(error)) = &result.outcome else {
            panic!()
        };
        assert!(error.message.contains("all 3 seats"), "{}", error.message);
    }
    assert_eq!(app.usage().await.seats_used, 3);
}

async fn all_or_nothing_writes_nothing_when_an_item_fails(app: TestApp) {
    app.set_seats(2).await;
    app.active("root@example.com", "admin").await;
    let events = app.events().await.len();
    let request_id = uuid::Uuid::now_v7().to_string();
    let csv = "email\na@example.com\nb@example.com\n";
    let answer = invite_file(
        &app,
        &app.admin_token(),
        header(false, true, &request_id),
        csv,
        64,
    )
    .await
    .unwrap();
    assert!(!answer.committed);
    assert_eq!((answer.succeeded, answer.failed), (1, 1));
    assert!(
        invited(&answer.results[0]).secret.is_empty(),
        "no secret of an invitation not sent"
    );
    assert_eq!(invite_error(&answer.results[1]).1, "SEAT_LIMIT_REACHED");
    assert!(pending_invitations(&app).await.is_empty());
    assert_eq!(app.usage().await.seats_used, 1);
    assert_eq!(app.events().await.len(), events);

    // Nothing was recorded either: with a seat more, the same request goes through.
    app.set_seats(3).await;
    let answer = invite_file(
        &app,
        &app.admin_token(),
        header(false, true, &request_id),
        csv,
        64,
    )
    .await
    .unwrap();
    assert!(answer.committed && !answer.replayed);
    assert_eq!(pending_invitations(&app).await.len(), 2);

    // So for changes: one unknown agent keeps the others as they were.
    app.set_seats(0).await;
    let ada = app.active("ada@example.com", "agent").await;
    let nobody = uuid::Uuid::now_v7().to_string();
    let events = app.events().await.len();
    let answer = update(
        &app,
        &app.admin_token(),
        &[&ada.agent_id, &nobody],
        Action::SetRole("viewer".into()),
        true,
        false,
    )
    .await
    .unwrap();
    assert!(!answer.committed);
    assert_eq!(
        agent_of(&answer.results[0]).role,
        "viewer",
        "what it would have been"
    );
    assert_eq!(
        agent_error(&answer.results[1]),
        (Code::NotFound, "AGENT_NOT_FOUND".into())
    );
    assert_eq!(app.get(&ada.agent_id).await.role, "agent");
    assert_eq!(app.events().await.len(), events);
    // Without all_or_nothing the one that could change did.
    let answer = update(
        &app,
        &app.admin_token(),
        &[&ada.agent_id, &nobody],
        Action::SetRole("viewer".into()),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(answer.committed);
    assert_eq!((answer.succeeded, answer.failed), (1, 1));
    assert_eq!(app.get(&ada.agent_id).await.role, "viewer");
}

async fn a_dry_run_decides_everything_and_writes_nothing(app: TestApp) {
    let root = app.active("root@example.com", "admin").await;
    let ada = app.active("ada@example.com", "agent").await;
    app.set_seats(3).await;
    let events = app.events().await.len();

    let review = invite_file(
        &app,
        &app.admin_token(),
        header(true, false, &uuid::Uuid::now_v7().to_string()),
        "email,role\nbob@example.com,viewer\ncat@example.com,agent\n",
        64,
    )
    .await
    .unwrap();
    assert!(review.dry_run && !review.committed);
    assert_eq!(
        invited(&review.results[0]).agent.as_ref().unwrap().role,
        "viewer"
    );
    assert!(invited(&review.results[0]).secret.is_empty());
    assert_eq!(
        invite_error(&review.results[1]).1,
        "SEAT_LIMIT_REACHED",
        "the review counts seats"
    );

    let review = deactivate(
        &app,
        &app.admin_token(),
        &[&ada.agent_id, &root.agent_id],
        false,
        true,
    )
    .await
    .unwrap();
    assert!(review.dry_run && !review.committed);
    assert_eq!(
        agent_of(&review.results[0]).status,
        pb::AgentStatus::Deactivated as i32
    );
    assert_eq!(agent_error(&review.results[1]).1, "LAST_ADMIN");
    let review = update(
        &app,
        &app.admin_token(),
        &[&ada.agent_id],
        Action::SetRole("admin".into()),
        false,
        true,
    )
    .await
    .unwrap();
    assert!(review.results[0].changed);

    assert_eq!(app.get(&ada.agent_id).await, ada);
    assert!(pending_invitations(&app).await.is_empty());
    assert_eq!(app.usage().await.seats_used, 2);
    assert_eq!(app.events().await.len(), events);
}

/// The generation of a fresh sign-in's token.
async fn generation(app: &TestApp, email: &str) -> i64 {
    let session = app.login(email, PASSWORD).await.unwrap();
    i64::try_from(app.verify(&session.access_token).generation).unwrap()
}

async fn bulk_role_changes_are_audited_and_end_the_old_tokens(app: TestApp) {
    app.active("root@example.com", "admin").await;
    let ada = app.active("ada@example.com", "agent").await;
    let bob = app.active("bob@example.com", "agent").await;
    let ada_before = generation(&app, "ada@example.com").await;

    let answer = update(
        &app,
        &app.admin_token(),
        &[&ada.agent_id, &bob.agent_id],
        Action::SetRole("Viewer".into()),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(answer.committed);
    for result in &answer.results {
        assert!(result.changed);
        assert_eq!(agent_of(result).role, "viewer");
    }
    assert_eq!(answer.results[1].agent_id, bob.agent_id);

    let events = app.events().await;
    let changed: Vec<_> = events
        .iter()
        .filter(|e| e.action == "agent.role_changed")
        .collect();
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0].target_id, ada.agent_id);
    let (before, after) = change_of(changed[0], "role");
    assert_eq!((before, after), ("agent".into(), "viewer".into()));
    let (_, email) = change_of(changed[0], "agent.email");
    assert_eq!(email, "ada@example.com");
    let (before, after) = change_of(changed[0], "permissions");
    assert_eq!(
        before,
        serde_json::json!(["end_users.write", "macros.use", "tickets.work"])
    );
    assert_eq!(after, serde_json::json!([]));

    // Ada's tokens from before the change are revoked, and the feed says so.
    let ada_after = generation(&app, "ada@example.com").await;
    assert!(ada_after > ada_before);
    assert_eq!(published(&app).await.get(&ada.agent_id), Some(&ada_after));
    assert!(published(&app).await.contains_key(&bob.agent_id));

    // The same call again finds them so: nothing changes, nothing is written.
    let events = app.events().await;
    let again = update(
        &app,
        &app.admin_token(),
        &[&ada.agent_id, &bob.agent_id],
        Action::SetRole("viewer".into()),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(again.results.iter().all(|r| !r.changed));
    assert_eq!(app.events().await.len(), events.len());

    // A role nobody has, or one the caller may not grant, fails the call.
    assert_refused(
        update(
            &app,
            &app.admin_token(),
            &[&ada.agent_id],
            Action::SetRole("wizard".into()),
            false,
            false,
        )
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_refused(
        update(
            &app,
            &app.token("agent", &["staff.manage"]),
            &[&ada.agent_id],
            Action::SetRole("admin".into()),
            false,
            false,
        )
        .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
}

async fn agents_join_and_leave_a_team_in_bulk(app: TestApp) {
    let tier2 = app.create_team("Tier 2", &["end_users.write"]).await;
    let ada = app.active("ada@example.com", "viewer").await;
    let bob = app.active("bob@example.com", "viewer").await;
    let admin = app.admin_token();

    let answer = update(
        &app,
        &admin,
        &[&ada.agent_id, &bob.agent_id, &ada.agent_id],
        Action::AddToTeam(tier2.team_id.clone()),
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!((answer.succeeded, answer.failed), (2, 1));
    assert_eq!(
        agent_of(&answer.results[0]).team_ids,
        std::slice::from_ref(&tier2.team_id)
    );
    let Some(AgentOutcome::Error(repeat)) = &answer.results[2].outcome else {
        panic!()
    };
    assert_eq!(item_error(repeat).2, ["agent_ids[2]"]);
    let joined = app.last_event("agent.teams_changed").await;
    assert!(joined.changes.to_string().contains("Tier 2"));
    let (_, permissions) = change_of(&joined, "permissions");
    assert_eq!(permissions, serde_json::json!(["end_users.write"]));

    let again = update(
        &app,
        &admin,
        &[&ada.agent_id],
        Action::AddToTeam(tier2.team_id.clone()),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(!again.results[0].changed, "already in");

    let answer = update(
        &app,
        &admin,
        &[&ada.agent_id],
        Action::RemoveFromTeam(tier2.team_id.clone()),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(answer.results[0].changed);
    assert!(app.get(&ada.agent_id).await.team_ids.is_empty());
    assert_eq!(
        app.get(&bob.agent_id).await.team_ids,
        std::slice::from_ref(&tier2.team_id)
    );
    assert_eq!(count(&app.actions().await, "agent.teams_changed"), 3);

    // An unknown team, or one whose permissions the caller lacks, fails the call.
    assert_refused(
        update(
            &app,
            &admin,
            &[&ada.agent_id],
            Action::AddToTeam(uuid::Uuid::now_v7().to_string()),
            false,
            false,
        )
        .await,
        Code::NotFound,
        "TEAM_NOT_FOUND",
    );
    let billing = app.create_team("Billing", &["customers.write"]).await;
    assert_refused(
        update(
            &app,
            &app.token("agent", &["staff.manage"]),
            &[&ada.agent_id],
            Action::AddToTeam(billing.team_id.clone()),
            false,
            false,
        )
        .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    let status = update(
        &app,
        &admin,
        &["x"],
        Action::AddToTeam("y".into()),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["agent_ids[0]", "add_to_team"]);
}

async fn the_last_admin_and_the_callers_own_role_are_kept_in_bulk(app: TestApp) {
    let kirk = app.active("kirk@example.com", "admin").await;
    let spock = app.active("spock@example.com", "admin").await;
    // A service's token: no agent of its own, so only the last-admin guard applies.
    let ops = app.tokens.at(
        roster_auth::PrincipalKind::Service,
        "ops",
        &[WS],
        "admin",
        &[],
        roster_auth::unix_now(),
    );
    let answer = update(
        &app,
        &ops,
        &[&kirk.agent_id, &spock.agent_id],
        Action::SetRole("agent".into()),
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(agent_of(&answer.results[0]).role, "agent");
    assert_eq!(
        agent_error(&answer.results[1]),
        (Code::FailedPrecondition, "LAST_ADMIN".into())
    );
    assert_eq!(app.get(&spock.agent_id).await.role, "admin");
    assert_eq!(
        agent_error(
            &deactivate(&app, &ops, &[&spock.agent_id], false, false)
                .await
                .unwrap()
                .results[0]
        ),
        (Code::FailedPrecondition, "LAST_ADMIN".into())
    );

    // Spock, with kirk made admin again, may change kirk's role but not their own.
    update(
        &app,
        &ops,
        &[&kirk.agent_id],
        Action::SetRole("admin".into()),
        false,
        false,
    )
    .await
    .unwrap();
    let spock_token = app.token_as(&spock.agent_id, &[WS], "admin", &[]);
    let answer = update(
        &app,
        &spock_token,
        &[&spock.agent_id, &kirk.agent_id],
        Action::SetRole("viewer".into()),
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        agent_error(&answer.results[0]),
        (Code::PermissionDenied, "OWN_ROLE".into())
    );
    assert_eq!(agent_of(&answer.results[1]).role, "viewer");
    assert_eq!(app.get(&spock.agent_id).await.role, "admin");
}

async fn bulk_deactivation_frees_seats_and_ends_sign_ins(app: TestApp) {
    app.set_seats(4).await;
    let root = app.active("root@example.com", "admin").await;
    let ada = app.active("ada@example.com", "agent").await;
    let bob = app.active("bob@example.com", "viewer").await;
    let cat = app.invite("cat@example.com", "agent").await;
    let session = app.login("ada@example.com", PASSWORD).await.unwrap();
    let ada_before = app.verify(&session.access_token).generation;
    assert_eq!(app.usage().await.seats_used, 4);

    let root_token = app.token_as(&root.agent_id, &[WS], "admin", &[]);
    let cat_id = cat.agent.as_ref().unwrap().agent_id.clone();
    let answer = deactivate(
        &app,
        &root_token,
        &[&ada.agent_id, &root.agent_id, &bob.agent_id, &cat_id],
        false,
        false,
    )
    .await
    .unwrap();
    assert!(answer.committed);
    assert_eq!((answer.succeeded, answer.failed), (3, 1));
    assert_eq!(
        agent_error(&answer.results[1]),
        (Code::FailedPrecondition, "OWN_ACCOUNT".into())
    );
    for index in [0, 2, 3] {
        let agent = agent_of(&answer.results[index]);
        assert_eq!(agent.status, pb::AgentStatus::Deactivated as i32);
        assert_eq!(agent.deactivation_reason, "team restructured");
    }
    assert_eq!(app.usage().await.seats_used, 1);
    let events = app.events().await;
    let deactivated: Vec<_> = events
        .iter()
        .filter(|e| e.action == "agent.deactivated")
        .collect();
    assert_eq!(deactivated.len(), 3);
    let (_, reason) = change_of(deactivated[0], "deactivation_reason");
    assert_eq!(reason, "team restructured");

    // Ada's sign-in is over, her tokens revoked; Cat's invitation no longer opens.
    assert_refused(
        app.refresh(&session.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    assert_refused(
        app.login("ada@example.com", PASSWORD).await,
        Code::PermissionDenied,
        "AGENT_NOT_ACTIVE",
    );
    let published = published(&app).await;
    assert!(
        published
            .get(&ada.agent_id)
            .is_some_and(|minimum| *minimum > i64::try_from(ada_before).unwrap())
    );
    assert_refused(
        app.accept(&cat.secret).await,
        Code::FailedPrecondition,
        "INVITATION_REVOKED",
    );

    // The seats are free again.
    let answer = invite(
        &app,
        "email
d@example.com
e@example.com
f@example.com
",
    )
    .await;
    assert_eq!((answer.succeeded, answer.failed), (3, 0));
}

async fn bulk_calls_need_staff_manage(app: TestApp) {
    let ada = app.active("ada@example.com", "agent").await;
    for (token, reason) in [
        (app.token("agent", &[]), "PERMISSION_MISSING"),
        (app.token("viewer", &["staff.manage"]), "PERMISSION_MISSING"),
        (
            app.tokens.agent(&["other"], "admin", &[]),
            "WORKSPACE_NOT_GRANTED",
        ),
    ] {
        assert_refused(
            invite_file(
                &app,
                &token,
                header(false, false, ""),
                "email
x@example.com
",
                64,
            )
            .await,
            Code::PermissionDenied,
            reason,
        );
        assert_refused(
            update(
                &app,
                &token,
                &[&ada.agent_id],
                Action::SetRole("viewer".into()),
                false,
                false,
            )
            .await,
            Code::PermissionDenied,
            reason,
        );
        assert_refused(
            deactivate(&app, &token, &[&ada.agent_id], false, false).await,
            Code::PermissionDenied,
            reason,
        );
    }
    assert_eq!(app.get(&ada.agent_id).await, ada);
    assert!(pending_invitations(&app).await.is_empty());
}

/// Whether one of the status's field violations says `text`.
fn violation_says(status: &Status, text: &str) -> bool {
    status.get_error_details().bad_request().is_some_and(|bad| {
        bad.field_violations
            .iter()
            .any(|v| v.description.contains(text))
    })
}
