//! ImportUsers: a client stream of CSV bytes parsed on a blocking thread and written by the
//! service in batches. Memory stays flat: the parser pulls one gRPC message at a time (so
//! HTTP/2 flow control slows a fast client down) and hands rows over a bounded channel.
//! The parser marks the end of the file; a stream that fails first ends the rows without
//! it, so the service writes nothing past the break, and the error says how many rows
//! committed before it.

use std::io::Read;
use std::sync::{Arc, Mutex};

use roster_proto::directory::v1 as pb;
use roster_runtime::error_details::domain;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_types::StatusExt as _;

use super::authz::{END_USERS_WRITE, customer_renames};
use super::{caller, workspace};
use crate::error::DirectoryError;
use crate::import::csv_rows::CsvRows;
use crate::service::{
    CustomerRenames, Directory, ImportCounts, ImportError, ImportInterruption, ImportOptions,
    ImportRow,
};

/// Rows in flight between the parser and the writer.
const ROW_CHANNEL: usize = 2048;

/// Reads the CSV bytes straight out of the gRPC stream, from a blocking thread.
struct StreamReader {
    stream: Streaming<pb::ImportUsersRequest>,
    runtime: Handle,
    chunk: Vec<u8>,
    offset: usize,
    failure: Arc<Mutex<Option<Status>>>,
}

