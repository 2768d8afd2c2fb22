//! Database faults: when PostgreSQL becomes unreachable, `/health` answers 503 and GraphQL
//! answers `INTERNAL_SERVER_ERROR` in bounded time (no hang, nothing leaked); when it comes
//! back, the same server process recovers without a restart.
//!
//! The server's `DATABASE_URL` points at a small TCP proxy inside the test, which forwards to
//! PostgreSQL and can be cut in two ways:
//! - *down*: every connection is dropped and the port refuses new ones (what a stopped or
//!   restarted PostgreSQL looks like);
//! - *partitioned*: every connection goes silent and new ones are accepted but never answered
//!   (what a network partition looks like).
//!
//! PostgreSQL only. SQLite is a file opened by the server process itself: there is no
//! connection to lose, and the Unix ways of "taking it away" (removing or `chmod`ing the file
//! or its directory while it is open) leave the open descriptors working, so there is no
//! outage to observe. Its failure mode is lock contention, bounded by the busy timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestApp, TestDatabase, spawn_with, test_config};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Drop all connections; refuse new ones.
    Down,
    /// Hold all connections silently; accept new ones and never answer.
    Partitioned,
}

/// A TCP proxy to PostgreSQL that can be cut and restored.
struct Proxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    upstream: SocketAddr,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let (mode, _) = watch::channel(Mode::Forward);
        let listener = Self::bind("127.0.0.1:0".parse().unwrap()).await;
        let proxy = Proxy {
            address: listener.local_addr().unwrap(),
            mode,
            acceptor: Mutex::new(None),
            upstream,
            connections: Arc::default(),
        };
        proxy.accept_on(listener);
        proxy
    }

    async fn bind(address: SocketAddr) -> TcpListener {
        // SO_REUSEADDR, so the same port can be bound again after `Down`.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(address).unwrap();
        socket.listen(128).unwrap()
    }

    fn accept_on(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let mode = self.mode.subscribe();
        let connections = self.connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let task = tokio::spawn(pipe(client, upstream, mode.clone()));
                let mut connections = connections.lock().unwrap();
                connections.retain(|t| !t.is_finished());
                connections.push(task);
            }
        });
        *self.acceptor.lock().unwrap() = Some(task);
    }

    /// PostgreSQL "goes down": every connection is cut and the port refuses connections.
    fn down(&self) {
        self.mode.send_replace(Mode::Down);
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort(); // drops the listener: connecting is refused
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort(); // drops both sockets
        }
    }

    /// A network partition: connections stay open but nothing goes through.
    fn partition(&self) {
        self.mode.send_replace(Mode::Partitioned);
    }

    /// Back to normal. Connections held during a partition are closed.
    async fn restore(&self) {
        let was = self.mode.send_replace(Mode::Forward);
        if was == Mode::Down {
            self.accept_on(Self::bind(self.address).await);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// One proxied connection: forwards while the mode is `Forward`; when partitioned, holds both
/// sockets without reading or writing until the mode changes, then closes them.
async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    if current == Mode::Partitioned {
        // Accepted, never answered.
        let _ = mode.wait_for(|m| *m != Mode::Partitioned).await;
        return;
    }
    if current != Mode::Forward {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let stopped = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        changed = mode.wait_for(|m| *m != Mode::Forward) => {
            Some(changed.map(|m| *m).unwrap_or(Mode::Down))
        }
    };
    if stopped == Some(Mode::Partitioned) {
        let _ = mode.wait_for(|m| *m != Mode::Partitioned).await;
    }
    drop((client, server));
}

/// `scheme://userinfo@host:port/rest` → (`scheme://userinfo@`, `host:port`, `/rest`).
fn split_authority(url: &str) -> (&str, &str, &str) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let start = url[scheme_end..end]
        .rfind('@')
        .map_or(scheme_end, |i| scheme_end + i + 1);
    (&url[..start], &url[start..end], &url[end..])
}

