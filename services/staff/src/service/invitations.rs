//! Inviting agents, re-sending and revoking invitations, and accepting them.

use roster_core::paging::Cursor;
use roster_core::{Actor, RequestContext};
use roster_db::{in_write_txn, outbox};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use super::{AgentView, Staff, agent_context, change};
use crate::domain::access::Granter;
use crate::domain::invitation::{self, NotAcceptable};
use crate::domain::{AgentStatus, InvitationState, RoleGrant};
use crate::entity::{agent, invitation as invitation_row, staff_workspace, team};
use crate::error::{AGENT_RESOURCE, Result, StaffError, reason};
use crate::store;
use crate::store::invitations::Open;

/// A request id (AIP-155) bound to the content of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestKey {
    pub id: String,
    pub fingerprint: String,
}

/// A checked InviteAgent.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub email: String,
    pub name: String,
    /// A role's name (built-in or custom), resolved against the workspace's roles.
    pub role: String,
    pub team_ids: Vec<Uuid>,
    pub request: Option<RequestKey>,
}

/// An invitation sent (or, for a replayed request id, the one sent the first time).
#[derive(Clone, Debug)]
pub struct Invited {
    pub agent: AgentView,
    pub invitation: invitation_row::Model,
    /// Present only when this call created the invitation.
    pub secret: Option<String>,
    pub replayed: bool,
    /// The e-mail had a pending invitation, which this one replaced.
    pub resent: bool,
}

/// Who one invitation goes to, with the role and teams already read.
pub(super) struct Invitee<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a RoleGrant,
    pub teams: &'a [team::Model],
    pub request: Option<&'a RequestKey>,
}

pub(super) fn request_id_reused() -> StaffError {
    StaffError::failed_precondition(
        reason::REQUEST_ID_REUSED,
        "request_id was already used for a different request; a retry must repeat the request exactly, a new request needs a new id",
    )
}

/// What a caller acting on an invitation sees in a refusal for it.
pub(super) fn not_acceptable(why: NotAcceptable) -> StaffError {
    let (reason, message) = match why {
        NotAcceptable::Used => (
            reason::INVITATION_USED,
            "this invitation was already accepted; sign in instead",
        ),
        NotAcceptable::Revoked => (
            reason::INVITATION_REVOKED,
            "this invitation was revoked; ask an administrator for a new one",
        ),
        NotAcceptable::Superseded => (
            reason::INVITATION_SUPERSEDED,
            "a newer invitation was sent to this address; use the link in the latest e-mail",
        ),
        NotAcceptable::Expired => (
            reason::INVITATION_EXPIRED,
            "this invitation has expired (invitations last 7 days); ask an administrator to resend it",
        ),
    };
    StaffError::failed_precondition(reason, message)
}

fn unknown_secret() -> StaffError {
    StaffError::failed_precondition(
        reason::INVITATION_INVALID,
        "no invitation of this workspace has this secret; check the link",
    )
}

/// The agent, when it is INVITED: only such an agent can `what` (resend, revoke).
async fn invited_agent(
    conn: &impl sea_orm::ConnectionTrait,
    workspace_id: &str,
    agent_id: Uuid,
    what: &str,
) -> Result<agent::Model> {
    let agent = store::agents::require(conn, workspace_id, agent_id).await?;
    if agent.status != AgentStatus::Invited.as_str() {
        return Err(StaffError::failed_precondition(
            reason::AGENT_STATUS,
            format!(
                "agent {agent_id} is {}; only invited agents {what}",
                agent.status
            ),
        ));
    }
    Ok(agent)
}

fn team_names(teams: &[team::Model]) -> serde_json::Value {
    json!(
        teams
            .iter()
            .map(|team| team.name.clone())
            .collect::<Vec<_>>()
    )
}

