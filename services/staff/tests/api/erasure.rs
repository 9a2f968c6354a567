//! EraseAgent: an agent who left is erased for good, with their id left for history and
//! nothing personal anywhere in the staff service's database.

use roster_proto::staff::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, WS, assert_refused};
use crate::on_both_databases;

on_both_databases!(
    an_erased_agent_is_gone_from_every_table_and_their_id_stays,
    only_a_deactivated_agent_can_be_erased_and_nothing_changes_an_erased_one,
    keep_name_keeps_the_display_name_for_history,
);

async fn deactivate(app: &TestApp, agent_id: &str) {
    app.client()
        .deactivate_agent(app.admin(pb::DeactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: agent_id.into(),
            reason: "left for Qo'noS".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
}

async fn erase(app: &TestApp, agent_id: &str, keep_name: bool) -> Result<pb::Agent, tonic::Status> {
    app.client()
        .erase_agent(app.admin(pb::EraseAgentRequest {
            workspace_id: WS.into(),
            agent_id: agent_id.into(),
            keep_name,
            ..Default::default()
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn an_erased_agent_is_gone_from_every_table_and_their_id_stays(app: TestApp) {
    let worf = app.active("Worf.Rozhenko@example.com", "agent").await;
    // A session, a failed attempt and a team membership, each holding something of them.
    app.login("worf.rozhenko@example.com", PASSWORD)
        .await
        .unwrap();
    app.login("worf.rozhenko@example.com", "wrong password")
        .await
        .unwrap_err();
    let team = app.create_team("Security", &[]).await;
    app.client()
        .add_team_members(app.admin(pb::AddTeamMembersRequest {
            workspace_id: WS.into(),
            team_id: team.team_id.clone(),
            agent_ids: vec![worf.agent_id.clone()],
        }))
        .await
        .unwrap();
    app.client()
        .update_my_profile(app.with(
            &app.token_as(&worf.agent_id, &[WS], "agent", &[]),
            pb::UpdateMyProfileRequest {
                workspace_id: WS.into(),
                profile: Some(pb::Profile {
                    signature: "Today is a good day to die".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    deactivate(&app, &worf.agent_id).await;

    let erased = erase(&app, &worf.agent_id, false).await.unwrap();
    assert_eq!(erased.agent_id, worf.agent_id);
    assert_eq!(erased.status, pb::AgentStatus::Erased as i32);
    assert_eq!(erased.email, "");
    assert_eq!(erased.name, "Former agent");
    assert!(erased.team_ids.is_empty());
    // Erasing again changes nothing.
    let again = erase(&app, &worf.agent_id, false).await.unwrap();
    assert_eq!(again.etag, erased.etag);
    assert_eq!(app.get(&worf.agent_id).await, erased);

    // The sign-in history stays as a record of when, not of who from where.
    let history = app.history(&worf.agent_id, 10).await;
    assert_eq!(history.len(), 2, "{history:?}");
    for attempt in &history {
        assert_eq!(attempt.ip, "", "{attempt:?}");
        assert_eq!(attempt.user_agent, "", "{attempt:?}");
    }
    // Nothing of the person is left in any table, pending audit events included.
    let dump = roster_testkit::dump::database_dump(&app.database_url).await;
    assert!(dump.iter().any(|(table, _, _)| table == "outbox_events"));
    for (table, column, text) in &dump {
        for personal in ["worf.rozhenko", "good day to die", "qo'nos"] {
            assert!(
                !text.contains(personal),
                "'{personal}' is still in {table}.{column}: {text}"
            );
        }
    }
    // The events: the erasure (field names only) and the request to the audit service.
    let events = app.events().await;
    let erased_event = events.iter().find(|e| e.action == "agent.erased").unwrap();
    assert_eq!(erased_event.target_id, worf.agent_id);
    let fields: Vec<String> =
        serde_json::from_value::<Vec<serde_json::Value>>(erased_event.changes.clone())
            .unwrap()
            .into_iter()
            .map(|change| {
                assert!(
                    change["before"].is_null() && change["after"].is_null(),
                    "{change}"
                );
                change["field"].as_str().unwrap().to_owned()
            })
            .collect();
    for field in ["email", "name", "signature", "deactivation_reason"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    let requests: Vec<_> = events
        .iter()
        .filter(|e| e.action == roster_db::outbox::ERASURE_REQUESTED)
        .collect();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (
            requests[0].target_type.as_str(),
            requests[0].target_id.as_str()
        ),
        ("agent", worf.agent_id.as_str())
    );

    // The address is free: the same person invited again is a new agent.
    let back = app.invite("worf.rozhenko@example.com", "agent").await;
    assert_ne!(back.agent.unwrap().agent_id, worf.agent_id);
}

async fn only_a_deactivated_agent_can_be_erased_and_nothing_changes_an_erased_one(app: TestApp) {
    let data = app.active("data@example.com", "agent").await;
    let refused = assert_refused(
        erase(&app, &data.agent_id, false).await,
        Code::FailedPrecondition,
        "AGENT_STATUS",
    );
    assert!(refused.message().contains("DeactivateAgent"), "{refused:?}");
    let invited = app.invite("lore@example.com", "agent").await.agent.unwrap();
    assert_refused(
        erase(&app, &invited.agent_id, false).await,
        Code::FailedPrecondition,
        "AGENT_STATUS",
    );
    assert_refused(
        erase(&app, &uuid::Uuid::now_v7().to_string(), false).await,
        Code::NotFound,
        "AGENT_NOT_FOUND",
    );
    assert_refused(
        erase(&app, "not-an-id", false).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );

    deactivate(&app, &data.agent_id).await;
    erase(&app, &data.agent_id, false).await.unwrap();
    assert_refused(
        app.client()
            .reactivate_agent(app.admin(pb::ReactivateAgentRequest {
                workspace_id: WS.into(),
                agent_id: data.agent_id.clone(),
                ..Default::default()
            }))
            .await,
        Code::FailedPrecondition,
        "AGENT_STATUS",
    );
    assert_refused(
        app.client()
            .update_agent(app.admin(pb::UpdateAgentRequest {
                workspace_id: WS.into(),
                agent: Some(pb::Agent {
                    agent_id: data.agent_id.clone(),
                    role: "admin".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["role".into()],
                }),
            }))
            .await,
        Code::FailedPrecondition,
        "AGENT_STATUS",
    );
    // An erased agent holds no seat.
    assert_eq!(app.usage().await.seats_used, 1);
}

async fn keep_name_keeps_the_display_name_for_history(app: TestApp) {
    let invited = app
        .invite_in(WS, "guinan@example.com", "agent")
        .await
        .unwrap();
    let agent = app.accept(&invited.secret).await.unwrap();
    deactivate(&app, &agent.agent_id).await;
    let erased = erase(&app, &agent.agent_id, true).await.unwrap();
    assert_eq!(erased.name, agent.name);
    assert_eq!(erased.email, "");
    assert_eq!(erased.status, pb::AgentStatus::Erased as i32);
}
