//! One WebSocket connection after the upgrade: frames in, replies and posts
//! out, API Gateway's limits and timeouts, and the close that ends it.
//!
//! A connection is a task that owns the socket. Everything else reaches it
//! through its [`Command`] channel: replies of route functions, posts and
//! deletes of the Management API, and the shutdown of the stack.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, Role, WebSocketConfig};

use super::{MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, WebSocketGateway};

/// Route invocations of one connection that run at once; further frames
/// wait to be read until one finishes.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 16;

/// How long a write to the client may take before the connection counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the close handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a frame over the limit, the rest of it is read and dropped until the
/// client is quiet this long, so that closing the socket does not reset it
/// before the client has read the close frame.
const DRAIN_QUIET_PERIOD: Duration = Duration::from_millis(250);
/// At most this much of an oversized frame is drained.
const MAX_DRAIN_BYTES: usize = 1 << 20;

/// The `disconnectReason` (and close frame reason) of each way the gateway closes.
pub mod reason {
    /// A `DELETE @connections/{id}`.
    pub const NORMAL: &str = "Connection Closed Normally";
    /// Idle timeout, maximum connection age or shutdown of the stack.
    pub const GOING_AWAY: &str = "Going away";
    /// A frame over 32 KB or a message over 128 KB.
    pub const TOO_BIG: &str = "Message too big";
    /// A binary frame.
    pub const BINARY: &str = "Binary frames are not supported";
    /// A text frame that is not UTF-8.
    pub const INVALID_UTF8: &str = "Invalid UTF-8 in a text frame";
    /// Any other violation of the WebSocket protocol.
    pub const PROTOCOL: &str = "Protocol error";
    /// A fault of the gateway itself.
    pub const INTERNAL: &str = "Internal server error";
    /// A close frame without a status code (as API Gateway words it).
    pub const NO_STATUS: &str = "Client-side close frame status not set";
    // NOTE: the wording API Gateway uses for a connection lost without a
    // close frame is not documented; this text is the local stack's own.
    /// The TCP connection ended without a close frame.
    pub const ABNORMAL: &str = "Connection Closed Abnormally";
}

/// Facts about a connection that `GET @connections/{id}` and the events report.
#[derive(Debug)]
pub struct ConnectionInfo {
    /// API Gateway-style id.
    pub connection_id: String,
    /// When `$connect` ran.
    pub connected_at: DateTime<Utc>,
    /// The client's IP address.
    pub source_ip: String,
    /// The upgrade request's `User-Agent`.
    pub user_agent: Option<String>,
    /// The upgrade request's `Host`.
    pub host: String,
    last_active_at: Mutex<DateTime<Utc>>,
}

impl ConnectionInfo {
    /// Creates the info of a connection opened now.
    pub fn new(
        connection_id: String,
        source_ip: String,
        user_agent: Option<String>,
        host: String,
    ) -> Self {
        let now = Utc::now();
        Self {
            connection_id,
            connected_at: now,
            source_ip,
            user_agent,
            host,
            last_active_at: Mutex::new(now),
        }
    }

    /// `domainName`: the `Host` without its port.
    pub fn domain_name(&self) -> &str {
        let host = self.host.as_str();
        if let Some(end) = host.strip_prefix('[').and_then(|rest| rest.find(']')) {
            return &host[..end + 2];
        }
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    }

    /// When the client last sent a frame.
    pub fn last_active_at(&self) -> DateTime<Utc> {
        *self
            .last_active_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self) {
        *self
            .last_active_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Utc::now();
    }
}

/// A request to a connection's task.
#[derive(Debug)]
pub enum Command {
    /// Sends a frame; `done` learns whether it was written.
    Send {
        /// The frame.
        message: Message,
        /// Told `true` once written, `false` when the connection broke.
        done: Option<oneshot::Sender<bool>>,
    },
    /// Closes the connection with `code` and `reason`; `done` learns when the
    /// close frame was sent.
    Close {
        /// Close code.
        code: u16,
        /// Close reason, also the `disconnectReason`.
        reason: &'static str,
        /// Told once the close frame is sent.
        done: Option<oneshot::Sender<()>>,
    },
}

/// The end of a connection: the status code and reason `$disconnect` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    /// `disconnectStatusCode`.
    pub status_code: u16,
    /// `disconnectReason`.
    pub reason: String,
}

impl Closure {
    /// Returns the closure of a connection lost without a close frame.
    pub fn abnormal() -> Self {
        Self {
            status_code: 1006,
            reason: reason::ABNORMAL.to_owned(),
        }
    }
}

enum Ending {
    ClientClosed(Option<CloseFrame>),
    ServerCloses {
        code: u16,
        reason: &'static str,
        // After a read error the stream cannot be read as WebSocket frames
        // any more, so the rest of the input is drained as raw bytes.
        read_failed: bool,
        done: Option<oneshot::Sender<()>>,
    },
    Dropped,
}

impl Ending {
    fn server(code: u16, reason: &'static str) -> Self {
        Self::ServerCloses {
            code,
            reason,
            read_failed: false,
            done: None,
        }
    }

    fn read_failure(code: u16, reason: &'static str) -> Self {
        Self::ServerCloses {
            code,
            reason,
            read_failed: true,
            done: None,
        }
    }
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Returns the WebSocket configuration with API Gateway's limits: 32 KB per
/// frame, 128 KB per message.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_MESSAGE_BYTES))
}

