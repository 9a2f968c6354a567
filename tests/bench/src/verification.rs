//! Token verification as the directory does it: keys fetched from the staff service's
//! JWKS (`StaffLink`, as `ROSTER_AUTH_STAFF_URL` sets up), revocations followed from its
//! feed into a `RevocationView`, and the one `TokenVerifier` both feed, whose cache the
//! directory shares. Also the in-process cost of `TokenVerifier::verify`, cached and not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use roster_auth::{
    PrincipalKind, RevocationView, TokenVerifier, VerifierSettings, WorkspaceAccess,
};
use roster_service::revocations::RevocationFollower;
use roster_service::{StaffLink, StaffLinkSettings, TrustedKeys};
use roster_staff::domain::{Clock as _, SystemClock};
use roster_staff::service::AccessTokens;
use roster_staff::service::keys::Keyring;

/// How stale the revocation view may grow before it refuses every token (the default of
/// `ROSTER_AUTH_REVOCATION_MAX_STALENESS`).
const REVOCATION_MAX_STALENESS: Duration = Duration::from_secs(300);

/// The directory's side of the staff link, running on the server runtime.
pub struct Following {
    pub verifier: TokenVerifier,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Following {
    /// Fetches the staff service's keys at `staff_url` and follows its revocation feed
    /// until the first snapshot arrived (tokens are refused before it).
    pub async fn start(runtime: &tokio::runtime::Handle, staff_url: &str) -> anyhow::Result<Self> {
        let trust = TrustedKeys::new(VerifierSettings::default(), None)
            .context("an empty set of trusted keys")?;
        let link = StaffLink::from_settings(&StaffLinkSettings::following(staff_url))?
            .context("the staff link needs a URL")?;
        let keys = {
            let link = link.clone();
            let trust = trust.clone();
            runtime
                .spawn(async move { link.follow_keys(trust).await })
                .await
                .context("the key follower's start failed")??
        };
        let verifier = trust.verifier();
        let view = RevocationView::new(REVOCATION_MAX_STALENESS, Arc::new(SystemClock));
        anyhow::ensure!(
            verifier.follow_revocations(view.clone()),
            "the verifier already follows revocations"
        );
        let revocations =
            RevocationFollower::new(link.channel(), staff_url.to_owned(), view.clone());
        let tasks = vec![
            runtime.spawn(keys.run()),
            runtime.spawn(revocations.run(None)),
        ];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !view.is_current() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no revocation snapshot from the staff service within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { verifier, tasks })
    }

    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Tokens minted in-process the way Login mints them (the staff service's `AccessTokens`
/// and current key) for the subject, generation and access of `template`, each with its own
/// `jti`, so each is new to a verifier.
pub async fn fresh_tokens(
    keys: &Keyring,
    verifier: &TokenVerifier,
    template: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let principal = verifier
        .verify(template)
        .context("the template token does not verify")?;
    let workspaces: BTreeMap<String, WorkspaceAccess> = match &principal.workspaces {
        roster_auth::WorkspaceScope::Only(grants) => grants
            .iter()
            .map(|(workspace, grant)| {
                (
                    workspace.clone(),
                    WorkspaceAccess {
                        role: grant.role.clone(),
                        permissions: grant.permissions.iter().cloned().collect(),
                    },
                )
            })
            .collect(),
        roster_auth::WorkspaceScope::All(_) => anyhow::bail!("the template is a platform token"),
    };
    let settings = verifier.settings();
    let tokens = AccessTokens::new(
        keys.clone(),
        settings.issuer.clone(),
        settings.audience.clone(),
    );
    let generation = i64::try_from(principal.generation).context("generation out of range")?;
    let mut minted = Vec::with_capacity(count);
    for _ in 0..count {
        let token = tokens
            .mint(
                principal.subject.clone(),
                PrincipalKind::Agent,
                workspaces.clone(),
                generation,
                SystemClock.now_us(),
            )
            .await
            .map_err(|error| anyhow::anyhow!("minting a token: {error}"))?;
        minted.push(token.token);
    }
    Ok(minted)
}

/// Mean wall time of one `verify` in a tight loop on one thread.
#[derive(Clone, Copy, Debug)]
pub struct VerifyCost {
    pub calls: u64,
    pub per_call: Duration,
}

/// Verifies `cached` `iterations` times after one call that puts it in the cache.
pub fn cached_cost(
    verifier: &TokenVerifier,
    cached: &str,
    iterations: u64,
) -> anyhow::Result<VerifyCost> {
    verifier.verify(cached).context("the cached token")?;
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(verifier.verify(std::hint::black_box(cached)))
            .context("the cached token")?;
    }
    Ok(cost(iterations, started.elapsed()))
}

/// Verifies each of `fresh` once: signature, claims, the cache's insert (and its eviction
/// once full) and the revocation check.
pub fn fresh_cost(verifier: &TokenVerifier, fresh: &[String]) -> anyhow::Result<VerifyCost> {
    let started = Instant::now();
    for token in fresh {
        std::hint::black_box(verifier.verify(std::hint::black_box(token)))
            .context("a fresh token")?;
    }
    Ok(cost(fresh.len() as u64, started.elapsed()))
}

fn cost(calls: u64, took: Duration) -> VerifyCost {
    let per_call = u32::try_from(calls.max(1)).map_or(Duration::ZERO, |calls| took / calls);
    VerifyCost { calls, per_call }
}
