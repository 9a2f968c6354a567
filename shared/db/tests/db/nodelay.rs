//! Pooled PostgreSQL connections have `TCP_NODELAY` set: sqlx 0.9.0 stopped setting it and
//! `vendor/sqlx-core` puts it back (vendor/README.md). Without it, a statement larger than a
//! TCP segment waits out the server's delayed ACK, and nothing but throughput shows it; this
//! test is what notices when Cargo stops applying the patch.
//!
//! The option is read from the sockets themselves. The pool does not expose them, so each
//! held connection asks the server which client port it sees (`inet_client_port()`), and
//! the test finds the descriptor bound to that port among its own: `pidfd_getfd` duplicates
//! a descriptor by number into an owned one, a safe API where `from_raw_fd` is not.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::os::fd::RawFd;

use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
use sea_orm::sqlx::{self, PgConnection};

use crate::support::{postgres, postgres_missing, setup_with};

const HELD_CONNECTIONS: u32 = 3;

#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn pooled_postgres_connections_have_tcp_nodelay() {
    let Some(backend) = postgres() else {
        postgres_missing()
    };
    let fx = setup_with(&backend, |s| {
        s.max_connections = HELD_CONNECTIONS;
        s.min_connections = HELD_CONNECTIONS;
    })
    .await;
    let pool = fx.db.conn().get_postgres_connection_pool();

    // Held at once, so they are distinct connections of this pool.
    let mut held = Vec::new();
    for _ in 0..HELD_CONNECTIONS {
        held.push(pool.acquire().await.unwrap());
    }
    let mut client_ports = BTreeSet::new();
    for conn in &mut held {
        client_ports.insert(client_port(conn).await);
    }

    let found = nodelay_by_local_port(&client_ports);

    assert_eq!(
        found.keys().copied().collect::<BTreeSet<_>>(),
        client_ports,
        "every held connection is a TCP socket of this process (the URL must use TCP)"
    );
    for (port, nodelay) in &found {
        assert!(
            nodelay,
            "the pooled connection on local port {port} has Nagle's algorithm on: is \
             vendor/sqlx-core still patched in? (vendor/README.md)"
        );
    }
    drop(held);
    fx.teardown().await;
}

/// The client-side TCP port of the connection, as the server sees it.
async fn client_port(conn: &mut PgConnection) -> u16 {
    let port: i32 = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(conn)
        .await
        .unwrap();
    u16::try_from(port).unwrap()
}

/// `TCP_NODELAY` of each of this process's TCP sockets whose local port is in `ports`.
fn nodelay_by_local_port(ports: &BTreeSet<u16>) -> std::collections::BTreeMap<u16, bool> {
    let this_process = pidfd_open(getpid(), PidfdFlags::empty()).unwrap();
    let mut found = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        // Descriptors come and go while other tests run: one that vanished is skipped.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let Some(number) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<RawFd>().ok())
        else {
            continue;
        };
        let Ok(duplicate) = pidfd_getfd(&this_process, number, PidfdGetfdFlags::empty()) else {
            continue;
        };
        // A Unix socket has no IP address, so `local_addr` fails on it and it is skipped.
        // Dropping the stream closes only the duplicate.
        let socket = TcpStream::from(duplicate);
        let Ok(local) = socket.local_addr() else {
            continue;
        };
        if ports.contains(&local.port()) {
            found.insert(local.port(), socket.nodelay().unwrap());
        }
    }
    found
}
