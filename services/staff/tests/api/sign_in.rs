//! Login, refresh tokens, logout, the throttle on failed attempts, and the login history.

use std::time::Duration;

use roster_proto::staff::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{PASSWORD, TestApp, WS, assert_refused, reason, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    login_returns_tokens_for_the_agents_role_in_its_workspace,
    an_unknown_email_and_a_wrong_password_are_answered_alike,
    parallel_wrong_passwords_get_no_more_tries_than_the_limit,
    a_success_clears_the_accounts_failures,
    refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in,
    logout_ends_the_sign_in_and_may_be_repeated,
    deactivation_ends_sign_ins_and_raises_the_token_generation,
    a_right_password_of_an_inactive_agent_is_denied,
    refresh_tokens_expire,
    login_history_records_every_attempt_for_managers_and_the_agent,
    malformed_sign_in_requests_are_invalid_or_unauthenticated,
);

async fn login_returns_tokens_for_the_agents_role_in_its_workspace(app: TestApp) {
    let agent = app.active("ana@example.com", "agent").await;

    let session = app.login("Ana@Example.com", PASSWORD).await.unwrap();

    assert_eq!(session.token_type, "Bearer");
    let principal = app.verify(&session.access_token);
    assert_eq!(principal.subject, agent.agent_id);
    let grant = principal.grant(WS).expect("the agent's workspace");
    assert_eq!(grant.role, "agent");
    assert!(grant.permissions.contains("end_users.write"));
    assert!(principal.grant("other").is_none());
    let expires = session.access_token_expires_at.unwrap().seconds;
    assert_eq!(expires, principal.expires_at);
    assert!(session.refresh_token_expires_at.unwrap().seconds > expires);
    let signed_in = session.agent.unwrap();
    assert_eq!(signed_in.sign_in_count, 1);
    assert!(signed_in.last_sign_in_at.is_some());

    // The token works at the staff service itself: the agent reads its own record.
    let own = app
        .client()
        .get_agent(app.with(
            &session.access_token,
            pb::GetAgentRequest {
                workspace_id: WS.into(),
                agent_id: agent.agent_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.sign_in_count, 1);
    assert!(app.actions().await.contains(&"agent.logged_in".to_owned()));
}

async fn an_unknown_email_and_a_wrong_password_are_answered_alike(app: TestApp) {
    app.active("ben@example.com", "agent").await;

    let unknown = app.login("nobody@example.com", PASSWORD).await.unwrap_err();
    let wrong = app
        .login("ben@example.com", "not the password")
        .await
        .unwrap_err();

    for status in [&unknown, &wrong] {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(reason(status), "WRONG_CREDENTIALS");
    }
    assert_eq!(unknown.message(), wrong.message());
    let failures = app
        .events()
        .await
        .into_iter()
        .filter(|event| event.action == "agent.login_failed")
        .inspect(|event| assert_eq!(event.outcome, "failure"))
        .count();
    assert_eq!(failures, 2, "both attempts are audited, as failures");
}

async fn parallel_wrong_passwords_get_no_more_tries_than_the_limit(app: TestApp) {
    let agent = app.active("cleo@example.com", "agent").await;

    let attempts = (0..50).map(|_| {
        let app = app.clone();
        async move { app.login("cleo@example.com", "a wrong guess").await }
    });
    let results = futures_util::future::join_all(attempts).await;

    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Unauthenticated))
        .count();
    let throttled: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| s.code() == Code::ResourceExhausted)
        .collect();
    assert_eq!(
        checked, 5,
        "exactly the limit of attempts had their password checked"
    );
    assert_eq!(throttled.len(), 45);
    for status in &throttled {
        assert_eq!(reason(status), "SIGN_IN_THROTTLED");
        let retry = status.get_error_details().retry_info().cloned();
        let delay = retry.and_then(|r| r.retry_delay).unwrap();
        assert!(
            delay > Duration::from_secs(14 * 60) && delay <= Duration::from_secs(15 * 60),
            "{delay:?}"
        );
    }
    // Even the right password waits for the window to end...
    assert_refused(
        app.login("cleo@example.com", PASSWORD).await,
        Code::ResourceExhausted,
        "SIGN_IN_THROTTLED",
    );
    // ...and works once it has.
    app.clock.advance_secs(15 * 60 + 1);
    app.login("cleo@example.com", PASSWORD).await.unwrap();

    let history = app.history(&agent.agent_id, 100).await;
    let count = |outcome: pb::LoginOutcome| {
        history
            .iter()
            .filter(|a| a.outcome == outcome as i32)
            .count()
    };
    assert_eq!(count(pb::LoginOutcome::WrongCredentials), 5);
    assert_eq!(count(pb::LoginOutcome::Throttled), 46);
    assert_eq!(count(pb::LoginOutcome::Succeeded), 1);
}