impl Staff {
    /// The seat check of a change that makes an agent use a seat; the caller holds the
    /// workspace's row lock.
    pub(super) async fn require_free_seat<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        workspace: &crate::entity::staff_workspace::Model,
    ) -> Result<()> {
        if workspace.seat_limit == 0 {
            return Ok(());
        }
        let counts = store::workspaces::counts(conn, &workspace.workspace_id).await?;
        if counts.seats_used() >= workspace.seat_limit {
            return Err(StaffError::failed_precondition(
                reason::SEAT_LIMIT_REACHED,
                format!(
                    "all {} seats of the workspace's seat limit are in use ({} active, {} invited); deactivate an agent, revoke an invitation or raise the limit",
                    workspace.seat_limit, counts.active, counts.invited
                ),
            ));
        }
        Ok(())
    }

    /// `granter` must hold the role's permissions and the teams' (nobody grants what they
    /// lack).
    pub async fn invite_agent(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        input: NewInvitation,
    ) -> Result<Invited> {
        // Two invitations racing on one new e-mail or one request id meet at a unique
        // index; the retry sees the winner and re-sends or replays.
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let workspace = store::workspaces::lock(conn, workspace_id, now).await?;
            if let Some(request) = &input.request
                && let Some(first) =
                    store::invitations::find_by_request_id(conn, workspace_id, &request.id).await?
            {
                if first.request_fingerprint.as_deref() != Some(request.fingerprint.as_str()) {
                    return Err(request_id_reused());
                }
                let agent = store::agents::require(conn, workspace_id, first.agent_id).await?;
                return Ok(Invited {
                    agent: self.view(conn, agent).await?,
                    invitation: first,
                    secret: None,
                    replayed: true,
                    resent: false,
                });
            }
            let teams = store::teams::require_all(conn, workspace_id, &input.team_ids).await?;
            let role = self
                .resolve_role(conn, workspace_id, "role", &input.role)
                .await?;
            self.invite_one(
                conn,
                actor,
                &workspace,
                granter,
                Invitee {
                    email: &input.email,
                    name: &input.name,
                    role: &role,
                    teams: &teams,
                    request: input.request.as_ref(),
                },
            )
            .await
        })
    }

    /// One invitation's checks and writes, in the caller's transaction after it locked
    /// `workspace`: InviteAgent's and every BulkInviteAgents row's, so the two cannot
    /// drift.
    pub(super) async fn invite_one<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        workspace: &staff_workspace::Model,
        granter: &Granter,
        invitee: Invitee<'_>,
    ) -> Result<Invited> {
        let Invitee {
            email,
            name,
            role,
            teams,
            request,
        } = invitee;
        let workspace_id = workspace.workspace_id.as_str();
        let now = self.now_us();
        granter.may_grant_role(role)?;
        for team in teams {
            let grant = store::teams::grant_of(team)?;
            granter.may_grant(
                || format!("membership of the team '{}'", team.name),
                &grant.permissions,
            )?;
        }
        let team_ids: Vec<Uuid> = teams.iter().map(|team| team.team_id).collect();
        let email_key = crate::domain::values::email_key(email);
        let existing = store::agents::find_by_email(conn, workspace_id, &email_key).await?;
        let (before, action) = match &existing {
            None => (None, "agent.invited"),
            Some(agent) => match AgentStatus::parse(&agent.status) {
                Some(AgentStatus::Active) => {
                    return Err(StaffError::refused(
                        Code::AlreadyExists,
                        reason::AGENT_ALREADY_ACTIVE,
                        Some((AGENT_RESOURCE, agent.agent_id.to_string())),
                        format!(
                            "{} is already an active agent of this workspace",
                            agent.email
                        ),
                    ));
                }
                Some(AgentStatus::Deactivated) if agent.activated_at.is_some() => {
                    return Err(StaffError::failed_precondition(
                        reason::AGENT_DEACTIVATED,
                        format!(
                            "{} is a deactivated agent of this workspace; reactivate it with ReactivateAgent",
                            agent.email
                        ),
                    ));
                }
                Some(AgentStatus::Invited) => (Some(agent.clone()), "agent.invitation_resent"),
                Some(AgentStatus::Deactivated) => (Some(agent.clone()), "agent.invited"),
                // Erasure replaces the e-mail key, so an erased agent is never found by
                // address; one that is would be a defect, not an invitation.
                Some(AgentStatus::Erased) | None => {
                    return Err(StaffError::Internal(format!(
                        "agent {} has the unknown status '{}'",
                        agent.agent_id, agent.status
                    )));
                }
            },
        };
        let resent = before
            .as_ref()
            .is_some_and(|agent| agent.status == AgentStatus::Invited.as_str());
        if !resent {
            self.require_free_seat(conn, workspace).await?;
        }
        let agent = match &before {
            None => {
                let agent = agent::Model {
                    workspace_id: workspace_id.to_owned(),
                    agent_id: Uuid::now_v7(),
                    email: email.to_owned(),
                    email_key: email_key.clone(),
                    name: name.to_owned(),
                    name_key: name.to_lowercase(),
                    avatar_url: String::new(),
                    role: role.name.clone(),
                    extra_permissions: "[]".to_owned(),
                    status: AgentStatus::Invited.as_str().to_owned(),
                    notification_preferences: "{}".to_owned(),
                    signature: String::new(),
                    theme: String::new(),
                    language: String::new(),
                    created_at: now,
                    updated_at: now,
                    activated_at: None,
                    deactivated_at: None,
                    deactivation_reason: String::new(),
                    last_sign_in_at: 0,
                    version: 1,
                    sign_in_count: 0,
                    token_generation: 0,
                };
                store::agents::insert(conn, agent.clone()).await?;
                agent
            }
            Some(before) => {
                let mut after = before.clone();
                after.email = email.to_owned();
                after.name = name.to_owned();
                after.name_key = name.to_lowercase();
                after.role = role.name.clone();
                after.status = AgentStatus::Invited.as_str().to_owned();
                after.deactivated_at = None;
                after.deactivation_reason = String::new();
                after.updated_at = now;
                after.version += 1;
                if !store::agents::update(conn, before, &after).await? {
                    return Err(StaffError::Database(roster_db::DbError::Conflict));
                }
                store::invitations::end_pending(
                    conn,
                    workspace_id,
                    after.agent_id,
                    InvitationState::Superseded,
                    now,
                )
                .await?;
                after
            }
        };
        store::agents::set_teams(conn, workspace_id, agent.agent_id, &team_ids, now).await?;
        let secret = invitation::new_secret(&mut rand::rng());
        let row = invitation_row::Model {
            workspace_id: workspace_id.to_owned(),
            invitation_id: Uuid::now_v7(),
            agent_id: agent.agent_id,
            secret_hash: invitation::secret_hash(&secret),
            state: InvitationState::Pending.as_str().to_owned(),
            invited_by_kind: actor.kind.clone(),
            invited_by_id: actor.id.clone(),
            created_at: now,
            expires_at: now + invitation::LIFETIME_US,
            ended_at: None,
            request_id: request.map(|request| request.id.clone()),
            request_fingerprint: request.map(|request| request.fingerprint.clone()),
        };
        store::invitations::insert(conn, row.clone()).await?;
        let old = before.as_ref();
        let event = self.event(
            actor,
            workspace_id,
            action,
            ("agent", agent.agent_id.to_string()),
            vec![
                change(
                    "email",
                    old.map(|a| a.email.clone().into()),
                    Some(agent.email.clone().into()),
                ),
                change(
                    "name",
                    old.map(|a| a.name.clone().into()),
                    Some(agent.name.clone().into()),
                ),
                change(
                    "role",
                    old.map(|a| a.role.clone().into()),
                    Some(agent.role.clone().into()),
                ),
                change(
                    "status",
                    old.map(|a| a.status.clone().into()),
                    Some(agent.status.clone().into()),
                ),
                change("teams", None, Some(team_names(teams))),
                change(
                    "invitation_id",
                    None,
                    Some(row.invitation_id.to_string().into()),
                ),
                change("invitation_expires_at", None, Some(row.expires_at.into())),
            ],
        );
        outbox::append(conn, &[event]).await?;
        Ok(Invited {
            agent: AgentView { agent, team_ids },
            invitation: row,
            secret: Some(secret),
            replayed: false,
            resent,
        })
    }

    pub async fn resend_invitation(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
    ) -> Result<Invited> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let before = invited_agent(conn, workspace_id, agent_id, "get invitations").await?;
            store::invitations::end_pending(
                conn,
                workspace_id,
                agent_id,
                InvitationState::Superseded,
                now,
            )
            .await?;
            let secret = invitation::new_secret(&mut rand::rng());
            let row = invitation_row::Model {
                workspace_id: workspace_id.to_owned(),
                invitation_id: Uuid::now_v7(),
                agent_id,
                secret_hash: invitation::secret_hash(&secret),
                state: InvitationState::Pending.as_str().to_owned(),
                invited_by_kind: actor.kind.clone(),
                invited_by_id: actor.id.clone(),
                created_at: now,
                expires_at: now + invitation::LIFETIME_US,
                ended_at: None,
                request_id: None,
                request_fingerprint: None,
            };
            store::invitations::insert(conn, row.clone()).await?;
            let mut changes = agent_context(&before);
            changes.push(change(
                "invitation_id",
                None,
                Some(row.invitation_id.to_string().into()),
            ));
            changes.push(change(
                "invitation_expires_at",
                None,
                Some(row.expires_at.into()),
            ));
            let event = self.event(
                actor,
                workspace_id,
                "agent.invitation_resent",
                ("agent", agent_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            Ok(Invited {
                agent: self.view(conn, before).await?,
                invitation: row,
                secret: Some(secret),
                replayed: false,
                resent: true,
            })
        })
    }

    /// Revokes the pending invitation of an INVITED agent, who becomes DEACTIVATED (its
    /// seat freed).
    pub async fn revoke_invitation(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
    ) -> Result<AgentView> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let before =
                invited_agent(conn, workspace_id, agent_id, "have an invitation to revoke").await?;
            let revoked = store::invitations::end_pending(
                conn,
                workspace_id,
                agent_id,
                InvitationState::Revoked,
                now,
            )
            .await?;
            if revoked == 0 {
                return Err(StaffError::failed_precondition(
                    reason::NO_PENDING_INVITATION,
                    format!(
                        "agent {agent_id} has no pending invitation; send one with ResendInvitation or deactivate the agent"
                    ),
                ));
            }
            let mut after = before.clone();
            after.status = AgentStatus::Deactivated.as_str().to_owned();
            after.deactivated_at = Some(now);
            after.deactivation_reason = "invitation revoked".to_owned();
            after.updated_at = now;
            after.version += 1;
            if !store::agents::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            let mut changes = agent_context(&before);
            changes.push(change(
                "status",
                Some(before.status.clone().into()),
                Some(after.status.clone().into()),
            ));
            let event = self.event(
                actor,
                workspace_id,
                "agent.invitation_revoked",
                ("agent", agent_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            self.view(conn, after).await
        })
    }

    /// Checks an invitation secret without changing anything, so a wrong one costs no
    /// password hashing.
    pub async fn check_invitation(&self, workspace_id: &str, secret: &str) -> Result<()> {
        let hash = invitation::secret_hash(secret);
        let found = store::invitations::find_by_secret_hash(self.db.conn(), workspace_id, &hash)
            .await?
            .ok_or_else(unknown_secret)?;
        let state = InvitationState::parse(&found.state).ok_or_else(|| {
            StaffError::Internal(format!(
                "invitation {} has the unknown state '{}'",
                found.invitation_id, found.state
            ))
        })?;
        invitation::acceptable(state, found.expires_at, self.now_us()).map_err(not_acceptable)
    }

    /// Accepts an invitation: the agent becomes ACTIVE with `password_hash` (argon2id,
    /// computed by the caller off the async workers). The actor is the invitee.
    pub async fn accept_invitation(
        &self,
        context: RequestContext,
        workspace_id: &str,
        secret: &str,
        name: Option<String>,
        password_hash: String,
    ) -> Result<AgentView> {
        let hash = invitation::secret_hash(secret);
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let found = store::invitations::find_by_secret_hash(conn, workspace_id, &hash)
                .await?
                .ok_or_else(unknown_secret)?;
            let state = InvitationState::parse(&found.state).ok_or_else(|| {
                StaffError::Internal(format!(
                    "invitation {} has the unknown state '{}'",
                    found.invitation_id, found.state
                ))
            })?;
            invitation::acceptable(state, found.expires_at, now).map_err(not_acceptable)?;
            let before = store::agents::require(conn, workspace_id, found.agent_id).await?;
            if before.status != AgentStatus::Invited.as_str() {
                // A pending invitation belongs to an invited agent; anything else is a
                // revocation this invitation missed.
                return Err(not_acceptable(NotAcceptable::Revoked));
            }
            let mut after = before.clone();
            if let Some(name) = &name {
                after.name = name.clone();
                after.name_key = name.to_lowercase();
            }
            after.status = AgentStatus::Active.as_str().to_owned();
            after.activated_at = Some(before.activated_at.unwrap_or(now));
            after.updated_at = now;
            after.version += 1;
            if !store::agents::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            store::invitations::end_pending(
                conn,
                workspace_id,
                found.agent_id,
                InvitationState::Accepted,
                now,
            )
            .await?;
            store::agents::set_password_hash(
                conn,
                workspace_id,
                found.agent_id,
                &password_hash,
                now,
            )
            .await?;
            let actor = Actor {
                kind: "agent".to_owned(),
                id: found.agent_id.to_string(),
                context: context.clone(),
            };
            let mut changes = agent_context(&before);
            changes.push(change(
                "status",
                Some(before.status.clone().into()),
                Some(after.status.clone().into()),
            ));
            if after.name != before.name {
                changes.push(change(
                    "name",
                    Some(before.name.clone().into()),
                    Some(after.name.clone().into()),
                ));
            }
            changes.push(change(
                "invitation_id",
                Some(found.invitation_id.to_string().into()),
                None,
            ));
            // Names the fact, never the value.
            changes.push(change("password", None, Some("set".into())));
            let event = self.event(
                &actor,
                workspace_id,
                "agent.invitation_accepted",
                ("agent", found.agent_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            self.view(conn, after).await
        })
    }

    /// Open invitations, oldest first, with the agent each was sent to.
    pub async fn list_invitations(
        &self,
        workspace_id: &str,
        open: Open,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<(invitation_row::Model, agent::Model)>> {
        let conn = self.db.conn();
        let rows =
            store::invitations::list_open(conn, workspace_id, open, self.now_us(), after, limit)
                .await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.agent_id).collect();
        let agents = store::agents::find_many(conn, workspace_id, &ids).await?;
        let mut listed = Vec::with_capacity(rows.len());
        for row in rows {
            let agent = agents
                .iter()
                .find(|agent| agent.agent_id == row.agent_id)
                .cloned()
                .ok_or_else(|| StaffError::agent_not_found(row.agent_id))?;
            listed.push((row, agent));
        }
        Ok(listed)
    }

    pub fn now(&self) -> i64 {
        self.now_us()
    }
}
