//! gRPC handlers: the only place that knows protobuf. Each handler has one shape:
//! destructure the request, check the workspace id, authorize (`authz`), validate fields,
//! call the service, convert.

pub mod authz;
pub mod convert;
mod watch;

use std::collections::BTreeSet;
use std::future::Future;

use roster_auth::Principal;
use roster_core::FieldViolation;
use roster_core::paging::{Cursor, page_size, query_fingerprint};
use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::audit_service_server::AuditService;
use tonic::{Request, Response, Status};

use crate::domain::tree::as_i64;
use crate::domain::values;
use crate::error::{AuditError, Result, reason};
use crate::service::{Audit, LeafRef, SubjectType, retention_period};
use crate::store::events::Filter;

/// The most events one AppendEvents may carry: a relay's batch, small enough to commit in
/// one transaction of bounded size.
pub const MAX_BATCH: usize = 1000;

#[derive(Clone)]
pub struct AuditApi {
    audit: Audit,
    /// Ends the event streams when the server begins to shut down.
    closing: roster_service::Closing,
}

impl AuditApi {
    pub fn new(audit: Audit, closing: roster_service::Closing) -> Self {
        Self { audit, closing }
    }
}

fn caller<T>(request: &Request<T>) -> Result<Principal> {
    roster_auth::principal_of(request).map_err(|status| {
        AuditError::refused(
            tonic::Code::Unauthenticated,
            reason::UNAUTHENTICATED,
            None,
            status.message().to_owned(),
        )
    })
}

/// The verified caller and the actor its changes are recorded under (with the request's
/// context).
fn caller_and_actor<T>(request: &Request<T>) -> Result<(Principal, roster_core::Actor)> {
    roster_auth::caller(request).map_err(|status| {
        AuditError::refused(
            tonic::Code::Unauthenticated,
            reason::UNAUTHENTICATED,
            None,
            status.message().to_owned(),
        )
    })
}

/// Checks the workspace id and the caller's right to call `method` in it.
fn workspace(principal: &Principal, workspace_id: &str, method: &str) -> Result<String> {
    let workspace_id = values::workspace_id("workspace_id", workspace_id)?;
    authz::authorize(principal, &workspace_id, method)?;
    roster_runtime::record_workspace(&workspace_id);
    Ok(workspace_id)
}

async fn respond<T>(
    work: impl Future<Output = Result<T>>,
) -> std::result::Result<Response<T>, Status> {
    work.await.map(Response::new).map_err(Status::from)
}

fn done(violations: Vec<FieldViolation>) -> Result<()> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AuditError::Invalid(violations))
    }
}

fn size(field: &str, value: i64) -> std::result::Result<Option<u64>, FieldViolation> {
    match u64::try_from(value) {
        Err(_) => Err(FieldViolation::new(field, "must not be negative")),
        Ok(0) => Ok(None),
        Ok(size) => Ok(Some(size)),
    }
}

