//! Test support for the end-to-end tests of the local stack, included with
//! `mod support;`.
//!
//! - [`LocalStack`]: the `chat-local` binary as a process on free loopback
//!   ports, killed by its pid when dropped.
//! - [`Api`]: HTTP calls to the stack's HTTP API.
//! - [`Client`]: a WebSocket client.
//! - [`eventually`]: bounded polling for a condition.
//! - [`dynoxide`]: dynoxide in this test's process, with the tables of `shared`.

// Each test binary uses only part of this module.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the stack may take to print its ready line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a test waits for one frame or condition.
pub const WAIT: Duration = Duration::from_secs(15);

/// Returns the repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the local crate is inside the repository")
        .to_path_buf()
}

/// What the stack's ready line reports.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Urls {
    pub websocket_url: String,
    pub management_endpoint: String,
    pub http_url: String,
    pub s3_endpoint: String,
    pub dynamodb_endpoint: String,
    pub table_prefix: String,
    pub bucket: String,
}

/// A `chat-local` process.
pub struct LocalStack {
    child: Child,
    pub urls: Urls,
    logs: Arc<Mutex<Vec<String>>>,
}

impl LocalStack {
    /// Starts `chat-local --in-memory` on free ports with `extra` arguments.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec!["--in-memory"];
        args.extend_from_slice(extra);
        Self::start_with(&args, &[])
    }

    /// Starts `chat-local` on free ports with `args` and environment `env`.
    /// The SDK's endpoint variables of the test's environment are removed.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-local"));
        command
            .args(["--ws-port", "0", "--http-port", "0", "--s3-port", "0"])
            .args(args)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .env_remove("JWT_SECRET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting chat-local failed");

        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });

        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready, ready_line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("CHAT_LOCAL_READY ")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(json.to_owned());
                }
            }
        });

        let line = match ready_line.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let logs = logs.lock().unwrap().join("\n");
                panic!("chat-local did not report ready (exit: {status:?}); its log:\n{logs}");
            }
        };
        let urls: Urls = serde_json::from_str(&line).expect("the ready line is JSON");
        Self { child, urls, logs }
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Returns a client of the HTTP API.
    pub fn api(&self) -> Api {
        Api {
            base: self.urls.http_url.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends SIGTERM and waits, at most 30 s, for the process to exit.
    /// Returns whether it exited with success.
    pub fn terminate(&mut self) -> bool {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill failed");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
        for _ in 0..300 {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("waiting for chat-local failed")
            {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chat-local did not exit within 30 s of SIGTERM");
    }

    /// Connects a WebSocket client with `ticket`.
    pub async fn connect(&self, ticket: &str) -> Client {
        Client::connect(&format!("{}?ticket={ticket}", self.urls.websocket_url)).await
    }

    /// Builds a DynamoDB client for the stack's DynamoDB endpoint.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        dynamodb_client(&self.urls.dynamodb_endpoint)
    }

    /// Returns the name of table `logical` (`Connections`, ...).
    pub fn table(&self, logical: &str) -> String {
        format!("{}{logical}", self.urls.table_prefix)
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // Stops the child by its own pid, and only if it is still running:
        // SIGTERM first, so that it removes the temporary folders of
        // `--in-memory`, then SIGKILL if it has not exited within 5 s.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let exited = (0..50).any(|_| {
                std::thread::sleep(Duration::from_millis(100));
                self.child.try_wait().ok().flatten().is_some()
            });
            if !exited {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let logs = self.logs.lock().unwrap();
            let start = logs.len().saturating_sub(80);
            let _ = writeln!(
                std::io::stderr().lock(),
                "--- chat-local log (last {} lines) ---\n{}",
                logs.len() - start,
                logs[start..].join("\n")
            );
        }
    }
}

/// Builds a DynamoDB client for `endpoint`, with the local credentials.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(chat_local::aws::credentials())
        .endpoint_url(endpoint)
        .http_client(shared::aws::https_client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Builds a DynamoDB Streams client for `endpoint`, with the local credentials.
pub fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(chat_local::aws::credentials())
        .endpoint_url(endpoint)
        .http_client(shared::aws::https_client())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// dynoxide in memory on a free port of this process, stopped when dropped.
pub struct Dynoxide {
    pub endpoint: String,
    pub tables: shared::config::TableNames,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Dynoxide {
    /// Builds a client for it.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        dynamodb_client(&self.endpoint)
    }

    /// Puts a message `message_id` of chat `c`.
    pub async fn put_message(&self, message_id: &str) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.client()
            .put_item()
            .table_name(&self.tables.messages)
            .item("chat_id", AttributeValue::S("c".into()))
            .item("message_id", AttributeValue::S(message_id.into()))
            .item(
                "content",
                AttributeValue::S(format!("content of {message_id}")),
            )
            .send()
            .await
            .expect("PutItem failed");
    }
}