impl StreamReader {
    fn fail(&self, status: Status) -> std::io::Error {
        let message = status.message().to_owned();
        if let Ok(mut slot) = self.failure.lock() {
            *slot = Some(status);
        }
        std::io::Error::other(message)
    }
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.chunk.len() {
            match self.runtime.block_on(self.stream.message()) {
                Ok(Some(pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Chunk(chunk)),
                })) => {
                    self.chunk = chunk;
                    self.offset = 0;
                }
                Ok(Some(pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Header(_)),
                })) => {
                    return Err(self.fail(
                        DirectoryError::invalid(
                            "header",
                            "the header may be sent only once, as the first message",
                        )
                        .into(),
                    ));
                }
                Ok(Some(pb::ImportUsersRequest { part: None })) => {}
                Ok(None) => return Ok(0),
                Err(status) => return Err(self.fail(status)),
            }
        }
        let n = out.len().min(self.chunk.len() - self.offset);
        out[..n].copy_from_slice(&self.chunk[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

fn response(counts: ImportCounts, dry_run: bool) -> pb::ImportUsersResponse {
    let rows_committed = if dry_run { 0 } else { counts.rows() };
    let ImportCounts {
        created,
        updated,
        undeleted,
        unchanged,
        failed,
        customers_created,
        customers_undeleted,
        customer_renames_skipped,
        failures,
        stopped,
    } = counts;
    pb::ImportUsersResponse {
        created,
        updated,
        undeleted,
        unchanged,
        failed,
        customers_created,
        failures: failures
            .into_iter()
            .map(|(row, reason)| pb::ImportRowFailure {
                row: i64::try_from(row).unwrap_or(i64::MAX),
                reason,
            })
            .collect(),
        stopped,
        dry_run,
        customers_undeleted,
        customer_renames_skipped,
        rows_committed,
    }
}

/// The reason an `ErrorInfo` gives when nothing more precise applies: the code's own name.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An import's error with what it committed before: in the message, for people, and as
/// `rows_committed` in the ErrorInfo's metadata, for programs that resume the file.
fn with_rows_committed(status: Status, rows: i64) -> Status {
    let mut details = status.get_error_details();
    let (reason, domain, mut metadata) = match details.error_info() {
        Some(info) => (
            info.reason.clone(),
            info.domain.clone(),
            info.metadata.clone(),
        ),
        None => (
            code_name(status.code()).to_owned(),
            domain::DIRECTORY.to_owned(),
            Default::default(),
        ),
    };
    metadata.insert("rows_committed".to_owned(), rows.to_string());
    details.set_error_info(reason, domain, metadata);
    let message = format!(
        "{}; the file's first {rows} rows were committed before the import stopped",
        status.message()
    );
    Status::with_error_details(status.code(), message, details)
}

pub async fn import_users(
    directory: &Directory,
    request: Request<Streaming<pb::ImportUsersRequest>>,
) -> Result<Response<pb::ImportUsersResponse>, Status> {
    let (principal, actor) = caller(&request)?;
    let mut stream = request.into_inner();
    let header = match stream.message().await? {
        Some(pb::ImportUsersRequest {
            part: Some(pb::import_users_request::Part::Header(header)),
        }) => header,
        Some(_) => {
            return Err(DirectoryError::invalid(
                "header",
                "the first message must carry the header (workspace and options)",
            )
            .into());
        }
        None => {
            return Err(DirectoryError::invalid(
                "header",
                "the stream is empty; send the header, then the file in chunks",
            )
            .into());
        }
    };
    let pb::ImportUsersHeader {
        workspace_id,
        dry_run,
        on_error,
    } = header;
    let workspace_id = workspace(&principal, &workspace_id, END_USERS_WRITE)?;
    let stop_on_error = match pb::ImportErrorMode::try_from(on_error) {
        Ok(pb::ImportErrorMode::Unspecified | pb::ImportErrorMode::SkipRow) => false,
        Ok(pb::ImportErrorMode::Stop) => true,
        Err(_) => {
            return Err(DirectoryError::invalid(
                "header.on_error",
                format!("{on_error} is not an ImportErrorMode"),
            )
            .into());
        }
    };

    let failure = Arc::new(Mutex::new(None));
    let reader = StreamReader {
        stream,
        runtime: Handle::current(),
        chunk: Vec::new(),
        offset: 0,
        failure: failure.clone(),
    };
    let (rows_tx, mut rows_rx) = mpsc::channel(ROW_CHANNEL);
    let stream_failure = failure.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let rows = CsvRows::new(reader)?;
        for item in rows {
            let row = match item {
                Ok(row) => ImportRow::Row {
                    line: row.line,
                    record: Box::new(row.record),
                },
                Err(failure) => ImportRow::Failed {
                    line: failure.line,
                    reason: failure.reason,
                },
            };
            // The writer hung up: it stopped at a bad row or failed.
            if rows_tx.blocking_send(row).is_err() {
                return Ok(());
            }
        }
        // A stream that failed ended the rows early: that is no end of the file.
        let broke_off = stream_failure.lock().map_or(true, |slot| slot.is_some());
        if !broke_off {
            let _ = rows_tx.blocking_send(ImportRow::EndOfFile);
        }
        Ok::<(), crate::import::csv_rows::HeaderError>(())
    });

    let options = ImportOptions {
        dry_run,
        stop_on_error,
        customer_renames: customer_renames(&principal, &workspace_id, CustomerRenames::Skip),
    };
    let imported = directory
        .import_rows(&actor, &workspace_id, options, &mut rows_rx)
        .await;
    drop(rows_rx);
    let parsed = parser.await.map_err(|error| {
        Status::from(DirectoryError::Internal(format!(
            "CSV parser thread: {error}"
        )))
    })?;
    let committed = match &imported {
        Ok(_) => 0,
        Err(ImportError { committed, .. }) => committed.rows(),
    };
    if let Ok(mut slot) = failure.lock()
        && let Some(status) = slot.take()
    {
        return Err(with_rows_committed(status, committed));
    }
    if let Err(header_error) = parsed {
        return Err(DirectoryError::invalid("chunk", format!("CSV header: {header_error}")).into());
    }
    let counts = match imported {
        Ok(counts) => counts,
        Err(ImportError { cause, committed }) => {
            let error = match cause {
                ImportInterruption::Failed(error) => error,
                // The parser ends the rows early only after the stream failed, which the
                // slot above reports.
                ImportInterruption::UploadBrokenOff => DirectoryError::Internal(
                    "the CSV rows ended before the file without a stream error".to_owned(),
                ),
            };
            tracing::warn!(
                workspace_id = %workspace_id,
                rows_committed = committed.rows(),
                "import stopped early"
            );
            return Err(with_rows_committed(error.into(), committed.rows()));
        }
    };
    tracing::info!(
        workspace_id = %workspace_id,
        created = counts.created,
        updated = counts.updated,
        undeleted = counts.undeleted,
        unchanged = counts.unchanged,
        failed = counts.failed,
        dry_run,
        "import finished"
    );
    Ok(Response::new(response(counts, dry_run)))
}
