//! The stack against moto's server instead of the embedded DynamoDB and S3,
//! chosen with the SDK's standard `AWS_ENDPOINT_URL_DYNAMODB` and
//! `AWS_ENDPOINT_URL_S3`.
//!
//! moto's server runs from `scripts/moto_server.py` with the Python in
//! `CHAT_MOTO_PYTHON`, else `.venv/bin/python` of the repository. When
//! neither can import moto, the test prints one line and passes, unless
//! `CHAT_REQUIRE_MOTO=1`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{LocalStack, User, repo_root};

/// How long moto's server may take to import moto and report its port.
const MOTO_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// moto's server; it exits when its standard input closes, which dropping
/// this does, and is killed by its pid as well.
struct Moto {
    endpoint: String,
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn moto_python() -> Result<PathBuf, String> {
    let python = match std::env::var_os("CHAT_MOTO_PYTHON").filter(|value| !value.is_empty()) {
        Some(python) => {
            let python = PathBuf::from(python);
            if python.is_relative() && python.components().count() > 1 {
                repo_root().join(python)
            } else {
                python
            }
        }
        None => repo_root().join(".venv/bin/python"),
    };
    let imports = Command::new(&python)
        .args(["-c", "from moto.server import ThreadedMotoServer"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if imports {
        Ok(python)
    } else {
        Err(format!("{} cannot import moto.server", python.display()))
    }
}

fn start_moto() -> Result<Moto, String> {
    let python = moto_python()?;
    let script = repo_root().join("scripts/moto_server.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("starting {} failed: {err}", script.display()))?;

    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let stdin = child.stdin.take();

    let mut moto = Moto {
        endpoint: String::new(),
        stdin,
        child,
    };
    let line = receiver
        .recv_timeout(MOTO_STARTUP_TIMEOUT)
        .map_err(|_| "moto's server did not report its port in time".to_owned())?;
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| format!("moto's server printed {line:?} instead of its port"))?;
    moto.endpoint = format!("http://127.0.0.1:{port}");
    Ok(moto)
}

#[tokio::test]
async fn chat_works_on_moto() {
    let moto = match start_moto() {
        Ok(moto) => moto,
        Err(reason) if std::env::var("CHAT_REQUIRE_MOTO").is_ok_and(|value| value == "1") => {
            panic!("moto's server is required (CHAT_REQUIRE_MOTO=1) but could not start: {reason}")
        }
        Err(reason) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "moto test skipped: {reason}; create .venv with `scripts/test --setup` or set \
                 CHAT_MOTO_PYTHON"
            );
            return;
        }
    };

    let stack = LocalStack::start_with(
        &["--in-memory"],
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_S3", moto.endpoint.as_str()),
        ],
    );
    assert_eq!(stack.urls.dynamodb_endpoint, moto.endpoint);
    assert_eq!(stack.urls.s3_endpoint, moto.endpoint);

    let mut alice = User::connect(&stack, "alice").await;
    let mut bob = User::connect(&stack, "bob").await;
    let chat_id = stack
        .api()
        .create_chat(&alice.token, "on moto", &["bob"])
        .await;
    alice.subscribe(&chat_id).await;
    bob.subscribe(&chat_id).await;
    let accepted = alice.send_message(&chat_id, "hello from moto").await;
    assert_eq!(accepted["seq"], 1);
    let received = bob.client.frame_of_type("message").await;
    assert_eq!(received["content"], "hello from moto");
    assert_eq!(received["message_id"], accepted["message_id"]);

    // The bucket was created on moto, and upload URLs point there.
    let (status, created) = stack
        .api()
        .send(
            reqwest::Method::POST,
            &format!("/chats/{chat_id}/attachments"),
            Some(&alice.token),
            Some(serde_json::json!({
                "file_name": "a.png", "content_type": "image/png", "size": 3
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let url = created["upload"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/{}/", moto.endpoint, stack.urls.bucket)),
        "{url}"
    );
    let put = reqwest::Client::new()
        .put(url)
        .header("content-type", "image/png")
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .expect("the PUT to moto failed");
    assert_eq!(put.status(), 200);
}
