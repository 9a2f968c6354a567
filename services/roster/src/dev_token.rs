//! `roster dev-token`: mints an access token with the staff service's current signing key,
//! read from its database under the data directory and opened with its KEK, so the token
//! verifies wherever the staff service's keys are trusted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::{AuthSettings, PrincipalKind, TokenRequest, WorkspaceAccess, unix_now};
use roster_staff::domain::SystemClock;
use roster_staff::service::keys::Keyring;
use roster_staff::startup::{SERVICE as STAFF, Signing};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Workspace the token grants; repeat for several, or `*` with --kind service.
    #[arg(long = "workspace", required = true)]
    pub workspaces: Vec<String>,
    /// admin, agent, viewer or a custom role name.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// Extra permissions (e.g. end_users.delete); agents get end_users.write and
    /// customers.write unless permissions are given.
    #[arg(long = "permission")]
    pub permissions: Vec<String>,
    /// agent or service.
    #[arg(long, default_value = "agent")]
    pub kind: String,
    /// Who the token speaks for.
    #[arg(long, default_value = "dev-agent")]
    pub subject: String,
    /// Lifetime in minutes.
    #[arg(long, default_value_t = 720)]
    pub ttl_minutes: u64,
}

pub async fn mint(data_dir: &Path, args: &Args) -> anyhow::Result<String> {
    let kind = match args.kind.as_str() {
        "agent" => PrincipalKind::Agent,
        "service" => PrincipalKind::Service,
        other => anyhow::bail!("--kind {other}: use agent or service"),
    };
    // Every service's permissions (the directory's and the staff service's).
    if let Some(unknown) = args
        .permissions
        .iter()
        .find(|name| roster_auth::catalogues::find(name).is_none())
    {
        let known: Vec<&str> = roster_auth::catalogues::all_permissions()
            .map(|p| p.name)
            .collect();
        anyhow::bail!(
            "--permission {unknown}: no service checks it; known: {}",
            known.join(", ")
        );
    }
    let mut permissions = args.permissions.clone();
    if permissions.is_empty() && args.role == "agent" {
        permissions = vec!["end_users.write".into(), "customers.write".into()];
    }
    let auth = AuthSettings::from_env()?;
    let defaults = auth.verifier.clone();
    let signer = staff_keys(data_dir, &auth)
        .await
        .with_context(|| format!("the staff service's signing key in {}", data_dir.display()))?
        .current_signer()
        .await?;
    let request = TokenRequest {
        subject: args.subject.clone(),
        kind,
        workspaces: args
            .workspaces
            .iter()
            .map(|workspace| {
                (
                    workspace.clone(),
                    WorkspaceAccess {
                        role: args.role.clone(),
                        permissions: permissions.clone(),
                    },
                )
            })
            .collect(),
        generation: 0,
        ttl: Duration::from_secs(args.ttl_minutes.saturating_mul(60)),
        issuer: defaults.issuer,
        audience: defaults.audience,
    };
    Ok(signer.mint_for(&request, unix_now())?)
}

/// The staff service's keys as `roster` keeps them (database and KEK under `data_dir`,
/// unless `ROSTER_STAFF_…` variables say otherwise); the first key is made if none exists.
async fn staff_keys(data_dir: &Path, auth: &AuthSettings) -> anyhow::Result<Keyring> {
    let db = roster_staff::prepare_database(&STAFF.database_settings(data_dir)?).await?;
    let signing = Signing::from_env(data_dir, &auth.verifier)?;
    Ok(Keyring::start(db, signing.kek, Arc::new(SystemClock), signing.keys, None).await?)
}

pub async fn run(data_dir: &Path, args: &Args) -> anyhow::Result<()> {
    println!("{}", mint(data_dir, args).await?);
    Ok(())
}
