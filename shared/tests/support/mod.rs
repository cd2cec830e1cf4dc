//! Test support for the integration tests of `shared`, included with `mod support;`.
//!
//! - [`dynoxide`], [`moto`] and [`backends`]: DynamoDB-compatible servers on
//!   loopback ports, with every table created under a prefix of its own.
//! - [`event`] and [`event_json`]: the payloads of `events/`.
//! - [`ManagementApi`]: a stand-in for the API Gateway Management API
//!   (`@connections`), with connections that can be made gone.

// Each test binary uses only part of this module, and its items are `pub` so
// that test files can reach them through `mod support;`.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::env;
use std::error::Error;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_smithy_http_client::tls;
use aws_smithy_types::error::display::DisplayErrorContext;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use shared::config::TableNames;
use shared::tables;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Region of every SDK client made here. moto keeps tables per region.
pub const REGION: &str = "us-east-1";

/// Python interpreter that runs moto's server, as [`moto`] describes.
pub const MOTO_PYTHON_VAR: &str = "CHAT_MOTO_PYTHON";
/// Set to `1` to make [`moto`] panic when moto's server cannot start.
pub const REQUIRE_MOTO_VAR: &str = "CHAT_REQUIRE_MOTO";

/// How long moto's server may take to import moto and report its port.
const MOTO_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns the repository root: the parent of the `shared` crate.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the shared crate is inside the repository")
        .to_path_buf()
}

/// Builds the HTTPS client (rustls with ring) that every SDK client made here uses.
/// It also speaks plain HTTP, which is what the emulators serve.
pub fn sdk_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Static credentials: the emulators accept any.
pub fn test_credentials() -> Credentials {
    Credentials::new("test", "test", None, None, "tests")
}

/// Builds a DynamoDB client for the server at `endpoint`.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(test_credentials())
        .endpoint_url(endpoint)
        .http_client(sdk_http_client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Builds a Management API client for `endpoint` (`http://127.0.0.1:PORT/{stage}`).
pub fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(REGION))
        .credentials_provider(test_credentials())
        .endpoint_url(endpoint)
        .http_client(sdk_http_client())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// Formats an error with all its sources, as one line.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    DisplayErrorContext(error).to_string()
}

// ---------------------------------------------------------------------------
// DynamoDB-compatible servers

/// A DynamoDB-compatible server with every table created under a fresh prefix.
pub struct TestDb {
    /// Client for [`TestDb::endpoint`].
    pub client: aws_sdk_dynamodb::Client,
    /// Names of the tables, all with the same prefix of this `TestDb`.
    pub tables: TableNames,
    /// The server's URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `"dynoxide"` or `"moto"`, for assertion messages.
    pub backend: &'static str,
    _server: Option<StopOnDrop>,
}

impl TestDb {
    async fn create(backend: &'static str, endpoint: String, server: Option<StopOnDrop>) -> Self {
        let client = dynamodb_client(&endpoint);
        let tables = TableNames::with_prefix(&unique_prefix());
        if let Err(error) = tables::create_missing(&client, &tables).await {
            panic!(
                "creating the tables on {backend} at {endpoint} failed: {}",
                error_chain(&error)
            );
        }
        Self {
            client,
            tables,
            endpoint,
            backend,
            _server: server,
        }
    }
}

/// Sends the shutdown signal of a server task when dropped.
struct StopOnDrop(Option<oneshot::Sender<()>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            // The server may have stopped already, with its runtime.
            let _ = stop.send(());
        }
    }
}

/// Returns a table-name prefix that no other `TestDb` of any test process uses.
fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    let nonce: u32 = rand::random();
    format!("t{}-{count}-{nonce:08x}-", std::process::id())
}

