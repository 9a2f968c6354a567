use std::sync::Arc;

use roster_proto::staff::v1 as pb;
use tokio::sync::Barrier;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    active_and_invited_agents_use_seats_up_to_the_limit,
    two_invitations_racing_for_the_last_seat_leave_one_winner,
);

async fn active_and_invited_agents_use_seats_up_to_the_limit(app: TestApp) {
    app.set_seats(2).await;
    app.active("kirk@example.com", "admin").await;
    let spock = app.active("spock@example.com", "agent").await;
    let usage = app.usage().await;
    assert_eq!(
        (usage.seat_limit, usage.seats_used, usage.active_agents),
        (2, 2, 2)
    );

    let status = assert_refused(
        app.invite_in(WS, "sulu@example.com", "agent").await,
        Code::FailedPrecondition,
        "SEAT_LIMIT_REACHED",
    );
    assert!(
        status.message().contains("all 2 seats"),
        "{}",
        status.message()
    );

    // Deactivating frees a seat, which an invitation takes; reactivating then finds none.
    let deactivated = app
        .client()
        .deactivate_agent(app.admin(pb::DeactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: spock.agent_id.clone(),
            reason: "left the company".into(),
            etag: spock.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deactivated.status, pb::AgentStatus::Deactivated as i32);
    assert_eq!(deactivated.deactivation_reason, "left the company");
    app.invite("sulu@example.com", "agent").await;
    let reactivate = || {
        let (app, agent_id) = (app.clone(), spock.agent_id.clone());
        async move {
            app.client()
                .reactivate_agent(app.admin(pb::ReactivateAgentRequest {
                    workspace_id: WS.into(),
                    agent_id,
                    etag: String::new(),
                }))
                .await
        }
    };
    assert_refused(
        reactivate().await,
        Code::FailedPrecondition,
        "SEAT_LIMIT_REACHED",
    );
    app.set_seats(3).await;
    let back = reactivate().await.unwrap().into_inner();
    assert_eq!(back.status, pb::AgentStatus::Active as i32);
    assert_eq!(app.usage().await.seats_used, 3);

    // A limit below the seats in use takes nobody's seat; 0 removes the limit.
    app.set_seats(1).await;
    assert_eq!(app.usage().await.seats_used, 3);
    app.set_seats(0).await;
    app.invite("chekov@example.com", "agent").await;
    let status = app
        .client()
        .set_seat_limit(app.admin(pb::SetSeatLimitRequest {
            workspace_id: WS.into(),
            seat_limit: -1,
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["seat_limit"]);
    let actions = app.actions().await;
    assert!(
        actions.contains(&"agent.deactivated".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"agent.reactivated".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"workspace.seat_limit_changed".to_owned()),
        "{actions:?}"
    );
}

async fn two_invitations_racing_for_the_last_seat_leave_one_winner(app: TestApp) {
    app.set_seats(1).await;
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(2));
        let calls = (0..2).map(|n| {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                app.invite_in(WS, &format!("r{round}-{n}@example.com"), "agent")
                    .await
            })
        });
        let results: Vec<_> = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(loser.code(), Code::FailedPrecondition, "{loser:?}");
            assert_eq!(crate::helpers::reason(loser), "SEAT_LIMIT_REACHED");
        }
        assert_eq!(app.usage().await.seats_used, 1);
        // Free the seat for the next round.
        app.client()
            .revoke_invitation(app.admin(pb::RevokeInvitationRequest {
                workspace_id: WS.into(),
                agent_id: winners[0].agent.clone().unwrap().agent_id,
            }))
            .await
            .unwrap();
    }
}
