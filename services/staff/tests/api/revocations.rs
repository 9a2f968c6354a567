//! The revocation feed: every change that ends an agent's tokens is published, and the
//! feed's first message is the snapshot a follower starts from.

use std::collections::HashMap;

use roster_proto::staff::v1 as pb;

use crate::helpers::{PASSWORD, TestApp, WS};
use crate::on_both_databases;

on_both_databases!(
    every_change_to_what_an_agent_holds_is_published,
    the_feed_needs_no_token_and_starts_with_a_snapshot,
);

/// The feed's snapshot: each subject's highest published minimum generation.
pub async fn published(app: &TestApp) -> HashMap<String, i64> {
    let mut stream = app
        .client()
        .watch_revocations(pb::WatchRevocationsRequest {})
        .await
        .unwrap()
        .into_inner();
    let snapshot = stream.message().await.unwrap().unwrap();
    assert!(snapshot.snapshot);
    let mut minimums = HashMap::new();
    for revocation in snapshot.revocations {
        let entry = minimums.entry(revocation.subject).or_insert(0);
        *entry = revocation.min_generation.max(*entry);
    }
    minimums
}

/// The generation of a fresh sign-in's token (ada's).
async fn signed_in_generation(app: &TestApp) -> i64 {
    let session = app.login("ada@example.com", PASSWORD).await.unwrap();
    i64::try_from(app.verify(&session.access_token).generation).unwrap()
}

/// Asserts the agent's tokens are now of a generation above `last` and that the feed
/// publishes exactly it; answers it.
async fn assert_published_above(app: &TestApp, agent_id: &str, last: i64, what: &str) -> i64 {
    let now = signed_in_generation(app).await;
    assert!(now > last, "{what}");
    assert_eq!(published(app).await.get(agent_id), Some(&now), "{what}");
    now
}

async fn every_change_to_what_an_agent_holds_is_published(app: TestApp) {
    app.active("root@example.com", "admin").await;
    let agent = app.active("ada@example.com", "agent").await;
    let mut last = signed_in_generation(&app).await;

    let team = app
        .client()
        .create_team(app.admin(pb::CreateTeamRequest {
            workspace_id: WS.into(),
            team: Some(pb::Team {
                name: "Tier 2".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    let role = app
        .client()
        .create_role(app.admin(pb::CreateRoleRequest {
            workspace_id: WS.into(),
            role: Some(pb::Role {
                name: "Supervisor".into(),
                permissions: vec!["end_users.write".into()],
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner();

    // Joining a team, a new role, and a change of that role's permissions each end the
    // agent's tokens, and the feed says so with the new generation.
    app.client()
        .add_team_members(app.admin(pb::AddTeamMembersRequest {
            workspace_id: WS.into(),
            team_id: team.team_id.clone(),
            agent_ids: vec![agent.agent_id.clone()],
        }))
        .await
        .unwrap();
    last = assert_published_above(
        &app,
        &agent.agent_id,
        last,
        "joining a team raises the generation",
    )
    .await;

    app.client()
        .update_agent(app.admin(pb::UpdateAgentRequest {
            workspace_id: WS.into(),
            agent: Some(pb::Agent {
                agent_id: agent.agent_id.clone(),
                role: "Supervisor".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["role".into()],
            }),
        }))
        .await
        .unwrap();
    last = assert_published_above(
        &app,
        &agent.agent_id,
        last,
        "a new role raises the generation",
    )
    .await;

    app.client()
        .update_role(app.admin(pb::UpdateRoleRequest {
            workspace_id: WS.into(),
            role: Some(pb::Role {
                role_id: role.role_id.clone(),
                permissions: vec!["end_users.write".into(), "customers.write".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["permissions".into()],
            }),
        }))
        .await
        .unwrap();
    assert_published_above(
        &app,
        &agent.agent_id,
        last,
        "a change of the role's permissions raises its holders' generation",
    )
    .await;
}

async fn the_feed_needs_no_token_and_starts_with_a_snapshot(app: TestApp) {
    assert!(published(&app).await.is_empty());
    let (account, _) = app.service_account(&[]).await;
    app.client()
        .revoke_service_account(app.admin(pb::RevokeServiceAccountRequest {
            workspace_id: WS.into(),
            service_account_id: account.service_account_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        published(&app).await.get(&account.service_account_id),
        Some(&1)
    );
}
