//! The real audit service (`roster_audit::Application`: the runtime's layers, token guard,
//! validation, service and store, its checkpoint key created in its database and sealed
//! with a generated KEK) on the server runtime, the two tokens the bench calls it with, and
//! the events it appends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use roster_audit::domain::SystemClock;
use roster_audit::settings::LogSettings;
use roster_audit::startup::Signing;
use roster_auth::{
    ALL_WORKSPACES, KeySet, PrincipalKind, TokenRequest, TokenSigner, TokenVerifier,
    VerifierSettings, WorkspaceAccess,
};
use roster_db::DbSettings;
use roster_proto::audit::v1 as pb;
use tonic::metadata::{Ascii, MetadataValue};

use crate::service::{self, Running};

/// Distinct end-users the events are about: a user's audit log tab (ListEvents by target)
/// then finds about `events / TARGETS` events.
pub const TARGETS: u64 = 10_000;
/// Distinct agents acting.
const ACTORS: u64 = 50;
const ACTIONS: [&str; 4] = [
    "end_user.updated",
    "end_user.deactivated",
    "end_user.created",
    "customer.updated",
];

/// A running audit service and the `authorization` values to call it with.
pub struct AuditService {
    running: Running,
    /// A producer's token (a platform service for every workspace, `audit_log.append`), as
    /// the directory's and the staff service's relays hold.
    pub producer: MetadataValue<Ascii>,
    /// A reader's token: a platform service for every workspace with `audit_log.view`
    /// (the bench's workspaces are made up as it goes; an admin agent's is checked alike).
    pub reader: MetadataValue<Ascii>,
    /// The key both tokens are signed with, and the keys the service trusts: other
    /// services of the run sign and verify with them too.
    pub signer: TokenSigner,
    pub keys: KeySet,
}

impl AuditService {
    /// Migrates the database and serves the audit service with the server runtime's
    /// defaults, a fresh KEK and the default log origin.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        database: DbSettings,
    ) -> anyhow::Result<Self> {
        let (signer, keys, _) =
            roster_auth::generate_ed25519("bench-key").context("generating a signing key")?;
        let producer = mint(&signer, "bench-relay", &["audit_log.append"])?;
        let reader = mint(&signer, "bench-auditor", &["audit_log.view"])?;
        let verifier = TokenVerifier::new(VerifierSettings::default(), keys.clone());
        let (running, ()) = Running::spawn(runtime, "audit service", async move {
            let db = roster_audit::prepare_database(&database).await?;
            let kek = roster_kek::Keyring::generate("bench").map_err(anyhow::Error::msg)?;
            let app = roster_audit::Application::build(
                service::server_settings(),
                db,
                verifier,
                Arc::new(SystemClock),
                Signing {
                    kek,
                    log: LogSettings::default(),
                },
            )
            .await?;
            Ok((app.into_service_app(), ()))
        })
        .await?;
        Ok(Self {
            running,
            producer: service::bearer(&producer)?,
            reader: service::bearer(&reader)?,
            signer,
            keys,
        })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.addr
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}

/// A platform service's token for every workspace, valid for six hours (a 10 M event log
/// takes a while to load).
fn mint(signer: &TokenSigner, subject: &str, permissions: &[&str]) -> anyhow::Result<String> {
    let settings = VerifierSettings::default();
    signer
        .mint_for(
            &TokenRequest {
                subject: subject.to_owned(),
                kind: PrincipalKind::Service,
                workspaces: [(
                    ALL_WORKSPACES.to_owned(),
                    WorkspaceAccess::new("service", permissions),
                )]
                .into(),
                generation: 0,
                ttl: Duration::from_secs(6 * 3600),
                issuer: settings.issuer,
                audience: settings.audience,
            },
            roster_auth::unix_now(),
        )
        .with_context(|| format!("minting the {subject} token"))
}

/// Numbers the events of a run, so each differs from the last in actor, action and target.
#[derive(Default)]
pub struct EventSource {
    next: AtomicU64,
}

impl EventSource {
    /// The number the next event takes.
    pub fn position(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// `count` new events for `workspaces`, taken in turn (one workspace: all of them).
    pub fn batch(&self, workspaces: &[String], count: usize) -> Vec<pb::AuditEvent> {
        let first = self.next.fetch_add(count as u64, Ordering::Relaxed);
        (0..count as u64)
            .map(|k| {
                let n = first + k;
                let workspace = &workspaces[usize::try_from(n).unwrap_or(0) % workspaces.len()];
                event(workspace, n)
            })
            .collect()
    }
}

/// Event `n` as the directory's relay sends one: an agent changed an end-user's e-mail,
/// with the five personal values an event usually carries (the agent's name, the caller's
/// address and user agent, the value before and after).
pub fn event(workspace_id: &str, n: u64) -> pb::AuditEvent {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let actor = n % ACTORS;
    let target = target_of(n);
    pb::AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        workspace_id: workspace_id.to_owned(),
        occurred_at: Some(prost_types_timestamp(now)),
        actor: Some(pb::Actor {
            kind: pb::ActorKind::Agent as i32,
            id: format!("agent-{actor}"),
            display_name: format!("Agent Number {actor}"),
        }),
        action: ACTIONS[usize::try_from(n % ACTIONS.len() as u64).unwrap_or(0)].to_owned(),
        target: Some(pb::Target {
            r#type: "end_user".to_owned(),
            id: target_id(target),
        }),
        changes: vec![pb::FieldChange {
            field: "email".to_owned(),
            before_json: Some(format!("\"user{target}@example.com\"")),
            after_json: Some(format!("\"user{target}.{n}@example.org\"")),
            ..pb::FieldChange::default()
        }],
        outcome: pb::Outcome::Success as i32,
        request_id: format!("req-{n}"),
        trace_id: format!("{:032x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15),
        caller_ip: "192.0.2.10".to_owned(),
        user_agent: "roster-bench/1 (grpc-rust)".to_owned(),
        source_service: "directory".to_owned(),
        schema_version: 1,
        ..pb::AuditEvent::default()
    }
}

/// The end-user event `n` is about.
pub fn target_of(n: u64) -> u64 {
    n % TARGETS
}

/// The id of end-user `n`, as events name their target.
pub fn target_id(n: u64) -> String {
    format!("user-{n}")
}

fn prost_types_timestamp(since_epoch: Duration) -> ::prost_types::Timestamp {
    ::prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        // Whole microseconds: the service stores µs.
        nanos: i32::try_from(since_epoch.subsec_micros() * 1000).unwrap_or(0),
    }
}
