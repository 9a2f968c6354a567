//! ListUsers by partial e-mail over the loaded users: the service over gRPC (a) against the
//! same SQL from a plain client (c), first page and page 10, with PostgreSQL's plan.

use std::time::Duration;

use anyhow::Context as _;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use sea_orm::sqlx::postgres::PgPool;
use sea_orm::sqlx::{self, Executor as _, PgConnection};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::dataset::WORKSPACE;
use crate::harness::SERVER_THREADS;
use crate::load::{self, LoadResult, LoadSpec};
use crate::service::authorized;
use crate::sql::{self, PageCursor};

pub const PAGE_SIZE: i64 = 30;

#[derive(Clone, Debug)]
pub struct SearchSpec {
    pub duration: Duration,
    /// Calls per caller at most.
    pub max_calls: u64,
    /// Closed-loop callers, one measurement per level.
    pub concurrency: Vec<usize>,
}

/// One concurrency level of a case, for the three contenders.
pub struct SearchRun {
    pub concurrency: usize,
    pub roster: LoadResult,
    pub bare: LoadResult,
    pub sql: LoadResult,
}

/// The gRPC servers a case calls: (a) with its token, and (b).
pub struct SearchClients<'a> {
    pub roster: &'a DirectoryServiceClient<Channel>,
    pub authorization: &'a MetadataValue<Ascii>,
    pub bare: &'a DirectoryServiceClient<Channel>,
}

pub struct SearchCase {
    pub term: &'static str,
    pub page: u32,
}

pub struct SearchOutcome {
    pub term: &'static str,
    pub page: u32,
    pub matches: u64,
    /// Empty when the term has fewer pages than asked for.
    pub runs: Vec<SearchRun>,
    /// Whether the service's page held the same users as the baseline's and the plain
    /// client's.
    pub same_rows: bool,
    pub plan: Vec<String>,
    pub generic_plan: Vec<String>,
}

fn seq_scan(plan: &[String]) -> bool {
    plan.iter()
        .any(|line| line.contains("Seq Scan on end_users"))
}

impl SearchOutcome {
    pub fn scans_table(&self) -> bool {
        seq_scan(&self.plan)
    }

    pub fn generic_scans_table(&self) -> bool {
        seq_scan(&self.generic_plan)
    }
}

fn filter(term: &str) -> String {
    format!("email:{term}")
}

fn list_request(term: &str, page_token: &str) -> pb::ListUsersRequest {
    pb::ListUsersRequest {
        workspace_id: WORKSPACE.to_owned(),
        page_size: i32::try_from(PAGE_SIZE).unwrap_or(30),
        page_token: page_token.to_owned(),
        filter: filter(term),
        order_by: String::new(),
        show_deleted: false,
    }
}

/// `request`, with the token when the server wants one.
fn request_for<T>(authorization: Option<&MetadataValue<Ascii>>, message: T) -> tonic::Request<T> {
    match authorization {
        Some(authorization) => authorized(authorization, message),
        None => tonic::Request::new(message),
    }
}

/// Walks a server's pages to the start of `page`: its token and its user ids, or `None`
/// when there are fewer pages.
async fn grpc_page(
    client: &DirectoryServiceClient<Channel>,
    authorization: Option<&MetadataValue<Ascii>>,
    term: &str,
    page: u32,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let mut client = client.clone();
    let mut token = String::new();
    for current in 1..=page {
        let response = client
            .list_users(request_for(authorization, list_request(term, &token)))
            .await
            .with_context(|| format!("ListUsers {} page {current}", filter(term)))?
            .into_inner();
        if current == page {
            let ids = response
                .users
                .into_iter()
                .map(|user| user.user_id)
                .collect();
            return Ok(Some((token, ids)));
        }
        if response.next_page_token.is_empty() {
            return Ok(None);
        }
        token = response.next_page_token;
    }
    Ok(None)
}

