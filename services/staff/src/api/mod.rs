//! gRPC handlers: the only place that knows protobuf. Each handler has one shape:
//! destructure the request, check the workspace id, authorize (`authz`), validate fields,
//! call the service, convert.

mod access;
pub mod authz;
mod bulk;
pub mod convert;
mod denials;
mod revocations;
mod roles;
mod service_accounts;
mod sign_in;
mod sso;
mod teams;

use std::future::Future;

use roster_auth::Principal;
use roster_core::etag::parse_etag;
use roster_core::paging::{Cursor, Order, page_size, query_fingerprint};
use roster_core::update_mask::fields_to_update;
use roster_core::{Actor, FieldViolation, RequestContext};
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_server::StaffService;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::domain::filter::{AGENT_ORDER_KEYS, AGENT_ORDER_NAMES, parse_filter};
use crate::domain::values::{self, NotificationPreferences};
use crate::domain::{AgentStatus, password};
use crate::error::{Result, StaffError, reason};
use crate::service::{AgentPatch, NewInvitation, ProfilePatch, RequestKey, Staff, TeamsChange};
use crate::store::invitations::Open;

#[derive(Clone)]
pub struct StaffApi {
    staff: Staff,
    /// Ends the revocation streams when the server begins to shut down.
    closing: roster_service::Closing,
}

impl StaffApi {
    pub fn new(staff: Staff, closing: roster_service::Closing) -> Self {
        Self { staff, closing }
    }
}

/// The verified caller and the audit actor built from it and the request's context.
fn caller<T>(request: &Request<T>) -> Result<(Principal, Actor)> {
    let (principal, actor) = roster_auth::caller(request).map_err(|status| {
        StaffError::refused(
            tonic::Code::Unauthenticated,
            reason::UNAUTHENTICATED,
            None,
            status.message().to_owned(),
        )
    })?;
    denials::note_caller(&actor);
    Ok((principal, actor))
}

/// Checks the workspace id and the caller's right to call `method` in it.
fn workspace(principal: &Principal, workspace_id: &str, method: &str) -> Result<String> {
    let workspace_id = values::workspace_id("workspace_id", workspace_id)?;
    authz::authorize(principal, &workspace_id, method)?;
    roster_runtime::record_workspace(&workspace_id);
    Ok(workspace_id)
}

/// Collects every violation of a request before answering, so a caller fixes all at once.
#[derive(Default)]
struct Checks(Vec<FieldViolation>);

impl Checks {
    fn take<T: Default>(&mut self, checked: std::result::Result<T, FieldViolation>) -> T {
        checked.unwrap_or_else(|violation| {
            self.0.push(violation);
            T::default()
        })
    }

    fn take_all<T: Default>(&mut self, checked: std::result::Result<T, Vec<FieldViolation>>) -> T {
        checked.unwrap_or_else(|violations| {
            self.0.extend(violations);
            T::default()
        })
    }

    fn done(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(StaffError::Invalid(self.0))
        }
    }
}

impl StaffApi {
    /// Runs one handler's work and answers it; a PERMISSION_DENIED answer is audited first.
    async fn respond<T>(
        &self,
        work: impl Future<Output = Result<T>>,
    ) -> std::result::Result<Response<T>, Status> {
        let (result, denial) = denials::watch(work).await;
        if let (Err(error), Some(denial)) = (&result, denial) {
            let (reason, message) = denials::Denial::refusal(error);
            if let Err(failure) = self
                .staff
                .record_denial(
                    &denial.actor,
                    &denial.workspace_id,
                    &denial.method,
                    reason,
                    &message,
                )
                .await
            {
                // The caller still gets its refusal; the lost record is an operator's problem.
                tracing::error!(error = %failure, method = %denial.method, "could not audit a denied call");
            }
        }
        result.map(Response::new).map_err(Status::from)
    }
}

fn request_key(
    operation: &str,
    request_id: &str,
    content: &impl prost::Message,
) -> std::result::Result<Option<RequestKey>, FieldViolation> {
    if request_id.is_empty() {
        return Ok(None);
    }
    let id = values::request_id("request_id", request_id)?;
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(content.encode_to_vec());
    Ok(Some(RequestKey {
        id,
        fingerprint: format!("{:x}", hasher.finalize()),
    }))
}

