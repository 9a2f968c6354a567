//! The bulk calls: BulkInviteAgents, BulkUpdateAgents and BulkDeactivateAgents.
//!
//! A batch is one write transaction that locks the workspace's row once, then runs its
//! items one after another through the single calls' own functions (`invite_one`,
//! `update_one`): the rules cannot drift, and each item is decided against what the items
//! before it did (seats taken, admins demoted), as a sequence of single calls would be.
//! One transaction rather than one per item: a thousand items cost their statements, not
//! a thousand BEGIN/COMMIT round trips and lock hand-overs.
//!
//! Each item runs in a savepoint: a refusal undoes that item's writes only and becomes its
//! result, while a database failure ends the whole call (and `in_write_txn!` runs it again
//! from the start, as it does a single call). The batch runs in a savepoint of its own, so a
//! dry run, or an all-or-nothing batch with a failed item, rolls everything back and still
//! answers what each item did or would have done.

use std::collections::HashMap;

use roster_core::{Actor, FieldViolation};
use roster_db::in_write_txn;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use tonic::Code;
use uuid::Uuid;

use super::invitations::{Invitee, RequestKey};
use super::{AgentPatch, AgentView, Invited, Staff, TeamsChange, Updated};
use crate::domain::access::Granter;
use crate::domain::bulk::{self, FileRow};
use crate::domain::{AgentStatus, RoleGrant};
use crate::entity::team;
use crate::error::{Result, StaffError, TEAM_RESOURCE, reason};
use crate::store;

/// The operation BulkInviteAgents' request ids are recorded under.
const BULK_INVITE: &str = "BulkInviteAgents";

/// What a batch writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkOptions {
    /// Decide every item, write nothing.
    pub dry_run: bool,
    /// One failed item leaves every item unwritten.
    pub all_or_nothing: bool,
}

impl BulkOptions {
    /// Whether the batch's successes are written.
    fn keeps(self, any_failed: bool) -> bool {
        let rolled_back = self.all_or_nothing && any_failed;
        !self.dry_run && !rolled_back
    }
}

/// Why one item failed: the status the single call would have answered. Stored with a
/// request id's answer, hence serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// A `tonic::Code` as its number.
    pub code: i32,
    pub reason: String,
    pub message: String,
    /// (field, description) of an INVALID_ARGUMENT.
    pub violations: Vec<(String, String)>,
}

impl ItemError {
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let message = violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            code: Code::InvalidArgument as i32,
            reason: reason::INVALID_ARGUMENT.to_owned(),
            message,
            violations: violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect(),
        }
    }

    /// A refusal as an item's result. Anything else (the database, an internal error) is
    /// no verdict on the item: it stays the call's error.
    fn from_refusal(error: StaffError) -> Result<Self> {
        match error {
            StaffError::Invalid(violations) => Ok(Self::invalid(violations)),
            StaffError::Refused(refusal) => Ok(Self {
                code: refusal.code as i32,
                reason: refusal.reason.to_owned(),
                message: refusal.message,
                violations: Vec::new(),
            }),
            other => Err(other),
        }
    }
}

/// What became of one row of a BulkInviteAgents file.
#[derive(Clone, Debug)]
pub struct InviteResult {
    pub line: u64,
    /// The row's e-mail as written.
    pub email: String,
    pub outcome: std::result::Result<Invited, ItemError>,
}

/// BulkInviteAgents' answer.
#[derive(Clone, Debug)]
pub struct BulkInvited {
    pub results: Vec<InviteResult>,
    pub committed: bool,
    pub replayed: bool,
}

/// The one change BulkUpdateAgents or BulkDeactivateAgents applies to each agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentAction {
    /// A role's name.
    SetRole(String),
    AddToTeam(Uuid),
    RemoveFromTeam(Uuid),
    /// With the reason kept on each agent.
    Deactivate(String),
}

/// What became of one agent of a bulk change, by its position in the request.
#[derive(Clone, Debug)]
pub struct AgentResult {
    pub index: usize,
    pub outcome: std::result::Result<Updated, ItemError>,
}

