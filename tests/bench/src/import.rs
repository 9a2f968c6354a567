//! ImportUsers of a generated CSV through the client stream, against COPY of the same rows
//! into the same (migrated, indexed, empty) table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cpu;
use crate::dataset::{self, WORKSPACE};
use crate::harness::Databases;
use crate::pg;
use crate::service::Directory;

/// Bytes of CSV per gRPC message, as `roster import-users` sends them.
const CHUNK_BYTES: usize = 64 * 1024;
/// gRPC messages queued ahead of the stream.
const QUEUED_CHUNKS: usize = 4;

pub struct ImportSpec {
    pub rows: u64,
    /// The stream ends after this long even if the file is not through; the figures then
    /// cover the rows the service answered for.
    pub max_time: Duration,
}

pub struct ImportOutcome {
    pub file_rows: u64,
    pub file_bytes: u64,
    /// Rows the service accounted for (created + updated + undeleted + unchanged + failed).
    pub processed: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub cut_short: bool,
    pub import_time: Duration,
    pub rss_before: u64,
    pub peak_rss: u64,
    pub copy_rows: u64,
    pub copy_time: Duration,
}

impl ImportOutcome {
    pub fn import_rate(&self) -> f64 {
        self.processed as f64 / self.import_time.as_secs_f64().max(1e-9)
    }

    pub fn copy_rate(&self) -> f64 {
        self.copy_rows as f64 / self.copy_time.as_secs_f64().max(1e-9)
    }
}

/// Removes the temporary CSV however the run ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams the file in chunks that end at a line break, so stopping early never cuts a
/// row in half. Returns whether it stopped before the end of the file.
async fn send_file(
    path: PathBuf,
    deadline: Instant,
    messages: mpsc::Sender<pb::ImportUsersRequest>,
) -> anyhow::Result<bool> {
    let mut file = tokio::fs::File::open(&path).await?;
    let mut carry: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        if Instant::now() >= deadline {
            return Ok(true);
        }
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            if !carry.is_empty() {
                let last = std::mem::take(&mut carry);
                send(&messages, last).await?;
            }
            return Ok(false);
        }
        carry.extend_from_slice(&buffer[..read]);
        let Some(end) = carry.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let rest = carry.split_off(end + 1);
        let chunk = std::mem::replace(&mut carry, rest);
        send(&messages, chunk).await?;
    }
}

async fn send(
    messages: &mpsc::Sender<pb::ImportUsersRequest>,
    chunk: Vec<u8>,
) -> anyhow::Result<()> {
    messages
        .send(pb::ImportUsersRequest {
            part: Some(pb::import_users_request::Part::Chunk(chunk)),
        })
        .await
        .map_err(|_| anyhow::anyhow!("the import stream closed early"))
}

/// Runs both sides, on databases created in `databases` for the caller to drop.
pub async fn run(
    spec: &ImportSpec,
    server_runtime: &tokio::runtime::Handle,
    databases: &mut Databases,
) -> anyhow::Result<ImportOutcome> {
    let run_id = databases.run_id.clone();
    let path = std::env::temp_dir().join(format!("roster-bench-{run_id}.csv"));
    let file = TempFile(path.clone());
    let rows = spec.rows;
    let csv_path = path.clone();
    let file_bytes =
        tokio::task::spawn_blocking(move || dataset::write_import_csv(&csv_path, rows))
            .await
            .context("the CSV writer failed")??;

    let settings = databases.create("import").await?.service_settings();
    // The default request timeout (30 s) would cancel any longer import; give the stream its
    // time limit plus room for the rows still buffered when it ends.
    let request_timeout = spec.max_time + Duration::from_secs(300);
    let directory =
        Directory::start(server_runtime, settings, WORKSPACE, Some(request_timeout)).await?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", directory.addr))?
        .connect()
        .await?;
    let mut client = DirectoryServiceClient::new(channel);

    let (messages_tx, messages_rx) = mpsc::channel(QUEUED_CHUNKS);
    messages_tx
        .send(pb::ImportUsersRequest {
            part: Some(pb::import_users_request::Part::Header(
                pb::ImportUsersHeader {
                    workspace_id: WORKSPACE.to_owned(),
                    dry_run: false,
                    on_error: pb::ImportErrorMode::SkipRow as i32,
                },
            )),
        })
        .await
        .map_err(|_| anyhow::anyhow!("the import stream closed before the header"))?;

    cpu::reset_peak_rss()?;
    let (rss_before, _) = cpu::rss()?;
    let started = Instant::now();
    let sender = tokio::spawn(send_file(path, started + spec.max_time, messages_tx));
    let response = client
        .import_users(directory.request(ReceiverStream::new(messages_rx)))
        .await
        .map_err(|status| {
            anyhow::anyhow!("ImportUsers: {:?}: {}", status.code(), status.message())
        })?
        .into_inner();
    let import_time = started.elapsed();
    let (_, peak_rss) = cpu::rss()?;
    let cut_short = sender.await.context("the CSV sender failed")??;
    directory.stop().await?;
    drop(file);

    let processed = u64::try_from(
        response.created
            + response.updated
            + response.undeleted
            + response.unchanged
            + response.failed,
    )?;

    let database = databases.create("copy").await?;
    pg::migrate(database).await?;
    let mut conn = database.connection().await?;
    let copy_time = dataset::copy_import_rows(&mut conn, processed, rows).await?;

    Ok(ImportOutcome {
        file_rows: rows,
        file_bytes,
        processed,
        failed: u64::try_from(response.failed)?,
        first_failure: response
            .failures
            .first()
            .map(|failure| format!("row {}: {}", failure.row, failure.reason)),
        cut_short,
        import_time,
        rss_before,
        peak_rss,
        copy_rows: processed,
        copy_time,
    })
}
