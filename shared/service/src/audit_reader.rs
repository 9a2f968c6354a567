//! Reading one subject's events back from the audit service, for a producer answering a
//! data subject's access request (the directory's ExportUser).
//!
//! It pages through `ListEvents` twice per subject, once for the events about them and
//! once for those they did themselves, with a platform service token that names
//! `audit_log.view` ([`TokenSource::for_reading`]). A failure is never papered over with a
//! partial answer: an export that silently left out the audit trail would mislead the
//! person who asked for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::relay::TokenSource;

/// The longest one ListEvents page may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// ListEvents' largest page.
const PAGE_SIZE: i32 = 1000;

/// Why the events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditReadError {
    /// The audit service could not be asked or did not answer: worth retrying later.
    #[error("the audit service is unavailable: {0}")]
    Unavailable(String),
    /// The audit service refused the producer's token or request: a configuration fault
    /// (for instance, a service account without `audit_log.view`).
    #[error("the audit service refused to list events: {0}")]
    Refused(String),
    /// More events than the caller's limit.
    #[error("more than {limit} audit events")]
    TooMany { limit: usize },
}

/// A subject whose events to read: events about `target_type`/`id`, and by actor `id`.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub target_type: &'a str,
    pub id: &'a str,
}

/// A client of the audit service's reading side, with its own token source.
#[derive(Clone)]
pub struct AuditReader {
    audit: AuditServiceClient<Channel>,
    tokens: Arc<TokenSource>,
}

impl AuditReader {
    pub fn new(channel: Channel, tokens: TokenSource) -> Self {
        Self {
            audit: AuditServiceClient::new(channel),
            tokens: Arc::new(tokens),
        }
    }

    /// Every recorded event of `workspace_id` about or by any of `subjects`, each once,
    /// in log order (leaf index).
    ///
    /// # Errors
    ///
    /// [`AuditReadError`]; `TooMany` once more than `limit` distinct events were found.
    pub async fn events_about(
        &self,
        workspace_id: &str,
        subjects: &[Subject<'_>],
        limit: usize,
    ) -> Result<Vec<pb::AuditEvent>, AuditReadError> {
        let mut found: BTreeMap<i64, pb::AuditEvent> = BTreeMap::new();
        for subject in subjects {
            let about = pb::ListEventsRequest {
                workspace_id: workspace_id.to_owned(),
                target_type: subject.target_type.to_owned(),
                target_id: subject.id.to_owned(),
                ..Default::default()
            };
            let by = pb::ListEventsRequest {
                workspace_id: workspace_id.to_owned(),
                actor_id: subject.id.to_owned(),
                ..Default::default()
            };
            for filter in [about, by] {
                self.collect(filter, &mut found, limit).await?;
            }
        }
        Ok(found.into_values().collect())
    }

    async fn collect(
        &self,
        filter: pb::ListEventsRequest,
        found: &mut BTreeMap<i64, pb::AuditEvent>,
        limit: usize,
    ) -> Result<(), AuditReadError> {
        let mut page_token = String::new();
        loop {
            let request = pb::ListEventsRequest {
                page_size: PAGE_SIZE,
                page_token: std::mem::take(&mut page_token),
                ..filter.clone()
            };
            let page = self.list(request).await?;
            for event in page.events {
                found.insert(event.leaf_index, event);
                if found.len() > limit {
                    return Err(AuditReadError::TooMany { limit });
                }
            }
            if page.next_page_token.is_empty() {
                return Ok(());
            }
            page_token = page.next_page_token;
        }
    }

    /// One page, with a fresh token after an UNAUTHENTICATED answer (a rotated key or
    /// secret), once.
    async fn list(
        &self,
        message: pb::ListEventsRequest,
    ) -> Result<pb::ListEventsResponse, AuditReadError> {
        let mut renewed = false;
        loop {
            let mut request = self
                .tokens
                .request(message.clone())
                .await
                .map_err(|error| AuditReadError::Unavailable(format!("no token: {error:#}")))?;
            request.set_timeout(CALL_TIMEOUT);
            match self.audit.clone().list_events(request).await {
                Ok(page) => return Ok(page.into_inner()),
                Err(status) if status.code() == Code::Unauthenticated && !renewed => {
                    self.tokens.forget().await;
                    renewed = true;
                }
                Err(status) => return Err(classify(&status)),
            }
        }
    }
}

fn classify(status: &Status) -> AuditReadError {
    let text = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown => AuditReadError::Unavailable(text),
        _ => AuditReadError::Refused(text),
    }
}

impl std::fmt::Debug for AuditReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditReader")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}