/// BulkUpdateAgents' and BulkDeactivateAgents' answer.
#[derive(Clone, Debug)]
pub struct BulkChanged {
    pub results: Vec<AgentResult>,
    pub committed: bool,
}

/// An invitation row's result as a request id remembers it: ids, not the rows, which are
/// read again when the answer is replayed.
#[derive(Debug, Serialize, Deserialize)]
struct StoredInvite {
    line: u64,
    email: String,
    agent_id: Option<Uuid>,
    invitation_id: Option<Uuid>,
    resent: bool,
    error: Option<ItemError>,
}

/// Ends an item's savepoint: released when the item succeeded, rolled back when it was
/// refused (its result) or failed (the call's error).
async fn settle<T>(
    savepoint: DatabaseTransaction,
    outcome: Result<T>,
) -> Result<std::result::Result<T, ItemError>> {
    match outcome {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(Ok(value))
        }
        Err(error) => {
            savepoint.rollback().await?;
            ItemError::from_refusal(error).map(Err)
        }
    }
}

/// Ends the batch's savepoint: its items are written, or none is.
async fn finish(batch: DatabaseTransaction, keep: bool) -> Result<()> {
    if keep {
        batch.commit().await?;
    } else {
        batch.rollback().await?;
    }
    Ok(())
}

fn team_not_named(team: &str) -> StaffError {
    StaffError::refused(
        Code::NotFound,
        reason::TEAM_NOT_FOUND,
        Some((TEAM_RESOURCE, team.to_owned())),
        format!("no team of this workspace has the name or id '{team}' (ListTeams)"),
    )
}

fn own_account() -> StaffError {
    StaffError::failed_precondition(
        reason::OWN_ACCOUNT,
        "a bulk deactivation leaves out the caller's own account; deactivate it deliberately with DeactivateAgent",
    )
}

/// The roles and teams a file names, read once each: they cannot change during the batch,
/// whose workspace lock every role and team change takes too.
#[derive(Default)]
struct Lookups {
    roles: HashMap<String, RoleGrant>,
    teams: HashMap<String, team::Model>,
}

impl Lookups {
    async fn role<C: ConnectionTrait>(
        &mut self,
        staff: &Staff,
        conn: &C,
        workspace_id: &str,
        name: &str,
    ) -> Result<RoleGrant> {
        let key = name.to_lowercase();
        if let Some(role) = self.roles.get(&key) {
            return Ok(role.clone());
        }
        let role = staff.resolve_role(conn, workspace_id, "role", name).await?;
        self.roles.insert(key, role.clone());
        Ok(role)
    }

    /// A team by id when the cell is a UUID, else by name (any case).
    async fn team<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        workspace_id: &str,
        written: &str,
    ) -> Result<team::Model> {
        let key = written.to_lowercase();
        if let Some(team) = self.teams.get(&key) {
            return Ok(team.clone());
        }
        let found = match Uuid::parse_str(written) {
            Ok(team_id) => store::teams::find(conn, workspace_id, team_id).await?,
            Err(_) => store::teams::find_by_name(conn, workspace_id, &key).await?,
        };
        let team = found.ok_or_else(|| team_not_named(written))?;
        self.teams.insert(key, team.clone());
        Ok(team)
    }
}

