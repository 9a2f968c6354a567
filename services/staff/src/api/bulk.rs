//! BulkInviteAgents, BulkUpdateAgents and BulkDeactivateAgents. The invitation file is
//! streamed in like the directory's ImportUsers (a header message, then chunks), but
//! gathered whole before it is read: it is at most `domain::bulk::MAX_FILE_BYTES`, and its
//! rows are decided in one transaction anyway.

use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::bulk_invite_agents_request::Part;
use sha2::{Digest, Sha256};
use tonic::{Request, Status, Streaming};

use super::{Checks, authz, caller, convert, invite_response, workspace};
use crate::domain::bulk::{self, MAX_FILE_BYTES};
use crate::domain::values;
use crate::error::{Result, StaffError, reason};
use crate::service::{
    AgentAction, BulkChanged, BulkInvited, BulkOptions, ItemError, RequestKey, Staff,
};

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn item_error(error: ItemError) -> pb::BulkItemError {
    let ItemError {
        code,
        reason,
        message,
        violations,
    } = error;
    pb::BulkItemError {
        code,
        reason,
        message,
        field_violations: violations
            .into_iter()
            .map(|(field, description)| pb::BulkFieldViolation { field, description })
            .collect(),
    }
}

/// The request id bound to the header (without the id) and the file's bytes, however the
/// client chunked them.
fn request_key(
    request_id: &str,
    header: &pb::BulkInviteAgentsHeader,
    file: &[u8],
) -> Result<Option<RequestKey>> {
    if request_id.is_empty() {
        return Ok(None);
    }
    let id = values::request_id("header.request_id", request_id)?;
    let mut content = header.clone();
    content.request_id = String::new();
    let mut hasher = Sha256::new();
    hasher.update(b"BulkInviteAgents\0");
    hasher.update(prost::Message::encode_to_vec(&content));
    hasher.update([0]);
    hasher.update(file);
    Ok(Some(RequestKey {
        id,
        fingerprint: format!("{:x}", hasher.finalize()),
    }))
}

pub async fn invite_agents(
    staff: &Staff,
    request: Request<Streaming<pb::BulkInviteAgentsRequest>>,
) -> Result<pb::BulkInviteAgentsResponse> {
    let (principal, actor) = caller(&request)?;
    let mut stream = request.into_inner();
    let header = match stream.message().await.map_err(upload_broken)? {
        Some(pb::BulkInviteAgentsRequest {
            part: Some(Part::Header(header)),
        }) => header,
        Some(_) => {
            return Err(StaffError::invalid(
                "header",
                "the first message must carry the header (workspace and options), then the file in chunks",
            ));
        }
        None => {
            return Err(StaffError::invalid(
                "header",
                "the stream is empty; send the header, then the file in chunks",
            ));
        }
    };
    let pb::BulkInviteAgentsHeader {
        workspace_id,
        dry_run,
        all_or_nothing,
        request_id,
    } = header.clone();
    // Before the upload is read: a caller who may not invite sends nothing for nothing.
    let workspace_id = workspace(&principal, &workspace_id, "BulkInviteAgents")?;
    if !request_id.is_empty() {
        values::request_id("header.request_id", &request_id).map_err(StaffError::from)?;
    }
    let mut file = Vec::new();
    while let Some(message) = stream.message().await.map_err(upload_broken)? {
        match message.part {
            Some(Part::Chunk(chunk)) => {
                if file.len() + chunk.len() > MAX_FILE_BYTES {
                    return Err(StaffError::invalid("chunk", bulk::file_too_large().0));
                }
                file.extend_from_slice(&chunk);
            }
            Some(Part::Header(_)) => {
                return Err(StaffError::invalid(
                    "header",
                    "the header may be sent only once, as the first message",
                ));
            }
            None => {}
        }
    }
    let rows = bulk::read_invite_file(&file)
        .map_err(|error| StaffError::invalid("chunk", format!("CSV: {error}")))?;
    let request = request_key(&request_id, &header, &file)?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let invited = staff
        .bulk_invite_agents(
            &actor,
            &workspace_id,
            &granter,
            &rows,
            BulkOptions {
                dry_run,
                all_or_nothing,
            },
            request.as_ref(),
        )
        .await?;
    tracing::info!(
        workspace_id = %workspace_id,
        rows = invited.results.len(),
        committed = invited.committed,
        dry_run,
        "bulk invitation finished"
    );
    invite_answer(staff, invited, dry_run)
}

/// The upload stream itself failed (the client went away or sent what is not a message).
fn upload_broken(status: Status) -> StaffError {
    StaffError::refused(
        status.code(),
        reason::UPLOAD_BROKEN,
        None,
        format!("the upload broke off: {}", status.message()),
    )
}