/// Starts dynoxide (in memory) in this test's runtime on `127.0.0.1:0` and
/// creates the tables with [`tables::create_missing`]. The server stops when
/// the `TestDb` is dropped or the test's runtime ends.
pub async fn dynoxide() -> TestDb {
    let database =
        dynoxide::Database::memory().expect("opening an in-memory dynoxide database failed");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding dynoxide to 127.0.0.1:0 failed");
    let address = listener
        .local_addr()
        .expect("dynoxide's listener has no local address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) =
            dynoxide::server::serve_with_shutdown(listener, database, shutdown).await
        {
            panic!("dynoxide on {address} failed: {error}");
        }
    });
    TestDb::create(
        "dynoxide",
        format!("http://{address}"),
        Some(StopOnDrop(Some(stop))),
    )
    .await
}

/// Connects to moto's server, started once per test binary and shared by its
/// tests, and creates the tables under a fresh prefix.
///
/// The Python that runs it is `CHAT_MOTO_PYTHON` when set (a relative path
/// such as `.venv/bin/python` is taken from the repository root), else
/// `.venv/bin/python` in the repository or `python3`, whichever first can
/// import `moto.server`. When that Python cannot, or none is found, this
/// prints one line saying the moto tests are skipped and returns `None`,
/// unless `CHAT_REQUIRE_MOTO=1`, which makes it panic instead.
pub async fn moto() -> Option<TestDb> {
    let server = tokio::task::spawn_blocking(moto_server)
        .await
        .expect("starting moto's server panicked");
    match server {
        Ok(server) => Some(TestDb::create("moto", server.endpoint.clone(), None).await),
        Err(reason) => {
            if env::var(REQUIRE_MOTO_VAR).is_ok_and(|value| value == "1") {
                panic!(
                    "moto's server is required ({REQUIRE_MOTO_VAR}=1) but could not start: \
                     {reason}. Create .venv with `scripts/test --setup`, or set \
                     {MOTO_PYTHON_VAR} to a Python that has moto[server] installed."
                );
            }
            report_moto_skipped(reason);
            None
        }
    }
}

/// Returns dynoxide, then moto when it is available, for tests that run the
/// same body against each backend.
pub async fn backends() -> Vec<TestDb> {
    let mut backends = vec![dynoxide().await];
    backends.extend(moto().await);
    backends
}

/// moto's server process. It lives as long as the test binary, because it
/// exits when its standard input reaches end of file, which happens when
/// this process exits and the pipe closes.
struct MotoServer {
    endpoint: String,
    _stdin: ChildStdin,
    _child: Child,
}

fn moto_server() -> Result<&'static MotoServer, &'static str> {
    static MOTO: OnceLock<Result<MotoServer, String>> = OnceLock::new();
    MOTO.get_or_init(|| find_moto_python().and_then(|python| start_moto(&python)))
        .as_ref()
        .map_err(String::as_str)
}

fn report_moto_skipped(reason: &str) {
    static REPORTED: OnceLock<()> = OnceLock::new();
    REPORTED.get_or_init(|| {
        // Written to stderr directly, because the test harness captures
        // `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr().lock(),
            "moto tests skipped: {reason}. To run them, create .venv with \
             `scripts/test --setup` or set {MOTO_PYTHON_VAR} to a Python with \
             moto[server] installed."
        );
    });
}

fn find_moto_python() -> Result<PathBuf, String> {
    if let Some(python) = env::var_os(MOTO_PYTHON_VAR).filter(|value| !value.is_empty()) {
        let python = resolve_from_repo_root(python);
        return if imports_moto_server(&python) {
            Ok(python)
        } else {
            Err(format!(
                "{MOTO_PYTHON_VAR}={} cannot import moto.server",
                python.display()
            ))
        };
    }
    let venv_python = repo_root().join(".venv/bin/python");
    if venv_python.exists() && imports_moto_server(&venv_python) {
        return Ok(venv_python);
    }
    let system_python = PathBuf::from("python3");
    if imports_moto_server(&system_python) {
        return Ok(system_python);
    }
    Err(format!(
        "no Python can import moto.server ({MOTO_PYTHON_VAR} is not set, {} and python3 cannot)",
        venv_python.display()
    ))
}