/// Serves one upgraded connection until it ends, and returns how it ended.
///
/// `replies` is a sender of the connection's own channel, for the replies of
/// the route functions.
pub(super) async fn serve(
    gateway: &Arc<WebSocketGateway>,
    info: &Arc<ConnectionInfo>,
    upgraded: hyper::upgrade::Upgraded,
    mut commands: mpsc::Receiver<Command>,
    replies: mpsc::Sender<Command>,
) -> Closure {
    let socket = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(websocket_config()),
    )
    .await;
    let (mut sink, mut stream) = socket.split();
    let idle_timeout = gateway.options.idle_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    let max_age = tokio::time::sleep(gateway.options.max_connection_age);
    tokio::pin!(idle, max_age);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));

    let ending = loop {
        tokio::select! {
            frame = stream.next() => {
                if !matches!(frame, Some(Ok(Message::Close(_))) | Some(Err(_)) | None) {
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    info.touch();
                }
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        // The semaphore is never closed, so this waits for a permit.
                        let Ok(permit) = in_flight.clone().acquire_owned().await else {
                            break Ending::server(1011, reason::INTERNAL);
                        };
                        let gateway = Arc::clone(gateway);
                        let info = Arc::clone(info);
                        let replies = replies.clone();
                        tokio::spawn(async move {
                            let reply = gateway.invoke_route(&info, text.as_str()).await;
                            // Released before the reply waits for room in the
                            // channel, which this loop empties.
                            drop(permit);
                            if let Some(message) = reply {
                                let _ = replies.send(Command::Send { message, done: None }).await;
                            }
                        });
                    }
                    Some(Ok(Message::Binary(_))) => break Ending::server(1003, reason::BINARY),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => break Ending::ClientClosed(frame),
                    Some(Err(WsError::Capacity(_))) => break Ending::read_failure(1009, reason::TOO_BIG),
                    Some(Err(WsError::Utf8(_))) => break Ending::read_failure(1007, reason::INVALID_UTF8),
                    Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)))
                    | Some(Err(WsError::Io(_)))
                    | None => break Ending::Dropped,
                    Some(Err(_)) => break Ending::read_failure(1002, reason::PROTOCOL),
                }
            }
            command = commands.recv() => match command {
                Some(Command::Send { message, done }) => {
                    let written = matches!(
                        tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
                        Ok(Ok(()))
                    );
                    if let Some(done) = done {
                        let _ = done.send(written);
                    }
                    if !written {
                        break Ending::Dropped;
                    }
                }
                Some(Command::Close { code, reason, done }) => {
                    break Ending::ServerCloses { code, reason, read_failed: false, done };
                }
                // Unreachable while `replies` lives, which it does until here.
                None => break Ending::server(1001, reason::GOING_AWAY),
            },
            () = &mut idle => break Ending::server(1001, reason::GOING_AWAY),
            () = &mut max_age => break Ending::server(1001, reason::GOING_AWAY),
        }
    };
    // From here on the Management API returns 410, as for a closed connection.
    gateway.unregister(&info.connection_id);
    finish(sink, stream, ending).await
}

/// Completes the close handshake of `ending` and returns the closure.
async fn finish(
    mut sink: futures::stream::SplitSink<Socket, Message>,
    mut stream: futures::stream::SplitStream<Socket>,
    ending: Ending,
) -> Closure {
    match ending {
        Ending::ClientClosed(frame) => {
            // The library queued the close reply, so flushing sends it, and the
            // next read returns the end of the handshake.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                let _ = sink.flush().await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
            match frame {
                Some(frame) => Closure {
                    status_code: u16::from(frame.code),
                    reason: frame.reason.to_string(),
                },
                None => Closure {
                    status_code: 1005,
                    reason: reason::NO_STATUS.to_owned(),
                },
            }
        }
        Ending::ServerCloses {
            code,
            reason,
            read_failed,
            done,
        } => {
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            }));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(close)).await;
            if let Some(done) = done {
                let _ = done.send(());
            }
            if read_failed {
                if let Ok(mut socket) = sink.reunite(stream) {
                    drain(socket.get_mut()).await;
                }
            } else {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                    while let Some(Ok(_)) = stream.next().await {}
                })
                .await;
            }
            Closure {
                status_code: code,
                reason: reason.to_owned(),
            }
        }
        Ending::Dropped => Closure::abnormal(),
    }
}

/// Reads and drops raw input until the client is quiet, closes, or has sent
/// [`MAX_DRAIN_BYTES`], for at most [`CLOSE_TIMEOUT`].
async fn drain(io: &mut TokioIo<hyper::upgrade::Upgraded>) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut buffer = vec![0u8; 8192];
    let mut drained = 0;
    while drained < MAX_DRAIN_BYTES {
        let quiet = (Instant::now() + DRAIN_QUIET_PERIOD).min(deadline);
        match tokio::time::timeout_at(quiet, io.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(read)) => drained += read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(host: &str) -> ConnectionInfo {
        ConnectionInfo::new("id".into(), "127.0.0.1".into(), None, host.into())
    }

    #[test]
    fn domain_name_drops_the_port() {
        assert_eq!(info("127.0.0.1:3001").domain_name(), "127.0.0.1");
        assert_eq!(info("localhost").domain_name(), "localhost");
        assert_eq!(info("[::1]:3001").domain_name(), "[::1]");
    }
}