/// A request's outcome and how long it took.
struct Timed<T> {
    value: T,
    took: Duration,
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> Timed<T> {
    let started = Instant::now();
    let value = f.await;
    Timed {
        value,
        took: started.elapsed(),
    }
}

async fn health(app: &TestApp) -> u16 {
    probe(app, "health").await
}

/// The status of `GET /<path>` (`health`, `readyz`, `livez`).
async fn probe(app: &TestApp, path: &str) -> u16 {
    app.client
        .get(format!("{}/{path}", app.address))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("the server answers /health")
        .status()
        .as_u16()
}

const READ: &str = "{ user(username: \"before\") { username datasets { totalCount } } }";
const WRITE: &str =
    "mutation($n: String!) { createDataset(input: { name: $n }) { dataset { fullName } } }";

/// The request timeout of the server under test; every answer must come well before it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// "Well before": what the pool's acquire timeout (10 s) plus slack on a busy machine allows.
const BOUND: Duration = Duration::from_secs(20);

/// While the database is unreachable: health 503, a read and a write answer a clean
/// INTERNAL_SERVER_ERROR, all in bounded time.
async fn assert_unavailable(app: &TestApp, token: &str, what: &str) {
    let (health, ready, live, read, write) = tokio::join!(
        timed(health(app)),
        timed(probe(app, "readyz")),
        probe(app, "livez"),
        timed(app.gql(None, READ, json!({}))),
        timed(app.gql(Some(token), WRITE, json!({ "n": format!("during-{what}") }))),
    );
    assert_eq!(health.value, 503, "{what}: /health");
    assert_eq!(ready.value, 503, "{what}: /readyz");
    assert_eq!(live, 200, "{what}: /livez (the process runs)");
    for (reply, name) in [(&read, "read"), (&write, "write")] {
        let message = reply.value.expect_code("INTERNAL_SERVER_ERROR");
        assert_eq!(message, "internal server error", "{what}: {name}");
        let body = reply.value.body.to_string().to_lowercase();
        for leak in [
            "sql",
            "connection",
            "refused",
            "timed out",
            "127.0.0.1",
            "postgres",
        ] {
            assert!(
                !body.contains(leak),
                "{what}: {name} leaks {leak:?}: {body}"
            );
        }
    }
    eprintln!(
        "{what}: /health {} in {:?}, read in {:?}, write in {:?}",
        health.value, health.took, read.took, write.took
    );
    for (took, name) in [
        (health.took, "health"),
        (ready.took, "readyz"),
        (read.took, "read"),
        (write.took, "write"),
    ] {
        assert!(
            took < BOUND,
            "{what}: {name} took {took:?}, the bound is {BOUND:?} (request timeout {REQUEST_TIMEOUT:?})"
        );
    }
}

/// After the database is back: health turns 200 within a bound, reads and writes work, and
/// what was written before the outage is there (and nothing from during it).
async fn assert_recovered(app: &TestApp, token: &str, what: &str, datasets_before: u64) {
    let started = Instant::now();
    loop {
        let status = health(app).await;
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < BOUND,
            "{what}: /health still {status} after {:?} with the database back",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{what}: healthy again {:?} after the database came back",
        started.elapsed()
    );
    assert_eq!(probe(app, "readyz").await, 200, "{what}: /readyz");
    let reply = app.gql(Some(token), READ, json!({})).await;
    assert_eq!(reply.data("/user/username"), "before", "{what}");
    assert_eq!(
        reply.data("/user/datasets/totalCount").as_u64(),
        Some(datasets_before),
        "{what}: the write refused during the outage left nothing"
    );
    let reply = app
        .gql(Some(token), WRITE, json!({ "n": format!("after-{what}") }))
        .await;
    assert_eq!(
        reply.data("/createDataset/dataset/fullName"),
        &json!(format!("before/after-{what}"))
    );
    app.sign_up(&format!("after-{what}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_fails_fast_and_the_server_recovers() {
    let Some(backend) = Backend::postgres() else {
        eprintln!(
            "skipped: TEST_DATABASE_URL is not set, so an_unreachable_postgres_fails_fast_and_the_server_recovers did not run (PostgreSQL only)"
        );
        return;
    };
    let Backend::Postgres(admin_url) = &backend else {
        unreachable!()
    };
    let (_, upstream, _) = split_authority(admin_url);
    let upstream: SocketAddr = tokio::net::lookup_host(upstream)
        .await
        .expect("TEST_DATABASE_URL names host:port")
        .next()
        .unwrap();
    let db = TestDatabase::create(&backend).await;
    let proxy = Proxy::start(upstream).await;
    let (prefix, _, rest) = split_authority(&db.url);
    let mut config = test_config(&format!("{prefix}{}{rest}", proxy.address));
    config.request_timeout_seconds = REQUEST_TIMEOUT.as_secs();
    let app = spawn_with(config).await;

    let token = app.sign_up("before").await;
    app.create_dataset(&token, None, "kept", false)
        .await
        .data("/createDataset");
    assert_eq!(health(&app).await, 200);
    // A query, so that a connection is kept for the next one (see `orgql::db::QueryConnections`):
    // below, that kept connection is dead or silent, and the next query must notice.
    let reply = app.gql(Some(&token), READ, json!({})).await;
    assert_eq!(reply.data("/user/username"), "before");

    // 1. PostgreSQL goes down: connections cut, new ones refused.
    proxy.down();
    assert_unavailable(&app, &token, "down").await;
    proxy.restore().await;
    assert_recovered(&app, &token, "down", 1).await;

    // 2. A network partition: connections silent, new ones never answered. Connections are
    //    pinged before use (a kept one within 3 s, a pooled one within the acquire timeout),
    //    so the hang is bounded. A kept connection used again within 100 ms of its last
    //    query is not pinged (see `orgql::db::QueryConnections`): it is trusted as a running
    //    query's connection is, and a partition in that instant is waited out like one in
    //    the middle of a query, until the request timeout. So the partition starts later.
    //    (Above, the outage began at once: the kept connection, used unpinged, was cut, and
    //    the read ran again on a fresh connection, which the pool could not open.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.partition();
    assert_unavailable(&app, &token, "partition").await;
    proxy.restore().await;
    assert_recovered(&app, &token, "partition", 2).await;

    // 3. An outage shorter than the acquire timeout is invisible: a request made while the
    //    database is down waits for it (the pool retries refused connections) and succeeds.
    proxy.down();
    let request = tokio::spawn({
        let app = TestApp::client_for(&app.address);
        let token = token.clone();
        async move { timed(app.gql(Some(&token), WRITE, json!({ "n": "across-a-blip" }))).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore().await;
    let reply = request.await.unwrap();
    assert_eq!(
        reply.value.data("/createDataset/dataset/fullName"),
        "before/across-a-blip"
    );
    eprintln!(
        "a 1 s outage: the write waited {:?} and succeeded",
        reply.took
    );
    assert!(reply.took < BOUND, "took {:?}", reply.took);

    app.stop().await;
    drop(proxy);
    drop(db);
}

#[test]
fn split_authority_finds_host_and_port() {
    assert_eq!(
        split_authority("postgres://postgres@127.0.0.1:5432/postgres"),
        ("postgres://postgres@", "127.0.0.1:5432", "/postgres")
    );
    assert_eq!(
        split_authority("postgres://u:p@db:5433/x?sslmode=disable"),
        ("postgres://u:p@", "db:5433", "/x?sslmode=disable")
    );
    assert_eq!(
        split_authority("postgres://localhost:5432/x"),
        ("postgres://", "localhost:5432", "/x")
    );
}