async fn a_success_clears_the_accounts_failures(app: TestApp) {
    app.active("dina@example.com", "agent").await;
    for _ in 0..4 {
        app.login("dina@example.com", "a wrong guess")
            .await
            .unwrap_err();
    }
    app.login("dina@example.com", PASSWORD).await.unwrap();
    // Four more failures are allowed again before the fifth locks the account.
    for _ in 0..5 {
        assert_refused(
            app.login("dina@example.com", "a wrong guess").await,
            Code::Unauthenticated,
            "WRONG_CREDENTIALS",
        );
    }
    assert_refused(
        app.login("dina@example.com", "a wrong guess").await,
        Code::ResourceExhausted,
        "SIGN_IN_THROTTLED",
    );
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in(app: TestApp) {
    let agent = app.active("eli@example.com", "viewer").await;
    let first = app.login("eli@example.com", PASSWORD).await.unwrap();
    let other_sign_in = app.login("eli@example.com", PASSWORD).await.unwrap();

    let second = app.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    let principal = app.verify(&second.access_token);
    assert_eq!(principal.subject, agent.agent_id);
    assert_eq!(principal.grant(WS).unwrap().role, "viewer");
    let third = app.refresh(&second.refresh_token).await.unwrap();

    // The spent first token comes back: a copy is in someone else's hands.
    let reuse = assert_refused(
        app.refresh(&first.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    assert!(reuse.message().contains("already used"), "{reuse:?}");
    // Every token of that sign-in is dead, the newest included...
    assert_refused(
        app.refresh(&third.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    // ...while the agent's other sign-in is untouched.
    app.refresh(&other_sign_in.refresh_token).await.unwrap();
    assert!(
        app.actions()
            .await
            .contains(&"agent.refresh_token_reused".to_owned())
    );
}

async fn logout_ends_the_sign_in_and_may_be_repeated(app: TestApp) {
    app.active("fay@example.com", "agent").await;
    let session = app.login("fay@example.com", PASSWORD).await.unwrap();
    let rotated = app.refresh(&session.refresh_token).await.unwrap();

    let logout = |token: String| {
        let app = app.clone();
        async move {
            app.client()
                .logout(pb::LogoutRequest {
                    refresh_token: token,
                })
                .await
        }
    };
    logout(rotated.refresh_token.clone()).await.unwrap();
    logout(rotated.refresh_token.clone()).await.unwrap();

    assert_refused(
        app.refresh(&rotated.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    let forged = format!(
        "{}x",
        &rotated.refresh_token[..rotated.refresh_token.len() - 1]
    );
    assert_eq!(
        logout(forged).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let logouts = app
        .actions()
        .await
        .into_iter()
        .filter(|a| a == "agent.logged_out")
        .count();
    assert_eq!(
        logouts, 1,
        "only the logout that ended something is audited"
    );
}

async fn deactivation_ends_sign_ins_and_raises_the_token_generation(app: TestApp) {
    app.active("root@example.com", "admin").await;
    let agent = app.active("gus@example.com", "agent").await;
    let session = app.login("gus@example.com", PASSWORD).await.unwrap();
    let before = app.verify(&session.access_token);

    app.client()
        .deactivate_agent(app.admin(pb::DeactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: agent.agent_id.clone(),
            reason: "left".into(),
            ..Default::default()
        }))
        .await
        .unwrap();

    assert_refused(
        app.refresh(&session.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    app.client()
        .reactivate_agent(app.admin(pb::ReactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: agent.agent_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_refused(
        app.refresh(&session.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    let again = app.login("gus@example.com", PASSWORD).await.unwrap();
    let after = app.verify(&again.access_token);
    assert!(
        after.generation > before.generation,
        "tokens issued before the deactivation are of an older generation"
    );
}

async fn a_right_password_of_an_inactive_agent_is_denied(app: TestApp) {
    app.active("root@example.com", "admin").await;
    let agent = app.active("hal@example.com", "agent").await;
    app.client()
        .deactivate_agent(app.admin(pb::DeactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: agent.agent_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();

    assert_refused(
        app.login("hal@example.com", PASSWORD).await,
        Code::PermissionDenied,
        "AGENT_NOT_ACTIVE",
    );
    // A wrong password still says nothing about the account.
    assert_refused(
        app.login("hal@example.com", "a wrong guess").await,
        Code::Unauthenticated,
        "WRONG_CREDENTIALS",
    );
    // An invited agent has no password yet: same answer as an unknown e-mail.
    app.invite("ivy@example.com", "agent").await;
    assert_refused(
        app.login("ivy@example.com", PASSWORD).await,
        Code::Unauthenticated,
        "WRONG_CREDENTIALS",
    );
}

async fn refresh_tokens_expire(app: TestApp) {
    app.active("jon@example.com", "agent").await;
    let session = app.login("jon@example.com", PASSWORD).await.unwrap();
    let lifetime = session.refresh_token_expires_at.unwrap().seconds
        - session.access_token_expires_at.unwrap().seconds
        + 15 * 60;
    assert_eq!(lifetime, 30 * 24 * 3600, "30 days by default");

    app.clock.advance_secs(lifetime - 5);
    let rotated = app.refresh(&session.refresh_token).await.unwrap();
    app.clock.advance_secs(lifetime + 1);
    let expired = assert_refused(
        app.refresh(&rotated.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    assert!(expired.message().contains("expired"), "{expired:?}");
}

async fn login_history_records_every_attempt_for_managers_and_the_agent(app: TestApp) {
    let agent = app.active("kim@example.com", "agent").await;
    let other = app.active("lou@example.com", "agent").await;
    app.login("kim@example.com", "a wrong guess")
        .await
        .unwrap_err();
    let session = app.login("kim@example.com", PASSWORD).await.unwrap();

    // The agent reads its own history with its own token, newest first, page by page.
    let mut client = app.client();
    let first = client
        .list_login_history(app.with(
            &session.access_token,
            pb::ListLoginHistoryRequest {
                workspace_id: WS.into(),
                agent_id: agent.agent_id.clone(),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.attempts.len(), 1);
    assert_eq!(
        first.attempts[0].outcome,
        pb::LoginOutcome::Succeeded as i32
    );
    assert_eq!(first.attempts[0].method, "password");
    assert!(
        !first.attempts[0].ip.is_empty(),
        "the peer address is recorded"
    );
    let second = client
        .list_login_history(app.with(
            &session.access_token,
            pb::ListLoginHistoryRequest {
                workspace_id: WS.into(),
                agent_id: agent.agent_id.clone(),
                page_size: 1,
                page_token: first.next_page_token.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.attempts[0].outcome,
        pb::LoginOutcome::WrongCredentials as i32
    );
    assert!(second.next_page_token.is_empty());

    // Not another agent's history, unless one manages staff.
    assert_refused(
        client
            .list_login_history(app.with(
                &session.access_token,
                pb::ListLoginHistoryRequest {
                    workspace_id: WS.into(),
                    agent_id: other.agent_id.clone(),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    assert_eq!(app.history(&agent.agent_id, 10).await.len(), 2);
}

async fn malformed_sign_in_requests_are_invalid_or_unauthenticated(app: TestApp) {
    let status = app.login("not an e-mail", "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), vec!["email", "password"]);
    let status = app
        .login("a@example.com", &"x".repeat(129))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["password"]);

    assert_eq!(
        app.refresh("").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    for garbage in ["garbage", "rt1.a.b.c", &"x".repeat(600)] {
        let status = app.refresh(garbage).await.unwrap_err();
        assert!(
            matches!(status.code(), Code::Unauthenticated | Code::InvalidArgument),
            "{garbage}: {status:?}"
        );
    }
}
