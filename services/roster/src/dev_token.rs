//! `roster dev-token`: mints an access token with the development key, the way the staff
//! service will once it issues tokens.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::{
    PrincipalKind, TokenRequest, VerifierSettings, WorkspaceAccess, load_or_create_dev_keys,
    unix_now,
};

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

pub fn mint(data_dir: &Path, args: &Args) -> anyhow::Result<String> {
    let keys = load_or_create_dev_keys(data_dir)
        .with_context(|| format!("development keys in {}", data_dir.display()))?;
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
    let defaults = VerifierSettings::default();
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
    Ok(keys.signer.mint_for(&request, unix_now())?)
}

pub fn run(data_dir: &Path, args: &Args) -> anyhow::Result<()> {
    println!("{}", mint(data_dir, args)?);
    Ok(())
}
