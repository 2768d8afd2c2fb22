//! The test harness: `spawn_app()` starts a real orgql on port 0 with its own fresh database
//! (a temp SQLite file, or a new PostgreSQL database when `TEST_DATABASE_URL` is set), and
//! helpers speak GraphQL to it over HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use orgql::Application;
use orgql::config::Config;
use orgql::context::AppState;
use serde_json::{Value, json};

/// The secret test servers sign with, so tests can forge tokens.
pub const TEST_SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the server at this admin URL.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL from `TEST_DATABASE_URL`, if set.
    pub fn postgres() -> Option<Backend> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Backend::Postgres)
    }
}

/// Generates `mod <name> { sqlite, postgres }` tests that run `async fn <name>(Backend)` on
/// each database; the PostgreSQL one says it was skipped when `TEST_DATABASE_URL` is unset.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::helpers::Backend::postgres() {
                    Some(backend) => super::$name(backend).await,
                    None => eprintln!("skipped: TEST_DATABASE_URL is not set, so {} ran on SQLite only", stringify!($name)),
                }
            }
        }
    )*};
}

/// A fresh, empty database for one test; dropped (PostgreSQL) or deleted (SQLite) after it.
pub struct TestDatabase {
    /// The URL the server connects to.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates the database.
    pub async fn create(backend: &Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("orgql-test.db");
                TestDatabase {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    _dir: Some(dir),
                    pg_drop: None,
                }
            }
            Backend::Postgres(admin_url) => {
                let name = format!("orgql_test_{:016x}", rand::random::<u64>());
                let admin = sea_orm::Database::connect(admin_url.as_str())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                    });
                use sea_orm::ConnectionTrait;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let url = replace_database(admin_url, &name);
                TestDatabase {
                    url,
                    _dir: None,
                    pg_drop: Some((admin_url.clone(), name)),
                }
            }
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_drop.take() {
            // Drop on a thread of its own: Drop cannot await, and the test's runtime may be
            // shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sea_orm::ConnectionTrait;
                    let admin = sea_orm::Database::connect(admin_url.as_str()).await.ok()?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The server's state (its database pool); `None` for a server in another process.
    state: Option<Arc<AppState>>,
    /// An HTTP client.
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration tests use: port 0, a known secret, the given database.
pub fn test_config(url: &str) -> Config {
    let mut config = Config::with_database(url);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.jwt_secret = Some(TEST_SECRET.into());
    // Every test signs up its users from 127.0.0.1; the tests of the limits set their own.
    config.sign_ups_per_address = 100_000;
    config.login_attempts_per_address = 100_000;
    config
}

/// Starts a server with `config`.
pub async fn spawn_with(config: Config) -> TestApp {
    init_tracing();
    let app = Application::build(&config)
        .await
        .expect("the server starts");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("the server runs");
    });
    TestApp {
        address,
        state: Some(state),
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A server on a fresh database of `backend`. Keep the [`TestDatabase`] alive for the test.
pub async fn spawn_app(backend: &Backend) -> (TestApp, TestDatabase) {
    let db = TestDatabase::create(backend).await;
    let app = spawn_with(test_config(&db.url)).await;
    (app, db)
}

fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = std::env::var("TEST_LOG")
            .ok()
            .filter(|f| f.contains('='))
            .unwrap_or_else(|| "info".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
}

/// A GraphQL response: the HTTP status and the JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// The body as sent (field order included).
    pub raw: String,
}