/// Starts dynoxide and creates the tables of `shared` with the prefix `t-`.
pub async fn dynoxide() -> Dynoxide {
    let database = dynoxide::Database::memory().expect("an in-memory dynoxide");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let _ = dynoxide::server::serve_with_shutdown(listener, database, shutdown).await;
    });
    let tables = shared::config::TableNames::with_prefix("t-");
    shared::tables::create_missing(&dynamodb_client(&endpoint), &tables)
        .await
        .expect("creating the tables failed");
    Dynoxide {
        endpoint,
        tables,
        _stop: stop,
    }
}

/// The stack's HTTP API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    /// `POST /dev/token` for `user_id`.
    pub async fn token(&self, user_id: &str) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/dev/token",
                None,
                Some(json!({ "user_id": user_id })),
            )
            .await;
        assert_eq!(status, 200, "POST /dev/token for {user_id}: {body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// `POST /connect-ticket` with `token`.
    pub async fn ticket(&self, token: &str) -> String {
        let (status, body) = self
            .send(reqwest::Method::POST, "/connect-ticket", Some(token), None)
            .await;
        assert_eq!(status, 200, "POST /connect-ticket: {body}");
        body["ticket"].as_str().expect("a ticket").to_owned()
    }

    /// `POST /chats` by `token` with `members`; returns the chat id.
    pub async fn create_chat(&self, token: &str, name: &str, members: &[&str]) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/chats",
                Some(token),
                Some(json!({ "name": name, "member_ids": members })),
            )
            .await;
        assert_eq!(status, 201, "POST /chats: {body}");
        body["chat_id"].as_str().expect("a chat id").to_owned()
    }

    /// `GET {path}` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// Any request; the body is parsed as JSON, or `null` when empty.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the HTTP request failed");
        let status = response.status().as_u16();
        let text = response.text().await.expect("reading the body failed");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
}

/// A user with a live connection.
pub struct User {
    pub name: String,
    pub token: String,
    pub client: Client,
}

impl User {
    /// Gets a token and a ticket for `name` and connects.
    pub async fn connect(stack: &LocalStack, name: &str) -> Self {
        let api = stack.api();
        let token = api.token(name).await;
        let ticket = api.ticket(&token).await;
        let client = stack.connect(&ticket).await;
        Self {
            name: name.to_owned(),
            token,
            client,
        }
    }

    /// Subscribes to `chat_id` and waits for `subscribed`.
    pub async fn subscribe(&mut self, chat_id: &str) {
        self.client
            .send_json(json!({ "type": "subscribe", "chat_id": chat_id }))
            .await;
        let frame = self.client.frame_of_type("subscribed").await;
        assert_eq!(frame["chat_id"], chat_id, "{}: {frame}", self.name);
    }

    /// Sends `content` to `chat_id` and returns the `message-accepted` frame.
    pub async fn send_message(&mut self, chat_id: &str, content: &str) -> Value {
        self.client
            .send_json(json!({ "type": "message", "chat_id": chat_id, "content": content }))
            .await;
        self.client.frame_of_type("message-accepted").await
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client.
pub struct Client {
    pub socket: Socket,
}

impl Client {
    /// Connects to `url`, panicking when the upgrade is rejected.
    pub async fn connect(url: &str) -> Self {
        match try_connect(url).await {
            Ok(client) => client,
            Err(status) => panic!("connecting to {url} was rejected with {status}"),
        }
    }

    /// Sends `value` as a text frame.
    pub async fn send_json(&mut self, value: Value) {
        self.send(Message::text(value.to_string())).await;
    }

    /// Sends one message.
    pub async fn send(&mut self, message: Message) {
        self.socket
            .send(message)
            .await
            .expect("sending a frame failed");
    }

    /// Reads the next text frame as JSON, within [`WAIT`].
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("no frame arrived in time")
                .expect("the connection closed")
                .expect("reading a frame failed");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or(Value::String(text.to_string()));
                }
                Message::Close(frame) => panic!("the connection closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Reads the next frame of `frame_type`, skipping frames of other types.
    pub async fn frame_of_type(&mut self, frame_type: &str) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame["type"] == frame_type {
                return frame;
            }
        }
    }

    /// Reads the close frame the server sends next, skipping data frames.
    /// Returns `None` when the connection ended without one.
    pub async fn close_frame(&mut self) -> Option<CloseFrame> {
        loop {
            let next = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the connection did not close in time");
            match next {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Sends a close frame and waits for the server's close frame.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.socket.next()).await {}
    }
}

/// Connects to `url`. `Err` contains the HTTP status of a rejected upgrade.
pub async fn try_connect(url: &str) -> Result<Client, u16> {
    let mut request = url.into_client_request().expect("a WebSocket URL");
    request
        .headers_mut()
        .insert("user-agent", "chat-local-tests".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(Client { socket }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("connecting to {url} failed: {err}"),
    }
}

/// Calls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {} s waiting for {what}",
            WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