/// Resolves a relative path with a directory part from the repository root.
/// A bare command name is left for a `PATH` lookup.
fn resolve_from_repo_root(path: OsString) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_relative() && path.components().count() > 1 {
        repo_root().join(path)
    } else {
        path
    }
}

fn imports_moto_server(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "from moto.server import ThreadedMotoServer"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn start_moto(python: &Path) -> Result<MotoServer, String> {
    let script = repo_root().join("scripts/moto_server.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args(["--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| {
            format!(
                "starting {} {} failed: {error}",
                python.display(),
                script.display()
            )
        })?;

    let port = read_port(&mut child);
    let port = match port {
        Ok(port) => port,
        Err(reason) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(reason);
        }
    };
    let stdin = child.stdin.take().expect("moto's stdin is piped");
    Ok(MotoServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        _stdin: stdin,
        _child: child,
    })
}

/// Waits, at most [`MOTO_STARTUP_TIMEOUT`], for the port that
/// `scripts/moto_server.py` prints once it listens.
fn read_port(child: &mut Child) -> Result<u16, String> {
    let stdout = child.stdout.take().expect("moto's stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = sender.send(result);
    });
    match receiver.recv_timeout(MOTO_STARTUP_TIMEOUT) {
        Ok(Ok(line)) if line.is_empty() => {
            let status = child
                .wait()
                .map(|status| status.to_string())
                .unwrap_or_else(|error| format!("unknown status ({error})"));
            Err(format!(
                "moto's server exited before reporting its port: {status}"
            ))
        }
        Ok(Ok(line)) => line
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("moto's server printed {line:?} instead of its port")),
        Ok(Err(error)) => Err(format!("reading moto's server output failed: {error}")),
        Err(_) => Err(format!(
            "timed out after {} s waiting for moto's server to report its port",
            MOTO_STARTUP_TIMEOUT.as_secs()
        )),
    }
}

// ---------------------------------------------------------------------------
// Event payloads

/// Returns the path of `events/{name}`.
pub fn event_path(name: &str) -> PathBuf {
    repo_root().join("events").join(name)
}

/// Loads `events/{name}` as `T`, panicking with the file name on any error.
pub fn event<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = event_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {} failed: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "events/{name} is not a valid {}: {error}",
            std::any::type_name::<T>()
        )
    })
}

/// Loads `events/{name}` as untyped JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    event(name)
}

// ---------------------------------------------------------------------------
// Management API stand-in

/// A stand-in for the API Gateway Management API on `127.0.0.1:0`, stage
/// `local`.
///
/// It serves `POST`, `DELETE` and `GET /{stage}/@connections/{id}` (the id
/// URL-decoded). A connection is alive unless [`ManagementApi::set_gone`]
/// named it or a `DELETE` closed it. For a gone connection every request gets
/// 410 with `x-amzn-ErrorType: GoneException`, as API Gateway does.
pub struct ManagementApi {
    /// `http://127.0.0.1:PORT/local`, the value `WEBSOCKET_ENDPOINT` takes.
    pub endpoint: String,
    state: Arc<ManagementState>,
    _server: StopOnDrop,
}

/// The stage that [`ManagementApi`] serves.
pub const MANAGEMENT_STAGE: &str = "local";

#[derive(Default)]
struct ManagementState {
    gone: Mutex<HashSet<String>>,
    posts: Mutex<Vec<RecordedPost>>,
    deletes: Mutex<Vec<String>>,
    connected_at: String,
}

struct RecordedPost {
    connection_id: String,
    body: Bytes,
    delivered: bool,
}