impl Staff {
    /// Invites the rows of a BulkInviteAgents file, each as InviteAgent would. With a
    /// request id (ignored in a dry run) a retry answers the first call's results again.
    pub async fn bulk_invite_agents(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        rows: &[FileRow],
        options: BulkOptions,
        request: Option<&RequestKey>,
    ) -> Result<BulkInvited> {
        let request = request.filter(|_| !options.dry_run);
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let batch = txn.begin().await?;
            let workspace = store::workspaces::lock(&batch, workspace_id, self.now_us()).await?;
            if let Some(request) = request
                && let Some(stored) = self
                    .replayed(&batch, workspace_id, BULK_INVITE, request)
                    .await?
            {
                let results = self.replay_invites(&batch, workspace_id, &stored).await?;
                finish(batch, true).await?;
                return Ok(BulkInvited {
                    results,
                    committed: true,
                    replayed: true,
                });
            }
            let mut lookups = Lookups::default();
            let mut results = Vec::with_capacity(rows.len());
            for row in rows {
                let outcome = match &row.checked {
                    Err(violations) => Err(ItemError::invalid(violations.clone())),
                    Ok(invitee) => {
                        let role = lookups
                            .role(self, &batch, workspace_id, &invitee.role)
                            .await;
                        let team = match &invitee.team {
                            Some(team) => lookups.team(&batch, workspace_id, team).await.map(Some),
                            None => Ok(None),
                        };
                        match (role, team) {
                            (Err(error), _) | (_, Err(error)) => {
                                Err(ItemError::from_refusal(error)?)
                            }
                            (Ok(role), Ok(team)) => {
                                let teams: Vec<team::Model> = team.into_iter().collect();
                                let savepoint = batch.begin().await?;
                                let outcome = self
                                    .invite_one(
                                        &savepoint,
                                        actor,
                                        &workspace,
                                        granter,
                                        Invitee {
                                            email: &invitee.email,
                                            name: &invitee.name,
                                            role: &role,
                                            teams: &teams,
                                            request: None,
                                        },
                                    )
                                    .await;
                                settle(savepoint, outcome).await?
                            }
                        }
                    }
                };
                results.push(InviteResult {
                    line: row.line,
                    email: row.email.clone(),
                    outcome,
                });
            }
            let committed = options.keeps(results.iter().any(|r| r.outcome.is_err()));
            if committed && let Some(request) = request {
                let stored = stored_invites(&results)?;
                self.record_request(&batch, workspace_id, BULK_INVITE, request, stored)
                    .await?;
            }
            finish(batch, committed).await?;
            if !committed {
                // Nothing was written: the secrets open nothing and must not be shown.
                for result in &mut results {
                    if let Ok(invited) = &mut result.outcome {
                        invited.secret = None;
                    }
                }
            }
            Ok(BulkInvited {
                results,
                committed,
                replayed: false,
            })
        })
    }

    /// The results a request id recorded, with their agents and invitations as they are
    /// now (the secrets were never stored).
    async fn replay_invites<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        stored: &str,
    ) -> Result<Vec<InviteResult>> {
        let items: Vec<StoredInvite> = serde_json::from_str(stored).map_err(|error| {
            StaffError::Internal(format!(
                "a recorded bulk invitation does not parse: {error}"
            ))
        })?;
        let agent_ids: Vec<Uuid> = items.iter().filter_map(|item| item.agent_id).collect();
        let invitation_ids: Vec<Uuid> =
            items.iter().filter_map(|item| item.invitation_id).collect();
        let agents = store::agents::find_many(conn, workspace_id, &agent_ids).await?;
        let teams = store::agents::teams_of(conn, workspace_id, &agent_ids).await?;
        let invitations =
            store::invitations::find_many(conn, workspace_id, &invitation_ids).await?;
        items
            .into_iter()
            .map(|item| {
                let outcome = match (item.error, item.agent_id, item.invitation_id) {
                    (Some(error), _, _) => Err(error),
                    (None, Some(agent_id), Some(invitation_id)) => {
                        let agent = agents
                            .iter()
                            .find(|agent| agent.agent_id == agent_id)
                            .cloned()
                            .ok_or_else(|| StaffError::agent_not_found(agent_id))?;
                        let invitation = invitations
                            .iter()
                            .find(|row| row.invitation_id == invitation_id)
                            .cloned()
                            .ok_or_else(|| {
                                StaffError::Internal(format!(
                                    "invitation {invitation_id} of a recorded bulk invitation is gone"
                                ))
                            })?;
                        Ok(Invited {
                            agent: AgentView {
                                team_ids: teams.get(&agent_id).cloned().unwrap_or_default(),
                                agent,
                            },
                            invitation,
                            secret: None,
                            replayed: true,
                            resent: item.resent,
                        })
                    }
                    _ => {
                        return Err(StaffError::Internal(
                            "a recorded bulk invitation names neither a result nor an error"
                                .to_owned(),
                        ));
                    }
                };
                Ok(InviteResult {
                    line: item.line,
                    email: item.email,
                    outcome,
                })
            })
            .collect()
    }

    /// Applies `action` to each of `agent_ids` as UpdateAgent or DeactivateAgent would.
    /// The action's own checks (its role or team exists, the caller may grant it) fail the
    /// whole call: they would fail every item alike. `caller_agent` is the caller's own
    /// agent, which keeps its role and is left out of a deactivation.
    #[allow(clippy::too_many_arguments)]
    pub async fn bulk_change_agents(
        &self,
        actor: &Actor,
        workspace_id: &str,
        caller_agent: Option<Uuid>,
        granter: &Granter,
        agent_ids: &[Uuid],
        action: &AgentAction,
        options: BulkOptions,
    ) -> Result<BulkChanged> {
        let repeats = bulk::repeats(agent_ids);
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let batch = txn.begin().await?;
            let workspace = store::workspaces::lock(&batch, workspace_id, self.now_us()).await?;
            let patch = self
                .bulk_patch(&batch, workspace_id, granter, action)
                .await?;
            let deactivating = matches!(action, AgentAction::Deactivate(_));
            let mut results = Vec::with_capacity(agent_ids.len());
            for (index, (agent_id, repeat)) in agent_ids.iter().zip(&repeats).enumerate() {
                let outcome = if let Some(first) = repeat {
                    Err(ItemError::invalid(vec![FieldViolation::new(
                        format!("agent_ids[{index}]"),
                        format!("repeats agent_ids[{first}]; name each agent once"),
                    )]))
                } else if deactivating && caller_agent == Some(*agent_id) {
                    Err(ItemError::from_refusal(own_account())?)
                } else {
                    let savepoint = batch.begin().await?;
                    let outcome = self
                        .update_one(
                            &savepoint,
                            actor,
                            &workspace,
                            *agent_id,
                            None,
                            caller_agent,
                            Some(granter),
                            &patch,
                        )
                        .await;
                    settle(savepoint, outcome).await?
                };
                results.push(AgentResult { index, outcome });
            }
            let committed = options.keeps(results.iter().any(|r| r.outcome.is_err()));
            finish(batch, committed).await?;
            Ok(BulkChanged { results, committed })
        })
    }

    /// The patch every agent of a bulk change gets, once the action's role or team is read
    /// and found grantable.
    async fn bulk_patch<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        granter: &Granter,
        action: &AgentAction,
    ) -> Result<AgentPatch> {
        Ok(match action {
            AgentAction::SetRole(name) => {
                let role = self
                    .resolve_role(conn, workspace_id, "set_role", name)
                    .await?;
                granter.may_grant_role(&role)?;
                AgentPatch {
                    role: Some(role.name),
                    ..AgentPatch::default()
                }
            }
            AgentAction::AddToTeam(team_id) => {
                let team = store::teams::require(conn, workspace_id, *team_id).await?;
                granter.may_grant(
                    || format!("membership of the team '{}'", team.name),
                    &store::teams::grant_of(&team)?.permissions,
                )?;
                AgentPatch {
                    teams: Some(TeamsChange::Add(*team_id)),
                    ..AgentPatch::default()
                }
            }
            AgentAction::RemoveFromTeam(team_id) => {
                store::teams::require(conn, workspace_id, *team_id).await?;
                AgentPatch {
                    teams: Some(TeamsChange::Remove(*team_id)),
                    ..AgentPatch::default()
                }
            }
            AgentAction::Deactivate(reason) => AgentPatch {
                status: Some(AgentStatus::Deactivated),
                deactivation_reason: reason.clone(),
                ..AgentPatch::default()
            },
        })
    }
}

fn stored_invites(results: &[InviteResult]) -> Result<String> {
    let items: Vec<StoredInvite> = results
        .iter()
        .map(|result| {
            let (agent_id, invitation_id, resent, error) = match &result.outcome {
                Ok(invited) => (
                    Some(invited.agent.agent.agent_id),
                    Some(invited.invitation.invitation_id),
                    invited.resent,
                    None,
                ),
                Err(error) => (None, None, false, Some(error.clone())),
            };
            StoredInvite {
                line: result.line,
                email: result.email.clone(),
                agent_id,
                invitation_id,
                resent,
                error,
            }
        })
        .collect();
    serde_json::to_string(&items).map_err(|error| StaffError::Internal(error.to_string()))
}
