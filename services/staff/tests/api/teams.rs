//! Teams: reading, changing and deleting them, their members from both sides, and their
//! permissions as grants.

use std::collections::HashSet;

use prost_types::FieldMask;
use roster_proto::staff::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, change_of, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    teams_are_read_changed_and_deleted_with_etags,
    members_are_added_removed_and_paged_from_both_sides,
    a_teams_permissions_are_granted_with_its_membership,
);

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn update_team(
    app: &TestApp,
    token: &str,
    team: pb::Team,
    paths: &[&str],
) -> Result<pb::Team, tonic::Status> {
    app.client()
        .update_team(app.with(
            token,
            pb::UpdateTeamRequest {
                workspace_id: WS.into(),
                team: Some(team),
                update_mask: mask(paths),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_team(app: &TestApp, team_id: &str) -> Result<pb::Team, tonic::Status> {
    app.client()
        .get_team(app.admin(pb::GetTeamRequest {
            workspace_id: WS.into(),
            team_id: team_id.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn add(
    app: &TestApp,
    token: &str,
    team_id: &str,
    agent_ids: &[&str],
) -> Result<pb::TeamMembersChanged, tonic::Status> {
    app.client()
        .add_team_members(app.with(
            token,
            pb::AddTeamMembersRequest {
                workspace_id: WS.into(),
                team_id: team_id.into(),
                agent_ids: agent_ids.iter().map(|id| (*id).to_owned()).collect(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn remove(
    app: &TestApp,
    token: &str,
    team_id: &str,
    agent_ids: &[&str],
) -> Result<pb::TeamMembersChanged, tonic::Status> {
    app.client()
        .remove_team_members(app.with(
            token,
            pb::RemoveTeamMembersRequest {
                workspace_id: WS.into(),
                team_id: team_id.into(),
                agent_ids: agent_ids.iter().map(|id| (*id).to_owned()).collect(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn members_page(
    app: &TestApp,
    team_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListTeamMembersResponse, tonic::Status> {
    app.client()
        .list_team_members(app.admin(pb::ListTeamMembersRequest {
            workspace_id: WS.into(),
            team_id: team_id.into(),
            page_size,
            page_token: page_token.into(),
            order_by: "name desc".into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn teams_are_read_changed_and_deleted_with_etags(app: TestApp) {
    let vip = app.create_team("VIP Support", &["tickets.view_all"]).await;
    app.create_team("Billing", &[]).await;
    assert_eq!(vip.permissions, ["tickets.view_all"]);
    assert_eq!(get_team(&app, &vip.team_id).await.unwrap(), vip);

    let mut change = vip.clone();
    change.name = "VIP".into();
    change.description = "Our biggest customers".into();
    change.permissions = vec!["tickets.view_all".into(), "data.export".into()];
    let changed = update_team(
        &app,
        &app.admin_token(),
        change.clone(),
        &["name", "description", "permissions"],
    )
    .await
    .unwrap();
    assert_eq!(changed.name, "VIP");
    assert_eq!(changed.permissions, ["data.export", "tickets.view_all"]);
    assert_ne!(changed.etag, vip.etag);
    assert_refused(
        update_team(&app, &app.admin_token(), change, &["description"]).await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    let mut clash = changed.clone();
    clash.name = "BILLING".into();
    assert_refused(
        update_team(&app, &app.admin_token(), clash, &["name"]).await,
        Code::AlreadyExists,
        "TEAM_ALREADY_EXISTS",
    );
    let mut bad = changed.clone();
    bad.name = String::new();
    bad.permissions = vec!["tickets.fly".into()];
    let status = update_team(&app, &app.admin_token(), bad, &["name", "permissions"])
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["team.name", "team.permissions[0]"]
    );
    let updated = app.last_event("team.updated").await;
    assert_eq!(
        change_of(&updated, "name"),
        (json!("VIP Support"), json!("VIP"))
    );
    assert_eq!(
        change_of(&updated, "permissions"),
        (
            json!(["tickets.view_all"]),
            json!(["data.export", "tickets.view_all"])
        )
    );

    // Deleting a team takes its members out of it.
    let scotty = app.active("scotty@example.com", "agent").await;
    add(
        &app,
        &app.admin_token(),
        &changed.team_id,
        &[&scotty.agent_id],
    )
    .await
    .unwrap();
    assert_eq!(
        app.get(&scotty.agent_id).await.team_ids,
        std::slice::from_ref(&changed.team_id)
    );
    let delete = |etag: &str| {
        let request = app.admin(pb::DeleteTeamRequest {
            workspace_id: WS.into(),
            team_id: changed.team_id.clone(),
            etag: etag.into(),
        });
        let mut client = app.client();
        async move { client.delete_team(request).await }
    };
    assert_refused(delete(&vip.etag).await, Code::Aborted, "ETAG_MISMATCH");
    delete(&changed.etag).await.unwrap();
    assert_refused(
        get_team(&app, &changed.team_id).await,
        Code::NotFound,
        "TEAM_NOT_FOUND",
    );
    assert!(app.get(&scotty.agent_id).await.team_ids.is_empty());
    assert_refused(delete("").await, Code::NotFound, "TEAM_NOT_FOUND");
    let deleted = app.last_event("team.deleted").await;
    assert_eq!(deleted.target_id, changed.team_id);
    assert_eq!(change_of(&deleted, "name").0, "VIP");
    assert_eq!(change_of(&deleted, "members").0, json!([scotty.agent_id]));
}

async fn members_are_added_removed_and_paged_from_both_sides(app: TestApp) {
    let tier1 = app.create_team("Tier 1", &[]).await;
    let mut agents = Vec::new();
    for name in ["ann", "bob", "cat", "dan", "eve"] {
        agents.push(app.active(&format!("{name}@example.com"), "agent").await);
    }
    let ids: Vec<&str> = agents.iter().map(|a| a.agent_id.as_str()).collect();
    let admin = app.admin_token();

    let added = add(&app, &admin, &tier1.team_id, &[ids[0], ids[1], ids[0]])
        .await
        .unwrap();
    assert_eq!(added.changed_agent_ids, [ids[0], ids[1]]);
    let team = added.team.unwrap();
    assert_eq!((team.name.as_str(), team.member_count), ("Tier 1", 2));
    assert_eq!(tier1.member_count, 0, "a new team is empty");
    // Those already in are left alone.
    let added = add(&app, &admin, &tier1.team_id, &ids).await.unwrap();
    assert_eq!(added.changed_agent_ids, &ids[2..]);
    let ann = app.get(ids[0]).await;
    assert_eq!(ann.team_ids, std::slice::from_ref(&tier1.team_id));
    assert_ne!(ann.etag, agents[0].etag, "joining a team changes the agent");

    // Pages of two, by name descending, never repeat or skip a member.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = members_page(&app, &tier1.team_id, 2, &token).await.unwrap();
        pages += 1;
        seen.extend(page.agents.into_iter().map(|a| a.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["eve", "dan", "cat", "bob", "ann"]);
    // A token belongs to its team and order.
    let first = members_page(&app, &tier1.team_id, 2, "").await.unwrap();
    let tier2 = app.create_team("Tier 2", &[]).await;
    let status = members_page(&app, &tier2.team_id, 2, &first.next_page_token)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let removed = remove(&app, &admin, &tier1.team_id, &[ids[1], ids[3]])
        .await
        .unwrap();
    assert_eq!(removed.changed_agent_ids, [ids[1], ids[3]]);
    let removed = remove(&app, &admin, &tier1.team_id, &[ids[1]])
        .await
        .unwrap();
    assert!(removed.changed_agent_ids.is_empty());

    // The agent's side edits the same membership.
    app.client()
        .update_agent(app.admin(pb::UpdateAgentRequest {
            workspace_id: WS.into(),
            agent: Some(pb::Agent {
                agent_id: ids[4].into(),
                team_ids: vec![tier2.team_id.clone()],
                ..Default::default()
            }),
            update_mask: mask(&["team_ids"]),
        }))
        .await
        .unwrap();
    let names: HashSet<String> = members_page(&app, &tier1.team_id, 0, "")
        .await
        .unwrap()
        .agents
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, HashSet::from(["ann".into(), "cat".into()]));
    let tier2_members = members_page(&app, &tier2.team_id, 0, "").await.unwrap();
    assert_eq!(tier2_members.agents.len(), 1);
    // Counts follow membership from both sides, in GetTeam and in ListTeams.
    assert_eq!(
        get_team(&app, &tier1.team_id).await.unwrap().member_count,
        2
    );
    let listed: Vec<(String, i32)> = app
        .client()
        .list_teams(app.admin(pb::ListTeamsRequest {
            workspace_id: WS.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .teams
        .into_iter()
        .map(|team| (team.name, team.member_count))
        .collect();
    assert_eq!(listed, [("Tier 1".to_owned(), 2), ("Tier 2".to_owned(), 1)]);
    assert_eq!(tier2_members.agents[0].name, "eve");

    let added = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "team.members_added")
        .unwrap();
    assert_eq!(added.target_id, tier1.team_id);
    assert_eq!(change_of(&added, "team.name").1, "Tier 1");
    assert_eq!(change_of(&added, "members").1, json!([ids[0], ids[1]]));
    let removed = app.last_event("team.members_removed").await;
    assert_eq!(change_of(&removed, "members").0, json!([ids[1], ids[3]]));

    // Bad input and strangers.
    let status = add(&app, &admin, &tier1.team_id, &[]).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["agent_ids"]);
    let status = add(&app, &admin, "nope", &["x"]).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["team_id", "agent_ids[0]"]);
    let stranger = uuid::Uuid::now_v7().to_string();
    assert_refused(
        add(&app, &admin, &tier1.team_id, &[ids[1], &stranger]).await,
        Code::NotFound,
        "AGENT_NOT_FOUND",
    );
    assert_eq!(
        members_page(&app, &tier1.team_id, 0, "")
            .await
            .unwrap()
            .agents
            .len(),
        2,
        "nothing half-written"
    );
    assert_refused(
        members_page(&app, &stranger, 0, "").await,
        Code::NotFound,
        "TEAM_NOT_FOUND",
    );
}

async fn a_teams_permissions_are_granted_with_its_membership(app: TestApp) {
    let billing = app.create_team("Billing", &["billing.manage"]).await;
    let tier1 = app.create_team("Tier 1", &["tickets.work"]).await;
    let rand = app.active("rand@example.com", "agent").await;
    let manager = app.token("agent", &["staff.manage"]);

    assert_refused(
        app.client()
            .create_team(app.with(
                &manager,
                pb::CreateTeamRequest {
                    workspace_id: WS.into(),
                    team: Some(pb::Team {
                        name: "Money".into(),
                        permissions: vec!["billing.manage".into()],
                        ..Default::default()
                    }),
                },
            ))
            .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    let status = assert_refused(
        add(&app, &manager, &billing.team_id, &[&rand.agent_id]).await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    assert!(status.message().contains("'Billing'"), "{status:?}");
    assert_refused(
        app.client()
            .update_agent(app.with(
                &manager,
                pb::UpdateAgentRequest {
                    workspace_id: WS.into(),
                    agent: Some(pb::Agent {
                        agent_id: rand.agent_id.clone(),
                        team_ids: vec![tier1.team_id.clone(), billing.team_id.clone()],
                        ..Default::default()
                    }),
                    update_mask: mask(&["team_ids"]),
                },
            ))
            .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    let mut widen = tier1.clone();
    widen.permissions = vec!["tickets.work".into(), "tickets.delete".into()];
    assert_refused(
        update_team(&app, &manager, widen, &["permissions"]).await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    // What the manager holds it may grant, and taking away needs nothing held.
    add(&app, &manager, &tier1.team_id, &[&rand.agent_id])
        .await
        .unwrap();
    add(
        &app,
        &app.admin_token(),
        &billing.team_id,
        &[&rand.agent_id],
    )
    .await
    .unwrap();
    let removed = remove(&app, &manager, &billing.team_id, &[&rand.agent_id])
        .await
        .unwrap();
    assert_eq!(
        removed.changed_agent_ids,
        std::slice::from_ref(&rand.agent_id)
    );
    let added = app.last_event("team.members_added").await;
    assert_eq!(
        change_of(&added, "team.permissions").1,
        json!(["billing.manage"])
    );
}