/// The same walk in SQL: the cursor that starts `page` and its user ids.
async fn sql_page(
    pool: &PgPool,
    term: &str,
    page: u32,
) -> anyhow::Result<Option<(Option<PageCursor>, Vec<String>)>> {
    let mut cursor = None;
    for current in 1..=page {
        let (users, next) = sql::search_page(pool, WORKSPACE, term, PAGE_SIZE, cursor).await?;
        if current == page {
            let ids = users
                .iter()
                .map(|view| view.user.user_id.to_string())
                .collect();
            return Ok(Some((cursor, ids)));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
    Ok(None)
}

async fn count_matches(pool: &PgPool, term: &str) -> anyhow::Result<u64> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM end_users WHERE workspace_id = $1 AND email_key LIKE $2",
    )
    .bind(WORKSPACE)
    .bind(sql::like_pattern(term))
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(count)?)
}

/// The plan PostgreSQL falls back to when a prepared statement goes generic (it may after
/// five executions on one connection, which is how sqlx runs every query).
async fn generic_plan(
    conn: &mut PgConnection,
    term: &str,
    cursor: Option<PageCursor>,
) -> anyhow::Result<Vec<String>> {
    conn.execute("SET plan_cache_mode = force_generic_plan")
        .await?;
    let plan = sql::explain_search(conn, WORKSPACE, term, PAGE_SIZE, cursor).await;
    conn.execute("RESET plan_cache_mode").await?;
    plan
}

/// Calls `list_users` on `client` with the page-`token` request, closed loop.
async fn grpc_load(
    spec: LoadSpec,
    client: &DirectoryServiceClient<Channel>,
    authorization: Option<&MetadataValue<Ascii>>,
    term: &str,
    token: &str,
) -> anyhow::Result<LoadResult> {
    let client = client.clone();
    let authorization = authorization.cloned();
    let request = list_request(term, token);
    load::run(spec, Some(SERVER_THREADS), move |_| {
        let mut client = client.clone();
        let request = request_for(authorization.as_ref(), request.clone());
        async move {
            client.list_users(request).await?;
            Ok(())
        }
    })
    .await
}

pub async fn run_case(
    case: &SearchCase,
    spec: &SearchSpec,
    clients: &SearchClients<'_>,
    pool: &PgPool,
    explain: &mut PgConnection,
) -> anyhow::Result<SearchOutcome> {
    let term = case.term;
    let matches = count_matches(pool, term).await?;
    let (Some((token, service_ids)), Some((bare_token, bare_ids)), Some((cursor, sql_ids))) = (
        grpc_page(clients.roster, Some(clients.authorization), term, case.page).await?,
        grpc_page(clients.bare, None, term, case.page).await?,
        sql_page(pool, term, case.page).await?,
    ) else {
        return Ok(SearchOutcome {
            term,
            page: case.page,
            matches,
            runs: Vec::new(),
            same_rows: true,
            plan: Vec::new(),
            generic_plan: Vec::new(),
        });
    };

    let mut runs = Vec::new();
    for &concurrency in &spec.concurrency {
        let load_spec = LoadSpec {
            concurrency,
            warmup: Duration::from_millis(500),
            duration: spec.duration,
            max_calls: spec.max_calls.saturating_mul(concurrency as u64),
        };
        let roster = grpc_load(
            load_spec,
            clients.roster,
            Some(clients.authorization),
            term,
            &token,
        )
        .await?;
        let bare = grpc_load(load_spec, clients.bare, None, term, &bare_token).await?;
        let sql = {
            let pool = pool.clone();
            load::run(load_spec, None, move |_| {
                let pool = pool.clone();
                async move {
                    sql::search_page(&pool, WORKSPACE, term, PAGE_SIZE, cursor).await?;
                    Ok(())
                }
            })
            .await?
        };
        runs.push(SearchRun {
            concurrency,
            roster,
            bare,
            sql,
        });
    }
    let plan = sql::explain_search(explain, WORKSPACE, term, PAGE_SIZE, cursor).await?;
    let generic_plan = generic_plan(explain, term, cursor).await?;
    Ok(SearchOutcome {
        term,
        page: case.page,
        matches,
        runs,
        same_rows: service_ids == sql_ids && bare_ids == sql_ids,
        plan,
        generic_plan,
    })
}