impl ManagementApi {
    /// Starts the stand-in in this test's runtime. It stops when dropped.
    pub async fn start() -> Self {
        let state = Arc::new(ManagementState {
            connected_at: timestamp_now(),
            ..ManagementState::default()
        });
        let app = Router::new()
            .route(
                "/{stage}/@connections/{connection_id}",
                post(post_to_connection)
                    .delete(delete_connection)
                    .get(get_connection),
            )
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the Management API stand-in to 127.0.0.1:0 failed");
        let address = listener
            .local_addr()
            .expect("the Management API listener has no local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                panic!("the Management API stand-in on {address} failed: {error}");
            }
        });
        Self {
            endpoint: format!("http://{address}/{MANAGEMENT_STAGE}"),
            state,
            _server: StopOnDrop(Some(stop)),
        }
    }

    /// Builds a Management API client for this stand-in.
    pub fn client(&self) -> aws_sdk_apigatewaymanagement::Client {
        management_client(&self.endpoint)
    }

    /// Makes every later request for `connection_id` get 410 GoneException.
    pub fn set_gone(&self, connection_id: &str) {
        lock(&self.state.gone).insert(connection_id.to_owned());
    }

    /// Returns the frames delivered (status 200), in order, each as its
    /// connection id and body. A body that is not JSON is returned as a JSON string.
    pub fn posts(&self) -> Vec<(String, serde_json::Value)> {
        lock(&self.state.posts)
            .iter()
            .filter(|post| post.delivered)
            .map(|post| (post.connection_id.clone(), body_json(&post.body)))
            .collect()
    }

    /// Returns the connection ids of the posts rejected with 410 because the
    /// connection was gone, in order.
    pub fn gone_posts(&self) -> Vec<String> {
        lock(&self.state.posts)
            .iter()
            .filter(|post| !post.delivered)
            .map(|post| post.connection_id.clone())
            .collect()
    }

    /// Returns the connection ids of every `DELETE`, gone or not, in order.
    pub fn deletes(&self) -> Vec<String> {
        lock(&self.state.deletes).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock leaves valid data behind.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn body_json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn timestamp_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn gone_response() -> Response {
    (
        StatusCode::GONE,
        [
            (HeaderName::from_static("x-amzn-errortype"), "GoneException"),
            (HeaderName::from_static("content-type"), "application/json"),
        ],
        r#"{"message":null}"#,
    )
        .into_response()
}

/// Returns a 404 response when `stage` is not [`MANAGEMENT_STAGE`], the one
/// stage the stand-in serves.
fn unknown_stage_response(stage: &str) -> Option<Response> {
    (stage != MANAGEMENT_STAGE).then(|| {
        (
            StatusCode::NOT_FOUND,
            [(HeaderName::from_static("content-type"), "application/json")],
            r#"{"message":"Not Found"}"#,
        )
            .into_response()
    })
}

async fn post_to_connection(
    State(state): State<Arc<ManagementState>>,
    UrlPath((stage, connection_id)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(response) = unknown_stage_response(&stage) {
        return response;
    }
    let delivered = !lock(&state.gone).contains(&connection_id);
    lock(&state.posts).push(RecordedPost {
        connection_id,
        body,
        delivered,
    });
    if delivered {
        StatusCode::OK.into_response()
    } else {
        gone_response()
    }
}

async fn delete_connection(
    State(state): State<Arc<ManagementState>>,
    UrlPath((stage, connection_id)): UrlPath<(String, String)>,
) -> Response {
    if let Some(response) = unknown_stage_response(&stage) {
        return response;
    }
    lock(&state.deletes).push(connection_id.clone());
    // A deleted connection is closed, so it is gone from now on.
    if lock(&state.gone).insert(connection_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone_response()
    }
}

async fn get_connection(
    State(state): State<Arc<ManagementState>>,
    UrlPath((stage, connection_id)): UrlPath<(String, String)>,
) -> Response {
    if let Some(response) = unknown_stage_response(&stage) {
        return response;
    }
    if lock(&state.gone).contains(&connection_id) {
        return gone_response();
    }
    axum::Json(serde_json::json!({
        "connectedAt": state.connected_at,
        "identity": { "sourceIp": "127.0.0.1" },
        "lastActiveAt": timestamp_now(),
    }))
    .into_response()
}