fn hashes(path: Vec<[u8; 32]>) -> Vec<Vec<u8>> {
    path.into_iter().map(|hash| hash.to_vec()).collect()
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn append_events(
        &self,
        request: Request<pb::AppendEventsRequest>,
    ) -> std::result::Result<Response<pb::AppendEventsResponse>, Status> {
        respond(async {
            let principal = caller(&request)?;
            authz::require_service(&principal)?;
            let pb::AppendEventsRequest { events } = request.into_inner();
            // Authorized first, for every workspace named well enough to be one: a caller
            // learns nothing about a batch it may not send.
            let named: BTreeSet<&str> = events
                .iter()
                .map(|event| event.workspace_id.as_str())
                .filter(|id| values::workspace_id("workspace_id", id).is_ok())
                .collect();
            // A relay's batch may span workspaces; the span names one only when it is one.
            if named.len() == 1
                && let Some(only) = named.first()
            {
                roster_runtime::record_workspace(only);
            }
            for workspace_id in named {
                authz::authorize(&principal, workspace_id, "AppendEvents")?;
            }
            if events.is_empty() || events.len() > MAX_BATCH {
                return Err(FieldViolation::new(
                    "events",
                    format!("send 1 to {MAX_BATCH} events, not {}", events.len()),
                )
                .into());
            }
            let mut violations = Vec::new();
            let checked: Vec<_> = events
                .into_iter()
                .enumerate()
                .filter_map(|(at, event)| {
                    convert::new_event(&format!("events[{at}]"), event, &mut violations)
                })
                .collect();
            done(violations)?;
            let appended = self.audit.append(checked).await?;
            Ok(pb::AppendEventsResponse {
                events: appended
                    .into_iter()
                    .map(|appended| pb::AppendedEvent {
                        event_id: appended.event_id.to_string(),
                        workspace_id: appended.workspace_id,
                        leaf_index: appended.leaf_index,
                        already_recorded: appended.already_recorded,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> std::result::Result<Response<pb::ListEventsResponse>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::ListEventsRequest {
                workspace_id,
                page_size: size,
                page_token,
                actor_id,
                target_type,
                target_id,
                action_prefix,
                occurred_after,
                occurred_before,
                outcome,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ListEvents")?;
            let mut violations = Vec::new();
            let mut take = |checked: std::result::Result<Option<String>, FieldViolation>| {
                checked.unwrap_or_else(|violation| {
                    violations.push(violation);
                    None
                })
            };
            let nonempty = |value: String| Some(value).filter(|v| !v.is_empty());
            let filter = Filter {
                actor_id: take(values::text("actor_id", &actor_id, 256, false).map(nonempty)),
                target_type: take(
                    values::text("target_type", &target_type, 64, false).map(nonempty),
                ),
                target_id: take(values::text("target_id", &target_id, 256, false).map(nonempty)),
                action_prefix: take(
                    values::action_prefix("action_prefix", &action_prefix).map(nonempty),
                ),
                occurred_after: None,
                occurred_before: None,
                outcome: None,
            };
            let mut filter = filter;
            if filter.target_id.is_some() && filter.target_type.is_none() {
                violations.push(FieldViolation::new(
                    "target_type",
                    "is required with target_id (ids are unique per type)",
                ));
            }
            for (field, ts, into) in [
                ("occurred_after", occurred_after, &mut filter.occurred_after),
                (
                    "occurred_before",
                    occurred_before,
                    &mut filter.occurred_before,
                ),
            ] {
                if let Some(ts) = ts {
                    match convert::timestamp_us(field, &ts) {
                        Ok(us) => *into = Some(us),
                        Err(violation) => violations.push(violation),
                    }
                }
            }
            match pb::Outcome::try_from(outcome) {
                Ok(pb::Outcome::Unspecified) => {}
                Ok(value) => {
                    filter.outcome = convert::outcome(value).map(|o| o.as_str().to_owned());
                }
                Err(_) => violations.push(FieldViolation::new("outcome", "is not an outcome")),
            }
            let limit = match page_size(size) {
                Ok(limit) => limit,
                Err(violation) => {
                    violations.push(violation);
                    0
                }
            };
            done(violations)?;
            let fingerprint = query_fingerprint(&[&format!("{filter:?}")]);
            let after = Cursor::decode(&page_token, &fingerprint)?;
            let before_leaf = match after {
                None => None,
                Some(Cursor {
                    number: Some(leaf), ..
                }) => Some(leaf),
                Some(_) => {
                    return Err(FieldViolation::new(
                        "page_token",
                        "is not a token this list returned; start again without it",
                    )
                    .into());
                }
            };
            let mut rows = self
                .audit
                .list(&workspace_id, &filter, before_leaf, limit + 1)
                .await?;
            let keep = usize::try_from(limit).unwrap_or(usize::MAX);
            let next_page_token = if rows.len() > keep {
                rows.truncate(keep);
                rows.last()
                    .map(|last| {
                        Cursor {
                            text: None,
                            number: Some(last.leaf_index),
                            id: None,
                            query: fingerprint.clone(),
                        }
                        .encode()
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListEventsResponse {
                events: rows.into_iter().map(convert::event).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> std::result::Result<Response<pb::AuditEvent>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::GetEventRequest {
                workspace_id,
                event_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetEvent")?;
            let event_id = values::event_id("event_id", &event_id)?;
            Ok(convert::event(
                self.audit.get(&workspace_id, event_id).await?,
            ))
        })
        .await
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> std::result::Result<Response<Self::WatchEventsStream>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::WatchEventsRequest {
                workspace_id,
                from_leaf_index,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "WatchEvents")?;
            let from = from_leaf_index
                .map(|index| {
                    u64::try_from(index)
                        .map_err(|_| FieldViolation::new("from_leaf_index", "must not be negative"))
                })
                .transpose()?;
            let retention = self.audit.retention(&workspace_id).await?;
            let size = retention.tree_size;
            let next = match from {
                None => size,
                Some(from) if from > size => {
                    return Err(AuditError::tree_size_ahead(from, size));
                }
                Some(from) if from < retention.min_index => {
                    return Err(AuditError::events_pruned(retention.min_index));
                }
                Some(from) => from,
            };
            Ok(watch::watch(
                &self.audit,
                self.closing.clone(),
                workspace_id,
                next,
            ))
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> std::result::Result<Response<pb::Checkpoint>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::GetCheckpointRequest { workspace_id } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetCheckpoint")?;
            Ok(convert::checkpoint(
                self.audit.checkpoint(&workspace_id).await?,
            ))
        })
        .await
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> std::result::Result<Response<pb::InclusionProof>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::GetInclusionProofRequest {
                workspace_id,
                leaf,
                tree_size,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetInclusionProof")?;
            let mut violations = Vec::new();
            let leaf = match leaf {
                None => {
                    violations.push(FieldViolation::new(
                        "leaf",
                        "name the event: event_id or leaf_index",
                    ));
                    None
                }
                Some(pb::get_inclusion_proof_request::Leaf::EventId(id)) => {
                    match values::event_id("event_id", &id) {
                        Ok(id) => Some(LeafRef::Event(id)),
                        Err(violation) => {
                            violations.push(violation);
                            None
                        }
                    }
                }
                Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(index)) => {
                    match u64::try_from(index) {
                        Ok(index) => Some(LeafRef::Index(index)),
                        Err(_) => {
                            violations
                                .push(FieldViolation::new("leaf_index", "must not be negative"));
                            None
                        }
                    }
                }
            };
            let tree_size = size("tree_size", tree_size).unwrap_or_else(|violation| {
                violations.push(violation);
                None
            });
            done(violations)?;
            let Some(leaf) = leaf else {
                return Err(AuditError::Internal("a checked leaf went missing".into()));
            };
            let proof = self.audit.inclusion(&workspace_id, leaf, tree_size).await?;
            Ok(pb::InclusionProof {
                event_id: proof.event_id.to_string(),
                leaf_index: as_i64(proof.leaf_index),
                tree_size: as_i64(proof.tree_size),
                leaf_data: proof.leaf_data,
                leaf_hash: proof.leaf_hash.to_vec(),
                hashes: hashes(proof.path),
                root_hash: proof.root.to_vec(),
            })
        })
        .await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> std::result::Result<Response<pb::ConsistencyProof>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::GetConsistencyProofRequest {
                workspace_id,
                old_size,
                new_size,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetConsistencyProof")?;
            let mut violations = Vec::new();
            let old_size = match size("old_size", old_size) {
                Ok(Some(old_size)) => old_size,
                Ok(None) => {
                    violations.push(FieldViolation::new(
                        "old_size",
                        "must be at least 1 (every tree extends the empty one)",
                    ));
                    0
                }
                Err(violation) => {
                    violations.push(violation);
                    0
                }
            };
            let new_size = size("new_size", new_size).unwrap_or_else(|violation| {
                violations.push(violation);
                None
            });
            done(violations)?;
            let proof = self
                .audit
                .consistency(&workspace_id, old_size, new_size)
                .await?;
            Ok(pb::ConsistencyProof {
                old_size: as_i64(proof.old_size),
                new_size: as_i64(proof.new_size),
                hashes: hashes(proof.path),
                old_root_hash: proof.old_root.to_vec(),
                new_root_hash: proof.new_root.to_vec(),
            })
        })
        .await
    }

    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> std::result::Result<Response<pb::VerifyLogResponse>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::VerifyLogRequest { workspace_id } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "VerifyLog")?;
            let verification = self.audit.verify(&workspace_id).await?;
            if let Some(problem) = &verification.problem {
                tracing::warn!(
                    workspace_id,
                    leaf_index = problem.leaf_index,
                    problem = %problem.message,
                    "audit log verification failed"
                );
            }
            Ok(pb::VerifyLogResponse {
                verified: verification.problem.is_none(),
                tree_size: as_i64(verification.tree_size),
                events_checked: as_i64(verification.events_checked),
                checkpoint: verification.checkpoint.map(convert::checkpoint),
                problem: verification.problem.map(convert::problem),
            })
        })
        .await
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> std::result::Result<Response<pb::EraseSubjectResponse>, Status> {
        respond(async {
            let (principal, actor) = caller_and_actor(&request)?;
            let pb::EraseSubjectRequest {
                workspace_id,
                subject_type,
                subject_id,
                erasure_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "EraseSubject")?;
            let mut violations = Vec::new();
            let subject_type = SubjectType::parse(&subject_type);
            if subject_type.is_none() {
                violations.push(FieldViolation::new(
                    "subject_type",
                    "must be 'end_user' or 'agent'",
                ));
            }
            let subject_id =
                values::text("subject_id", &subject_id, 256, true).unwrap_or_else(|violation| {
                    violations.push(violation);
                    String::new()
                });
            let erasure_id = values::event_id("erasure_id", &erasure_id)
                .map(Some)
                .unwrap_or_else(|violation| {
                    violations.push(violation);
                    None
                });
            done(violations)?;
            let (Some(subject_type), Some(erasure_id)) = (subject_type, erasure_id) else {
                return Err(AuditError::Internal("checked fields went missing".into()));
            };
            let erased = self
                .audit
                .erase_subject(
                    &actor,
                    &workspace_id,
                    (subject_type, &subject_id),
                    erasure_id,
                )
                .await?;
            Ok(pb::EraseSubjectResponse {
                events_redacted: as_i64(erased.events_redacted),
                values_erased: as_i64(erased.values_erased),
                erasure_event: Some(pb::AppendedEvent {
                    event_id: erased.event.event_id.to_string(),
                    workspace_id: erased.event.workspace_id,
                    leaf_index: erased.event.leaf_index,
                    already_recorded: erased.event.already_recorded,
                }),
            })
        })
        .await
    }

    async fn get_retention(
        &self,
        request: Request<pb::GetRetentionRequest>,
    ) -> std::result::Result<Response<pb::Retention>, Status> {
        respond(async {
            let principal = caller(&request)?;
            let pb::GetRetentionRequest { workspace_id } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "GetRetention")?;
            Ok(convert::retention(
                self.audit.retention(&workspace_id).await?,
            ))
        })
        .await
    }

    async fn set_retention(
        &self,
        request: Request<pb::SetRetentionRequest>,
    ) -> std::result::Result<Response<pb::Retention>, Status> {
        respond(async {
            let (principal, actor) = caller_and_actor(&request)?;
            let pb::SetRetentionRequest {
                workspace_id,
                retention,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "SetRetention")?;
            let retention = retention.unwrap_or_default();
            if retention.nanos != 0 {
                return Err(FieldViolation::new("retention", "must be whole seconds").into());
            }
            let retention_us = retention_period("retention", retention.seconds)?;
            Ok(convert::retention(
                self.audit
                    .set_retention(&actor, &workspace_id, retention_us)
                    .await?,
            ))
        })
        .await
    }

    async fn place_legal_hold(
        &self,
        request: Request<pb::PlaceLegalHoldRequest>,
    ) -> std::result::Result<Response<pb::LegalHold>, Status> {
        respond(async {
            let (principal, actor) = caller_and_actor(&request)?;
            let pb::PlaceLegalHoldRequest {
                workspace_id,
                subject_id,
                reason,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "PlaceLegalHold")?;
            let mut violations = Vec::new();
            let subject_id =
                values::text("subject_id", &subject_id, 256, false).unwrap_or_else(|violation| {
                    violations.push(violation);
                    String::new()
                });
            let reason = values::text("reason", &reason, 500, true).unwrap_or_else(|violation| {
                violations.push(violation);
                String::new()
            });
            done(violations)?;
            let hold = self
                .audit
                .place_hold(&actor, &workspace_id, &subject_id, &reason)
                .await?;
            Ok(convert::legal_hold(hold))
        })
        .await
    }

    async fn release_legal_hold(
        &self,
        request: Request<pb::ReleaseLegalHoldRequest>,
    ) -> std::result::Result<Response<pb::Retention>, Status> {
        respond(async {
            let (principal, actor) = caller_and_actor(&request)?;
            let pb::ReleaseLegalHoldRequest {
                workspace_id,
                hold_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, "ReleaseLegalHold")?;
            let hold_id = values::event_id("hold_id", &hold_id)?;
            Ok(convert::retention(
                self.audit
                    .release_hold(&actor, &workspace_id, hold_id)
                    .await?,
            ))
        })
        .await
    }

    async fn get_log_key(
        &self,
        request: Request<pb::GetLogKeyRequest>,
    ) -> std::result::Result<Response<pb::LogKey>, Status> {
        respond(async {
            let pb::GetLogKeyRequest { workspace_id } = request.into_inner();
            let workspace_id = values::workspace_id("workspace_id", &workspace_id)?;
            let key = self.audit.log_key(&workspace_id);
            Ok(pb::LogKey {
                workspace_id,
                name: key.name,
                verifier_key: key.verifier_key,
                public_key: key.public_key.to_vec(),
                key_id: key.key_id,
            })
        })
        .await
    }
}