impl Reply {
    /// `data` at a JSON pointer (e.g. `/viewer/username`); panics with the body on errors.
    pub fn data(&self, pointer: &str) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "expected no errors, got {}",
            self.body
        );
        self.body
            .pointer(&format!("/data{pointer}"))
            .unwrap_or_else(|| panic!("no /data{pointer} in {}", self.body))
    }

    /// The first error's `extensions.code` (panics if there is none).
    pub fn code(&self) -> &str {
        self.body
            .pointer("/errors/0/extensions/code")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("expected an error with a code, got {}", self.body))
    }

    /// Every error's code.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or("<none>")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts the first error has `code` and returns its message.
    pub fn expect_code(&self, code: &str) -> String {
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.status < 500,
            "status {} for {}",
            self.status,
            self.body
        );
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl TestApp {
    /// A client for a server running elsewhere (another process) at `address`.
    pub fn client_for(address: &str) -> TestApp {
        TestApp {
            address: address.to_owned(),
            state: None,
            client: reqwest::Client::new(),
            shutdown: None,
            server: None,
        }
    }

    /// The in-process server's state (its database pool).
    pub fn state(&self) -> &Arc<AppState> {
        self.state.as_ref().expect("an in-process server")
    }

    /// POSTs a GraphQL request, with `token` as bearer if given.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        Reply {
            status,
            body,
            raw: text,
        }
    }

    /// Signs up `username` (email `<username>@example.com`, password `password-<username>`)
    /// and returns the token.
    pub async fn sign_up(&self, username: &str) -> String {
        let reply = self
            .gql(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { token } }",
                json!({ "input": {
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": format!("password-{username}"),
                }}),
            )
            .await;
        reply.data("/signUp/token").as_str().unwrap().to_owned()
    }

    /// Creates organization `name` as the holder of `token`.
    pub async fn create_org(&self, token: &str, name: &str) {
        self.gql(
            Some(token),
            "mutation($u: String!) { createOrganization(input: { username: $u }) { organization { id } } }",
            json!({ "u": name }),
        )
        .await
        .data("/createOrganization/organization/id");
    }

    /// Adds `username` to `org` with `role` and `default_dataset_role` (JSON null for none).
    pub async fn add_member(
        &self,
        token: &str,
        org: &str,
        username: &str,
        role: &str,
        default_role: Value,
    ) -> Reply {
        self.gql(
            Some(token),
            "mutation($o: String!, $u: String!, $r: OrganizationRole!, $d: DatasetRole) {
               addMember(input: { organization: $o, username: $u, role: $r, defaultDatasetRole: $d }) {
                 member { role defaultDatasetRole user { username } } } }",
            json!({ "o": org, "u": username, "r": role, "d": default_role }),
        )
        .await
    }

    /// Gives `username` `role` in `org` (`updateMember`).
    pub async fn update_member(&self, token: &str, org: &str, username: &str, role: &str) -> Reply {
        self.gql(
            Some(token),
            "mutation($o: String!, $u: String!, $r: OrganizationRole!) {
               updateMember(input: { organization: $o, username: $u, role: $r }) { member { role } } }",
            json!({ "o": org, "u": username, "r": role }),
        )
        .await
    }

    /// Removes `username` from `org` (`removeMember`).
    pub async fn remove_member(&self, token: &str, org: &str, username: &str) -> Reply {
        self.gql(
            Some(token),
            "mutation($o: String!, $u: String!) {
               removeMember(input: { organization: $o, username: $u }) { organization { username } } }",
            json!({ "o": org, "u": username }),
        )
        .await
    }

    /// Creates dataset `name` under `owner` (None: the viewer).
    pub async fn create_dataset(
        &self,
        token: &str,
        owner: Option<&str>,
        name: &str,
        public: bool,
    ) -> Reply {
        self.gql(
            Some(token),
            "mutation($o: String, $n: String!, $p: Boolean!) {
               createDataset(input: { owner: $o, name: $n, public: $p }) { dataset { id fullName viewerRole } } }",
            json!({ "o": owner, "n": name, "p": public }),
        )
        .await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(state) = self.state.take() {
            state.close().await;
        }
    }
}

/// A real `orgql` process (the binary under test) on `database_url`, killed when dropped.
pub struct ServerProcess {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`, as the process reported it.
    pub address: String,
    /// Every line it has written to its standard output (its log), so far.
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary on a free port and waits for it to report its address.
    pub async fn start(database_url: &str) -> ServerProcess {
        Self::start_logging(database_url, "info").await
    }

    /// [`ServerProcess::start`], logging at `level` (`RUST_LOG`).
    pub async fn start_logging(database_url: &str, level: &str) -> ServerProcess {
        Self::start_with(database_url, &[], &[("RUST_LOG", level)]).await
    }

    /// [`ServerProcess::start`] with more flags and environment variables.
    pub async fn start_with(
        database_url: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> ServerProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_orgql"))
            .args(["--listen", "127.0.0.1:0", "--database-url", database_url])
            .args(args)
            .env("JWT_SECRET", TEST_SECRET)
            // Many sign-ups and log-ins from one address; not what these tests are about.
            .env("ORGQL_LOGIN_PER_ADDRESS", "100000")
            .env("ORGQL_SIGNUP_PER_ADDRESS", "100000")
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("orgql starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
        let address = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .expect("orgql reports its address in time")
                .unwrap()
                .expect("orgql printed its address");
            kept.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        let keeping = kept.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                keeping.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            child,
            address,
            lines: kept,
        }
    }

    /// What it has logged so far, line by line.
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// A client for it.
    pub fn client(&self) -> TestApp {
        TestApp::client_for(&self.address)
    }

    /// Sends SIGTERM (a graceful shutdown).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
    }

    /// Waits (at most `limit`) for the process to exit; its exit status.
    pub async fn exited(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("orgql exits in time")
            .expect("its status")
    }

    /// SIGKILL: no graceful shutdown, no chance to flush anything.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        let status = self.child.wait().await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
