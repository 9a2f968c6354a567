use roster_proto::staff::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, WS, assert_refused, violated_fields};
use crate::on_both_databases;

const DAY: i64 = 24 * 3600;

on_both_databases!(
    invite_then_accept_without_a_token_activates_the_agent,
    inviting_an_invited_email_resends_and_an_active_one_is_refused,
    each_dead_secret_has_its_own_reason,
    an_invitation_lasts_seven_days_to_the_second,
    passwords_are_checked_before_the_secret,
    revoking_frees_the_seat_and_reinviting_starts_over,
    lists_show_pending_and_expired_invitations_only,
    a_retried_request_id_replays_without_a_new_secret,
);

async fn invite_then_accept_without_a_token_activates_the_agent(app: TestApp) {
    let invited = app.invite("kirk@example.com", "agent").await;
    let agent = invited.agent.clone().unwrap();
    assert_eq!(agent.status, pb::AgentStatus::Invited as i32);
    assert_eq!(invited.secret.len(), 43);
    assert!(!invited.replayed);

    // AcceptInvitation carries no authorization metadata at all.
    let accepted = app
        .client()
        .accept_invitation(pb::AcceptInvitationRequest {
            workspace_id: WS.into(),
            secret: invited.secret.clone(),
            name: "James T. Kirk".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.agent_id, agent.agent_id);
    assert_eq!(accepted.status, pb::AgentStatus::Active as i32);
    assert_eq!(accepted.name, "James T. Kirk");
    assert!(accepted.activated_at.is_some());

    // Every other method still needs a token.
    let status = app
        .client()
        .get_agent(pb::GetAgentRequest {
            workspace_id: WS.into(),
            agent_id: agent.agent_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let actions = app.actions().await;
    assert_eq!(actions, ["agent.invited", "agent.invitation_accepted"]);
    // The password is named, never stored in the event; the secret appears nowhere.
    let events = app.events().await;
    let text = serde_json::to_string(&events[1].changes).unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains(&invited.secret),
        "{text}"
    );
}

async fn inviting_an_invited_email_resends_and_an_active_one_is_refused(app: TestApp) {
    let first = app.invite("spock@example.com", "agent").await;
    let second = app.invite("Spock@Example.com", "viewer").await;
    let (a, b) = (first.agent.unwrap(), second.agent.unwrap());
    assert_eq!(a.agent_id, b.agent_id, "one agent, not two");
    assert_eq!(b.role, "viewer");
    assert_ne!(first.secret, second.secret);
    assert_eq!(app.usage().await.seats_used, 1);
    assert_refused(
        app.accept(&first.secret).await,
        Code::FailedPrecondition,
        "INVITATION_SUPERSEDED",
    );
    app.accept(&second.secret).await.unwrap();

    let status = assert_refused(
        app.invite_in(WS, "spock@example.com", "agent").await,
        Code::AlreadyExists,
        "AGENT_ALREADY_ACTIVE",
    );
    use tonic_types::StatusExt as _;
    let resource = status.get_error_details().resource_info().cloned().unwrap();
    assert_eq!(resource.resource_name, a.agent_id);
}

async fn each_dead_secret_has_its_own_reason(app: TestApp) {
    assert_refused(
        app.accept("no-such-secret").await,
        Code::FailedPrecondition,
        "INVITATION_INVALID",
    );

    let used = app.invite("used@example.com", "agent").await;
    app.accept(&used.secret).await.unwrap();
    assert_refused(
        app.accept(&used.secret).await,
        Code::FailedPrecondition,
        "INVITATION_USED",
    );

    let revoked = app.invite("revoked@example.com", "agent").await;
    app.client()
        .revoke_invitation(app.admin(pb::RevokeInvitationRequest {
            workspace_id: WS.into(),
            agent_id: revoked.agent.unwrap().agent_id,
        }))
        .await
        .unwrap();
    assert_refused(
        app.accept(&revoked.secret).await,
        Code::FailedPrecondition,
        "INVITATION_REVOKED",
    );

    let resent = app.invite("resent@example.com", "agent").await;
    let fresh = app
        .client()
        .resend_invitation(app.admin(pb::ResendInvitationRequest {
            workspace_id: WS.into(),
            agent_id: resent.agent.unwrap().agent_id,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_refused(
        app.accept(&resent.secret).await,
        Code::FailedPrecondition,
        "INVITATION_SUPERSEDED",
    );
    app.accept(&fresh.secret).await.unwrap();

    // A secret of another workspace is no secret here.
    let elsewhere = app
        .invite_in("other", "x@example.com", "agent")
        .await
        .unwrap();
    assert_refused(
        app.accept(&elsewhere.secret).await,
        Code::FailedPrecondition,
        "INVITATION_INVALID",
    );
}

async fn an_invitation_lasts_seven_days_to_the_second(app: TestApp) {
    let in_time = app.invite("early@example.com", "agent").await;
    app.clock.advance_secs(7 * DAY - 1);
    app.accept(&in_time.secret).await.unwrap();

    let late = app.invite("late@example.com", "agent").await;
    app.clock.advance_secs(7 * DAY + 1);
    assert_refused(
        app.accept(&late.secret).await,
        Code::FailedPrecondition,
        "INVITATION_EXPIRED",
    );
    // A resend gives a fresh week.
    let fresh = app
        .client()
        .resend_invitation(app.admin(pb::ResendInvitationRequest {
            workspace_id: WS.into(),
            agent_id: late.agent.unwrap().agent_id,
        }))
        .await
        .unwrap()
        .into_inner();
    app.accept(&fresh.secret).await.unwrap();
}

async fn passwords_are_checked_before_the_secret(app: TestApp) {
    let invited = app.invite("pw@example.com", "agent").await;
    for password in ["short", &"x".repeat(129), "ten chars\u{7}!!"] {
        let status = app
            .client()
            .accept_invitation(pb::AcceptInvitationRequest {
                workspace_id: WS.into(),
                secret: invited.secret.clone(),
                name: String::new(),
                password: password.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["password"]);
        assert!(
            !status.message().contains(password),
            "the password is never echoed"
        );
    }
    let status = app
        .client()
        .accept_invitation(pb::AcceptInvitationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["workspace_id", "secret", "password"]
    );
    // Still acceptable afterwards.
    app.accept(&invited.secret).await.unwrap();
}

async fn revoking_frees_the_seat_and_reinviting_starts_over(app: TestApp) {
    let invited = app.invite("uhura@example.com", "agent").await;
    let agent_id = invited.agent.unwrap().agent_id;
    let revoked = app
        .client()
        .revoke_invitation(app.admin(pb::RevokeInvitationRequest {
            workspace_id: WS.into(),
            agent_id: agent_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.status, pb::AgentStatus::Deactivated as i32);
    assert_eq!(app.usage().await.seats_used, 0);
    assert_refused(
        app.client()
            .revoke_invitation(app.admin(pb::RevokeInvitationRequest {
                workspace_id: WS.into(),
                agent_id: agent_id.clone(),
            }))
            .await,
        Code::FailedPrecondition,
        "AGENT_STATUS",
    );
    let again = app.invite("uhura@example.com", "agent").await;
    assert_eq!(again.agent.unwrap().agent_id, agent_id);
    app.accept(&again.secret).await.unwrap();
}

async fn lists_show_pending_and_expired_invitations_only(app: TestApp) {
    let old = app.invite("old@example.com", "agent").await;
    app.clock.advance_secs(8 * DAY);
    let _pending = app.invite("new@example.com", "viewer").await;
    let accepted = app.invite("done@example.com", "agent").await;
    app.accept(&accepted.secret).await.unwrap();

    let list = |state: pb::InvitationState, page_size: i32, page_token: String| {
        let app = app.clone();
        async move {
            app.client()
                .list_invitations(app.admin(pb::ListInvitationsRequest {
                    workspace_id: WS.into(),
                    page_size,
                    page_token,
                    state: state as i32,
                }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let all = list(pb::InvitationState::Unspecified, 0, String::new()).await;
    let emails: Vec<_> = all.invitations.iter().map(|i| i.email.as_str()).collect();
    assert_eq!(emails, ["old@example.com", "new@example.com"]);
    assert_eq!(
        all.invitations[0].state,
        pb::InvitationState::Expired as i32
    );
    assert_eq!(all.invitations[0].agent_id, old.agent.unwrap().agent_id);
    assert_eq!(
        all.invitations[1].state,
        pb::InvitationState::Pending as i32
    );
    assert_eq!(all.invitations[1].role, "viewer");

    let first = list(pb::InvitationState::Unspecified, 1, String::new()).await;
    assert_eq!(first.invitations.len(), 1);
    let second = list(pb::InvitationState::Unspecified, 1, first.next_page_token).await;
    assert_eq!(second.invitations[0].email, "new@example.com");
    assert!(second.next_page_token.is_empty());

    let expired = list(pb::InvitationState::Expired, 0, String::new()).await;
    assert_eq!(expired.invitations.len(), 1);
}

async fn a_retried_request_id_replays_without_a_new_secret(app: TestApp) {
    let request = pb::InviteAgentRequest {
        workspace_id: WS.into(),
        email: "sulu@example.com".into(),
        name: "Sulu".into(),
        role: "agent".into(),
        team_ids: vec![],
        request_id: "0193a0a0-0000-7000-8000-000000000001".into(),
    };
    let first = app
        .client()
        .invite_agent(app.admin(request.clone()))
        .await
        .unwrap()
        .into_inner();
    let retry = app
        .client()
        .invite_agent(app.admin(request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed && retry.secret.is_empty());
    assert_eq!(
        retry.invitation.unwrap().invitation_id,
        first.invitation.unwrap().invitation_id
    );
    // The first secret still works: the retry sent nothing new.
    app.accept(&first.secret).await.unwrap();

    let mut other = request;
    other.email = "chekov@example.com".into();
    assert_refused(
        app.client().invite_agent(app.admin(other)).await,
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
    );
    assert_eq!(
        app.actions().await,
        ["agent.invited", "agent.invitation_accepted"]
    );
}