fn invite_answer(
    staff: &Staff,
    invited: BulkInvited,
    dry_run: bool,
) -> Result<pb::BulkInviteAgentsResponse> {
    let BulkInvited {
        results,
        committed,
        replayed,
    } = invited;
    let failed = results.iter().filter(|r| r.outcome.is_err()).count();
    let succeeded = results.len() - failed;
    let results = results
        .into_iter()
        .map(|result| {
            let (outcome, resent) = match result.outcome {
                Ok(invited) => {
                    let resent = invited.resent;
                    (
                        pb::bulk_invite_result::Outcome::Invited(invite_response(staff, invited)?),
                        resent,
                    )
                }
                Err(error) => (
                    pb::bulk_invite_result::Outcome::Error(item_error(error)),
                    false,
                ),
            };
            Ok(pb::BulkInviteResult {
                line: i64::try_from(result.line).unwrap_or(i64::MAX),
                email: result.email,
                outcome: Some(outcome),
                resent,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(pb::BulkInviteAgentsResponse {
        results,
        succeeded: count(succeeded),
        failed: count(failed),
        committed,
        dry_run,
        replayed,
    })
}

pub async fn update_agents(
    staff: &Staff,
    request: Request<pb::BulkUpdateAgentsRequest>,
) -> Result<pb::BulkAgentsResponse> {
    use pb::bulk_update_agents_request::Action;
    let (principal, actor) = caller(&request)?;
    let pb::BulkUpdateAgentsRequest {
        workspace_id,
        agent_ids,
        action,
        all_or_nothing,
        dry_run,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "BulkUpdateAgents")?;
    let mut checks = Checks::default();
    let ids = checks.take_all(bulk::agent_ids("agent_ids", &agent_ids));
    let action = match action {
        Some(Action::SetRole(role)) => Some(AgentAction::SetRole(
            checks.take(values::role("set_role", &role, false)),
        )),
        Some(Action::AddToTeam(team)) => checks
            .take(values::id("add_to_team", &team).map(Some))
            .map(AgentAction::AddToTeam),
        Some(Action::RemoveFromTeam(team)) => checks
            .take(values::id("remove_from_team", &team).map(Some))
            .map(AgentAction::RemoveFromTeam),
        None => {
            checks.0.push(roster_core::FieldViolation::new(
                "action",
                "is required: set_role, add_to_team or remove_from_team",
            ));
            None
        }
    };
    checks.done()?;
    let action = action.ok_or_else(|| StaffError::invalid("action", "is required"))?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let changed = staff
        .bulk_change_agents(
            &actor,
            &workspace_id,
            authz::caller_agent(&principal),
            &granter,
            &ids,
            &action,
            BulkOptions {
                dry_run,
                all_or_nothing,
            },
        )
        .await?;
    agents_answer(&agent_ids, changed, dry_run)
}

pub async fn deactivate_agents(
    staff: &Staff,
    request: Request<pb::BulkDeactivateAgentsRequest>,
) -> Result<pb::BulkAgentsResponse> {
    let (principal, actor) = caller(&request)?;
    let pb::BulkDeactivateAgentsRequest {
        workspace_id,
        agent_ids,
        reason,
        all_or_nothing,
        dry_run,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "BulkDeactivateAgents")?;
    let mut checks = Checks::default();
    let ids = checks.take_all(bulk::agent_ids("agent_ids", &agent_ids));
    let reason = checks.take(values::text(
        "reason",
        &reason,
        values::MAX_REASON_CHARS,
        false,
    ));
    checks.done()?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let changed = staff
        .bulk_change_agents(
            &actor,
            &workspace_id,
            authz::caller_agent(&principal),
            &granter,
            &ids,
            &AgentAction::Deactivate(reason),
            BulkOptions {
                dry_run,
                all_or_nothing,
            },
        )
        .await?;
    agents_answer(&agent_ids, changed, dry_run)
}

fn agents_answer(
    agent_ids: &[String],
    changed: BulkChanged,
    dry_run: bool,
) -> Result<pb::BulkAgentsResponse> {
    let BulkChanged { results, committed } = changed;
    let failed = results.iter().filter(|r| r.outcome.is_err()).count();
    let succeeded = results.len() - failed;
    let results = results
        .into_iter()
        .map(|result| {
            let (outcome, changed) = match result.outcome {
                Ok(updated) => (
                    pb::bulk_agent_result::Outcome::Agent(convert::agent(updated.view)?),
                    updated.changed,
                ),
                Err(error) => (
                    pb::bulk_agent_result::Outcome::Error(item_error(error)),
                    false,
                ),
            };
            Ok(pb::BulkAgentResult {
                index: count(result.index),
                agent_id: agent_ids.get(result.index).cloned().unwrap_or_default(),
                outcome: Some(outcome),
                changed,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(pb::BulkAgentsResponse {
        results,
        succeeded: count(succeeded),
        failed: count(failed),
        committed,
        dry_run,
    })
}