fn invite_response(
    staff: &Staff,
    invited: crate::service::Invited,
) -> Result<pb::InviteAgentResponse> {
    let invitation = convert::invitation(invited.invitation, &invited.agent.agent, staff.now());
    Ok(pb::InviteAgentResponse {
        agent: Some(convert::agent(invited.agent)?),
        invitation: Some(invitation),
        secret: invited.secret.unwrap_or_default(),
        replayed: invited.replayed,
    })
}

/// The agent id and optional etag of a call on one agent, both checked at once.
fn agent_and_etag(agent_id: &str, etag: &str) -> Result<(uuid::Uuid, Option<i64>)> {
    let mut checks = Checks::default();
    let agent_id = checks.take(values::id("agent_id", agent_id).map(Some));
    let version = checks.take(parse_etag("etag", etag));
    checks.done()?;
    let agent_id = agent_id.ok_or_else(|| StaffError::invalid("agent_id", "is required"))?;
    Ok((agent_id, version))
}

#[tonic::async_trait]
impl StaffService for StaffApi {
    async fn invite_agent(
        &self,
        request: Request<pb::InviteAgentRequest>,
    ) -> std::result::Result<Response<pb::InviteAgentResponse>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let message = request.into_inner();
            let workspace_id = workspace(&principal, &message.workspace_id, "InviteAgent")?;
            let mut content = message.clone();
            content.request_id = String::new();
            let pb::InviteAgentRequest {
                workspace_id: _,
                email,
                name,
                role,
                team_ids,
                request_id,
            } = message;
            let mut checks = Checks::default();
            let email = checks.take(values::email("email", &email));
            let name = checks.take(values::name("name", &name));
            let role = checks.take(values::role("role", &role, true));
            let team_ids = checks.take_all(values::team_ids("team_ids", &team_ids));
            let request = checks.take(request_key("InviteAgent", &request_id, &content));
            checks.done()?;
            let granter = authz::granter(&principal, &workspace_id)?;
            let invited = self
                .staff
                .invite_agent(
                    &actor,
                    &workspace_id,
                    &granter,
                    NewInvitation {
                        email,
                        name,
                        role,
                        team_ids,
                        request,
                    },
                )
                .await?;
            invite_response(&self.staff, invited)
        })
        .await
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> std::result::Result<Response<pb::InviteAgentResponse>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::ResendInvitationRequest {
                workspace_id,
                agent_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ResendInvitation")?;
            let agent_id = values::id("agent_id", &agent_id)?;
            let invited = self
                .staff
                .resend_invitation(&actor, &workspace_id, agent_id)
                .await?;
            invite_response(&self.staff, invited)
        })
        .await
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::RevokeInvitationRequest {
                workspace_id,
                agent_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "RevokeInvitation")?;
            let agent_id = values::id("agent_id", &agent_id)?;
            convert::agent(
                self.staff
                    .revoke_invitation(&actor, &workspace_id, agent_id)
                    .await?,
            )
        })
        .await
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> std::result::Result<Response<pb::ListInvitationsResponse>, Status> {
        self.respond(async {
            let (principal, _) = caller(&request)?;
            let pb::ListInvitationsRequest {
                workspace_id,
                page_size: size,
                page_token,
                state,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ListInvitations")?;
            let open = match pb::InvitationState::try_from(state) {
                Ok(pb::InvitationState::Unspecified) => Open::Both,
                Ok(pb::InvitationState::Pending) => Open::Pending,
                Ok(pb::InvitationState::Expired) => Open::Expired,
                Err(_) => {
                    return Err(StaffError::invalid(
                        "state",
                        format!("{state} is not an invitation state"),
                    ));
                }
            };
            let limit = page_size(size)?;
            let fingerprint = query_fingerprint(&["invitations", &state.to_string()]);
            let after = Cursor::decode(&page_token, &fingerprint)?;
            let rows = self
                .staff
                .list_invitations(&workspace_id, open, after.as_ref(), limit + 1)
                .await?;
            let keep = usize::try_from(limit).unwrap_or(usize::MAX);
            let next = if rows.len() > keep {
                rows.get(keep - 1)
                    .map(|(row, _)| {
                        Cursor {
                            text: None,
                            number: Some(row.created_at),
                            id: Some(row.invitation_id.to_string()),
                            query: fingerprint.clone(),
                        }
                        .encode()
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let now = self.staff.now();
            Ok(pb::ListInvitationsResponse {
                invitations: rows
                    .into_iter()
                    .take(keep)
                    .map(|(row, agent)| convert::invitation(row, &agent, now))
                    .collect(),
                next_page_token: next,
            })
        })
        .await
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            // Public: no principal; the secret is the credential.
            let context = request
                .extensions()
                .get::<RequestContext>()
                .cloned()
                .unwrap_or_default();
            let pb::AcceptInvitationRequest {
                workspace_id,
                secret,
                name,
                password,
            } = request.into_inner();
            let mut checks = Checks::default();
            let workspace_id = checks.take(values::workspace_id("workspace_id", &workspace_id));
            if secret.is_empty() {
                checks.0.push(FieldViolation::new("secret", "is required"));
            } else if secret.len() > 256 {
                checks
                    .0
                    .push(FieldViolation::new("secret", "is not an invitation secret"));
            }
            let name = checks.take(values::name("name", &name));
            checks.take(password::check("password", &password));
            checks.done()?;
            // A wrong secret is refused before any password hashing is spent on it.
            self.staff.check_invitation(&workspace_id, &secret).await?;
            let hash = tokio::task::spawn_blocking(move || password::hash(&password))
                .await
                .map_err(|error| StaffError::Internal(format!("password hashing task: {error}")))?
                .map_err(StaffError::Internal)?;
            let name = (!name.is_empty()).then_some(name);
            convert::agent(
                self.staff
                    .accept_invitation(context, &workspace_id, &secret, name, hash)
                    .await?,
            )
        })
        .await
    }

    async fn get_agent(
        &self,
        request: Request<pb::GetAgentRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, _) = caller(&request)?;
            let pb::GetAgentRequest {
                workspace_id,
                agent_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetAgent")?;
            let agent_id = values::id("agent_id", &agent_id)?;
            convert::agent(self.staff.get_agent(&workspace_id, agent_id).await?)
        })
        .await
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> std::result::Result<Response<pb::ListAgentsResponse>, Status> {
        self.respond(async {
            let (principal, _) = caller(&request)?;
            let pb::ListAgentsRequest {
                workspace_id,
                page_size: size,
                page_token,
                filter,
                order_by,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ListAgents")?;
            let mut checks = Checks::default();
            let limit = checks.take(page_size(size));
            let parsed = checks.take(parse_filter(&filter));
            let order = checks.take(Order::parse(&order_by, AGENT_ORDER_KEYS, AGENT_ORDER_NAMES));
            checks.done()?;
            let fingerprint = query_fingerprint(&[&filter, &format!("{:?}", order)]);
            let after = Cursor::decode(&page_token, &fingerprint)?;
            let rows = self
                .staff
                .list_agents(&workspace_id, &parsed, order, after.as_ref(), limit + 1)
                .await?;
            let keep = usize::try_from(limit).unwrap_or(usize::MAX);
            let next = if rows.len() > keep {
                rows.get(keep - 1)
                    .map(|view| {
                        crate::store::agents::cursor_of(&view.agent, order.key, fingerprint.clone())
                            .encode()
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let agents = rows
                .into_iter()
                .take(keep)
                .map(convert::agent)
                .collect::<Result<Vec<_>>>()?;
            Ok(pb::ListAgentsResponse {
                agents,
                next_page_token: next,
            })
        })
        .await
    }

    async fn update_agent(
        &self,
        request: Request<pb::UpdateAgentRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UpdateAgentRequest {
                workspace_id,
                agent,
                update_mask,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "UpdateAgent")?;
            let agent = agent.ok_or_else(|| StaffError::invalid("agent", "is required"))?;
            let mut checks = Checks::default();
            let agent_id = checks.take(values::id("agent.agent_id", &agent.agent_id).map(Some));
            let version = checks.take(parse_etag("agent.etag", &agent.etag));
            let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
            let fields = checks.take_all(fields_to_update(
                paths,
                "agent",
                &["role", "team_ids", "extra_permissions", "status"],
                |field| match field {
                    "role" => !agent.role.is_empty(),
                    "team_ids" => !agent.team_ids.is_empty(),
                    "extra_permissions" => !agent.extra_permissions.is_empty(),
                    "status" => agent.status != 0,
                    _ => false,
                },
            ));
            let mut patch = AgentPatch::default();
            for field in &fields {
                match field.as_str() {
                    "role" => {
                        patch.role =
                            Some(checks.take(values::role("agent.role", &agent.role, false)))
                    }
                    "team_ids" => {
                        patch.teams = Some(TeamsChange::Set(
                            checks.take_all(values::team_ids("agent.team_ids", &agent.team_ids)),
                        ))
                    }
                    "extra_permissions" => {
                        patch.extra_permissions = Some(checks.take_all(values::permissions(
                            "agent.extra_permissions",
                            &agent.extra_permissions,
                        )))
                    }
                    _ => {
                        patch.status = match pb::AgentStatus::try_from(agent.status) {
                            Ok(pb::AgentStatus::Active) => Some(AgentStatus::Active),
                            Ok(pb::AgentStatus::Deactivated) => Some(AgentStatus::Deactivated),
                            _ => {
                                checks.0.push(FieldViolation::new(
                                    "agent.status",
                                    "can be set to ACTIVE (reactivate) or DEACTIVATED only",
                                ));
                                None
                            }
                        }
                    }
                }
            }
            checks.done()?;
            let agent_id =
                agent_id.ok_or_else(|| StaffError::invalid("agent.agent_id", "is required"))?;
            let granter = authz::granter(&principal, &workspace_id)?;
            convert::agent(
                self.staff
                    .update_agent(
                        &actor,
                        &workspace_id,
                        agent_id,
                        version,
                        authz::caller_agent(&principal),
                        Some(&granter),
                        patch,
                    )
                    .await?,
            )
        })
        .await
    }

    async fn update_my_profile(
        &self,
        request: Request<pb::UpdateMyProfileRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UpdateMyProfileRequest {
                workspace_id,
                profile,
                update_mask,
                etag,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "UpdateMyProfile")?;
            let agent_id = authz::own_agent(&principal)?;
            let profile = profile.unwrap_or_default();
            let mut checks = Checks::default();
            let version = checks.take(parse_etag("etag", &etag));
            let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
            let fields = checks.take_all(fields_to_update(
                paths,
                "profile",
                &[
                    "name",
                    "avatar_url",
                    "notification_preferences",
                    "signature",
                    "theme",
                    "language",
                ],
                |field| match field {
                    "name" => !profile.name.is_empty(),
                    "avatar_url" => !profile.avatar_url.is_empty(),
                    "notification_preferences" => profile.notification_preferences.is_some(),
                    "signature" => !profile.signature.is_empty(),
                    "theme" => profile.theme != 0,
                    "language" => !profile.language.is_empty(),
                    _ => false,
                },
            ));
            let mut patch = ProfilePatch::default();
            for field in &fields {
                match field.as_str() {
                    "name" => {
                        patch.name = Some(checks.take(values::name("profile.name", &profile.name)))
                    }
                    "avatar_url" => {
                        patch.avatar_url = Some(if profile.avatar_url.trim().is_empty() {
                            String::new()
                        } else {
                            checks.take(values::url("profile.avatar_url", &profile.avatar_url))
                        })
                    }
                    "notification_preferences" => {
                        let pb::NotificationPreferences {
                            email_on_assignment,
                            email_on_mention,
                            email_on_new_team_ticket,
                            desktop,
                        } = profile.notification_preferences.unwrap_or_default();
                        let prefs = NotificationPreferences {
                            email_on_assignment,
                            email_on_mention,
                            email_on_new_team_ticket,
                            desktop,
                        };
                        patch.notification_preferences = Some(
                            serde_json::to_string(&prefs)
                                .map_err(|error| StaffError::Internal(error.to_string()))?,
                        );
                    }
                    "signature" => {
                        patch.signature = Some(checks.take(values::text(
                            "profile.signature",
                            &profile.signature,
                            values::MAX_SIGNATURE_CHARS,
                            true,
                        )))
                    }
                    "theme" => {
                        patch.theme = Some(match pb::Theme::try_from(profile.theme) {
                            Ok(pb::Theme::Light) => "light".to_owned(),
                            Ok(pb::Theme::Dark) => "dark".to_owned(),
                            Ok(pb::Theme::Unspecified) => String::new(),
                            Err(_) => {
                                checks.0.push(FieldViolation::new(
                                    "profile.theme",
                                    "must be LIGHT or DARK",
                                ));
                                String::new()
                            }
                        })
                    }
                    _ => {
                        patch.language = Some(
                            checks.take(values::language("profile.language", &profile.language)),
                        )
                    }
                }
            }
            checks.done()?;
            convert::agent(
                self.staff
                    .update_my_profile(&actor, &workspace_id, agent_id, version, patch)
                    .await?,
            )
        })
        .await
    }

    async fn deactivate_agent(
        &self,
        request: Request<pb::DeactivateAgentRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::DeactivateAgentRequest {
                workspace_id,
                agent_id,
                reason,
                etag,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "DeactivateAgent")?;
            let mut checks = Checks::default();
            let agent_id = checks.take(values::id("agent_id", &agent_id).map(Some));
            let reason = checks.take(values::text(
                "reason",
                &reason,
                values::MAX_REASON_CHARS,
                false,
            ));
            let version = checks.take(parse_etag("etag", &etag));
            checks.done()?;
            let agent_id =
                agent_id.ok_or_else(|| StaffError::invalid("agent_id", "is required"))?;
            convert::agent(
                self.staff
                    .deactivate_agent(&actor, &workspace_id, agent_id, version, reason)
                    .await?,
            )
        })
        .await
    }

    async fn reactivate_agent(
        &self,
        request: Request<pb::ReactivateAgentRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::ReactivateAgentRequest {
                workspace_id,
                agent_id,
                etag,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ReactivateAgent")?;
            let (agent_id, version) = agent_and_etag(&agent_id, &etag)?;
            convert::agent(
                self.staff
                    .reactivate_agent(&actor, &workspace_id, agent_id, version)
                    .await?,
            )
        })
        .await
    }

    async fn erase_agent(
        &self,
        request: Request<pb::EraseAgentRequest>,
    ) -> std::result::Result<Response<pb::Agent>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::EraseAgentRequest {
                workspace_id,
                agent_id,
                keep_name,
                etag,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "EraseAgent")?;
            let (agent_id, version) = agent_and_etag(&agent_id, &etag)?;
            convert::agent(
                self.staff
                    .erase_agent(&actor, &workspace_id, agent_id, version, keep_name)
                    .await?,
            )
        })
        .await
    }

    async fn bulk_invite_agents(
        &self,
        request: Request<tonic::Streaming<pb::BulkInviteAgentsRequest>>,
    ) -> std::result::Result<Response<pb::BulkInviteAgentsResponse>, Status> {
        self.respond(bulk::invite_agents(&self.staff, request))
            .await
    }

    async fn bulk_update_agents(
        &self,
        request: Request<pb::BulkUpdateAgentsRequest>,
    ) -> std::result::Result<Response<pb::BulkAgentsResponse>, Status> {
        self.respond(bulk::update_agents(&self.staff, request))
            .await
    }

    async fn bulk_deactivate_agents(
        &self,
        request: Request<pb::BulkDeactivateAgentsRequest>,
    ) -> std::result::Result<Response<pb::BulkAgentsResponse>, Status> {
        self.respond(bulk::deactivate_agents(&self.staff, request))
            .await
    }

    async fn create_team(
        &self,
        request: Request<pb::CreateTeamRequest>,
    ) -> std::result::Result<Response<pb::Team>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::CreateTeamRequest { workspace_id, team } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "CreateTeam")?;
            let team = team.ok_or_else(|| StaffError::invalid("team", "is required"))?;
            let mut checks = Checks::default();
            let name = checks.take(values::name("team.name", &team.name));
            if name.is_empty() && checks.0.is_empty() {
                checks
                    .0
                    .push(FieldViolation::new("team.name", "is required"));
            }
            let description = checks.take(values::text(
                "team.description",
                &team.description,
                values::MAX_DESCRIPTION_CHARS,
                true,
            ));
            let permissions =
                checks.take_all(values::permissions("team.permissions", &team.permissions));
            checks.done()?;
            let granter = authz::granter(&principal, &workspace_id)?;
            convert::team(
                self.staff
                    .create_team(
                        &actor,
                        &workspace_id,
                        &granter,
                        &name,
                        &description,
                        &permissions.into_iter().collect(),
                    )
                    .await?,
            )
        })
        .await
    }

    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> std::result::Result<Response<pb::ListTeamsResponse>, Status> {
        self.respond(async {
            let (principal, _) = caller(&request)?;
            let pb::ListTeamsRequest {
                workspace_id,
                page_size: size,
                page_token,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ListTeams")?;
            let limit = page_size(size)?;
            let fingerprint = query_fingerprint(&["teams"]);
            let after = Cursor::decode(&page_token, &fingerprint)?;
            let rows = self
                .staff
                .list_teams(&workspace_id, after.as_ref(), limit + 1)
                .await?;
            let keep = usize::try_from(limit).unwrap_or(usize::MAX);
            let next = if rows.len() > keep {
                rows.get(keep - 1)
                    .map(|team| {
                        Cursor {
                            text: Some(team.row.name_key.clone()),
                            number: None,
                            id: Some(team.row.team_id.to_string()),
                            query: fingerprint.clone(),
                        }
                        .encode()
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListTeamsResponse {
                teams: rows
                    .into_iter()
                    .take(keep)
                    .map(convert::team)
                    .collect::<Result<Vec<_>>>()?,
                next_page_token: next,
            })
        })
        .await
    }

    async fn set_seat_limit(
        &self,
        request: Request<pb::SetSeatLimitRequest>,
    ) -> std::result::Result<Response<pb::WorkspaceUsage>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::SetSeatLimitRequest {
                workspace_id,
                seat_limit,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "SetSeatLimit")?;
            let seat_limit = values::seat_limit("seat_limit", seat_limit)?;
            let usage = self
                .staff
                .set_seat_limit(&actor, &workspace_id, seat_limit)
                .await?;
            Ok(convert::usage(workspace_id, usage))
        })
        .await
    }

    async fn get_workspace_usage(
        &self,
        request: Request<pb::GetWorkspaceUsageRequest>,
    ) -> std::result::Result<Response<pb::WorkspaceUsage>, Status> {
        self.respond(async {
            let (principal, _) = caller(&request)?;
            let pb::GetWorkspaceUsageRequest { workspace_id } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetWorkspaceUsage")?;
            let usage = self.staff.usage(&workspace_id).await?;
            Ok(convert::usage(workspace_id, usage))
        })
        .await
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> std::result::Result<Response<pb::LoginResponse>, Status> {
        self.respond(sign_in::login(self, request)).await
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> std::result::Result<Response<pb::LoginResponse>, Status> {
        self.respond(sign_in::refresh_token(self, request)).await
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> std::result::Result<Response<pb::LogoutResponse>, Status> {
        self.respond(sign_in::logout(self, request)).await
    }

    async fn list_login_history(
        &self,
        request: Request<pb::ListLoginHistoryRequest>,
    ) -> std::result::Result<Response<pb::ListLoginHistoryResponse>, Status> {
        self.respond(sign_in::list_login_history(self, request))
            .await
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> std::result::Result<Response<pb::ServiceAccountWithSecret>, Status> {
        self.respond(service_accounts::create(self, request)).await
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> std::result::Result<Response<pb::ListServiceAccountsResponse>, Status> {
        self.respond(service_accounts::list(self, request)).await
    }

    async fn rotate_service_account_secret(
        &self,
        request: Request<pb::RotateServiceAccountSecretRequest>,
    ) -> std::result::Result<Response<pb::ServiceAccountWithSecret>, Status> {
        self.respond(service_accounts::rotate_secret(self, request))
            .await
    }

    async fn revoke_service_account(
        &self,
        request: Request<pb::RevokeServiceAccountRequest>,
    ) -> std::result::Result<Response<pb::ServiceAccount>, Status> {
        self.respond(service_accounts::revoke(self, request)).await
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> std::result::Result<Response<pb::IssueServiceTokenResponse>, Status> {
        self.respond(service_accounts::issue_token(self, request))
            .await
    }

    type WatchRevocationsStream = revocations::RevocationStream;

    async fn watch_revocations(
        &self,
        _request: Request<pb::WatchRevocationsRequest>,
    ) -> std::result::Result<Response<Self::WatchRevocationsStream>, Status> {
        Ok(Response::new(revocations::watch(
            &self.staff,
            self.closing.clone(),
        )))
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> std::result::Result<Response<pb::GetJwksResponse>, Status> {
        self.respond(async {
            let pb::GetJwksRequest {} = request.into_inner();
            let jwks = self.staff.keys().jwks().await?;
            Ok(convert::jwks(jwks))
        })
        .await
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> std::result::Result<Response<pb::RotateSigningKeyResponse>, Status> {
        self.respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::RotateSigningKeyRequest {} = request.into_inner();
            authz::authorize_platform(&principal, "RotateSigningKey")?;
            let rotation = self.staff.keys().rotate(&actor).await?;
            Ok(convert::rotation(rotation))
        })
        .await
    }

    async fn list_permissions(
        &self,
        request: Request<pb::ListPermissionsRequest>,
    ) -> std::result::Result<Response<pb::ListPermissionsResponse>, Status> {
        self.respond(roles::list_permissions(request)).await
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> std::result::Result<Response<pb::Role>, Status> {
        self.respond(roles::create_role(&self.staff, request)).await
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> std::result::Result<Response<pb::Role>, Status> {
        self.respond(roles::get_role(&self.staff, request)).await
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> std::result::Result<Response<pb::Role>, Status> {
        self.respond(roles::update_role(&self.staff, request)).await
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> std::result::Result<Response<()>, Status> {
        self.respond(roles::delete_role(&self.staff, request)).await
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> std::result::Result<Response<pb::ListRolesResponse>, Status> {
        self.respond(roles::list_roles(&self.staff, request)).await
    }

    async fn get_team(
        &self,
        request: Request<pb::GetTeamRequest>,
    ) -> std::result::Result<Response<pb::Team>, Status> {
        self.respond(teams::get_team(&self.staff, request)).await
    }

    async fn update_team(
        &self,
        request: Request<pb::UpdateTeamRequest>,
    ) -> std::result::Result<Response<pb::Team>, Status> {
        self.respond(teams::update_team(&self.staff, request)).await
    }

    async fn delete_team(
        &self,
        request: Request<pb::DeleteTeamRequest>,
    ) -> std::result::Result<Response<()>, Status> {
        self.respond(teams::delete_team(&self.staff, request)).await
    }

    async fn add_team_members(
        &self,
        request: Request<pb::AddTeamMembersRequest>,
    ) -> std::result::Result<Response<pb::TeamMembersChanged>, Status> {
        self.respond(teams::add_team_members(&self.staff, request))
            .await
    }

    async fn remove_team_members(
        &self,
        request: Request<pb::RemoveTeamMembersRequest>,
    ) -> std::result::Result<Response<pb::TeamMembersChanged>, Status> {
        self.respond(teams::remove_team_members(&self.staff, request))
            .await
    }

    async fn list_team_members(
        &self,
        request: Request<pb::ListTeamMembersRequest>,
    ) -> std::result::Result<Response<pb::ListTeamMembersResponse>, Status> {
        self.respond(teams::list_team_members(&self.staff, request))
            .await
    }

    async fn get_effective_permissions(
        &self,
        request: Request<pb::GetEffectivePermissionsRequest>,
    ) -> std::result::Result<Response<pb::EffectivePermissions>, Status> {
        self.respond(access::get_effective_permissions(&self.staff, request))
            .await
    }

    async fn explain_access(
        &self,
        request: Request<pb::ExplainAccessRequest>,
    ) -> std::result::Result<Response<pb::AccessExplanation>, Status> {
        self.respond(access::explain_access(&self.staff, request))
            .await
    }

    async fn create_sso_connection(
        &self,
        request: Request<pb::CreateSsoConnectionRequest>,
    ) -> std::result::Result<Response<pb::SsoConnection>, Status> {
        self.respond(sso::create(&self.staff, request)).await
    }

    async fn get_sso_connection(
        &self,
        request: Request<pb::GetSsoConnectionRequest>,
    ) -> std::result::Result<Response<pb::SsoConnection>, Status> {
        self.respond(sso::get(&self.staff, request)).await
    }

    async fn list_sso_connections(
        &self,
        request: Request<pb::ListSsoConnectionsRequest>,
    ) -> std::result::Result<Response<pb::ListSsoConnectionsResponse>, Status> {
        self.respond(sso::list(&self.staff, request)).await
    }

    async fn update_sso_connection(
        &self,
        request: Request<pb::UpdateSsoConnectionRequest>,
    ) -> std::result::Result<Response<pb::SsoConnection>, Status> {
        self.respond(sso::update(&self.staff, request)).await
    }

    async fn delete_sso_connection(
        &self,
        request: Request<pb::DeleteSsoConnectionRequest>,
    ) -> std::result::Result<Response<()>, Status> {
        self.respond(sso::delete(&self.staff, request)).await
    }

    async fn test_sso_connection(
        &self,
        request: Request<pb::TestSsoConnectionRequest>,
    ) -> std::result::Result<Response<pb::TestSsoConnectionResponse>, Status> {
        self.respond(sso::test(&self.staff, request)).await
    }

    async fn sso_login(
        &self,
        request: Request<pb::SsoLoginRequest>,
    ) -> std::result::Result<Response<pb::LoginResponse>, Status> {
        self.respond(sso::sso_login(&self.staff, request)).await
    }
}
