//! `roster import-users FILE --workspace W`: streams a CSV through ImportUsers with a
//! progress bar. Bytes are awkward in grpcurl's JSON, hence this client.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use tokio::io::AsyncReadExt as _;
use tonic::metadata::MetadataValue;

/// Big enough to amortise per-message overhead, well under the server's message limit.
const CHUNK_BYTES: usize = 256 * 1024;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The CSV file (Fogbender's columns or any known column names).
    pub file: PathBuf,
    /// Workspace to import into.
    #[arg(long)]
    pub workspace: String,
    /// Directory address.
    #[arg(
        long,
        env = "ROSTER_DIRECTORY_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// Access token; by default one is minted with the staff service's signing key.
    #[arg(long, env = "ROSTER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Validate and count without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop at the first bad row instead of skipping it.
    #[arg(long)]
    pub stop_on_error: bool,
}

pub async fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => {
            crate::dev_token::mint(
                data_dir,
                &crate::dev_token::Args {
                    workspaces: vec![args.workspace.clone()],
                    role: "admin".into(),
                    permissions: Vec::new(),
                    kind: "agent".into(),
                    subject: "roster-import-users".into(),
                    ttl_minutes: 60,
                },
            )
            .await?
        }
    };
    let mut file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata().await?.len();
    let progress = ProgressBar::new(size);
    progress.set_style(ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )?);

    let header = pb::ImportUsersRequest {
        part: Some(pb::import_users_request::Part::Header(
            pb::ImportUsersHeader {
                workspace_id: args.workspace.clone(),
                dry_run: args.dry_run,
                on_error: if args.stop_on_error {
                    pb::ImportErrorMode::Stop
                } else {
                    pb::ImportErrorMode::SkipRow
                } as i32,
            },
        )),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(header).await.context("queueing the header")?;
    let bar = progress.clone();
    let reader = tokio::spawn(async move {
        loop {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            let n = file.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            chunk.truncate(n);
            bar.inc(n as u64);
            if tx
                .send(pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Chunk(chunk)),
                })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    });

    let mut client = DirectoryServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("connecting to {}", args.addr))?
        .max_encoding_message_size(CHUNK_BYTES * 2);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .context("token is not valid metadata")?;
    request.metadata_mut().insert("authorization", bearer);
    let response = client.import_users(request).await;
    progress.finish_and_clear();
    reader
        .await
        .context("file reader")?
        .context("reading the file")?;
    let result = response
        .map_err(|status| {
            anyhow::anyhow!("import failed: {:?}: {}", status.code(), status.message())
        })?
        .into_inner();

    println!(
        "{}created {}, updated {}, undeleted {}, unchanged {}, failed {} (customers created {}){}",
        if result.dry_run { "dry run: " } else { "" },
        result.created,
        result.updated,
        result.undeleted,
        result.unchanged,
        result.failed,
        result.customers_created,
        if result.stopped {
            "; stopped at the first bad row"
        } else {
            ""
        }
    );
    for failure in &result.failures {
        println!("  row {}: {}", failure.row, failure.reason);
    }
    if result.failures.len() < usize::try_from(result.failed).unwrap_or(usize::MAX) {
        println!(
            "  … {} more failed rows not listed",
            result.failed - result.failures.len() as i64
        );
    }
    Ok(())
}
