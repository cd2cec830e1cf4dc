//! API Gateway's WebSocket limits and timeouts, and `$default`, through the
//! `chat-local` binary.

mod support;

use futures::SinkExt;
use serde_json::json;
use support::{LocalStack, User};
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

fn close_code(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Option<u16> {
    frame.map(|frame| u16::from(frame.code))
}

#[tokio::test]
async fn frame_over_32_kb_closes_with_1009() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    let content = "x".repeat(40 * 1024);
    alice
        .client
        .send_json(json!({ "type": "ping", "padding": content }))
        .await;
    assert_eq!(close_code(alice.client.close_frame().await), Some(1009));
}

#[tokio::test]
async fn fragmented_message_over_128_kb_closes_with_1009() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    // Five frames of 30 KB: each under the frame limit, 150 KB in all.
    let chunk = vec![b'x'; 30 * 1024];
    for index in 0..5 {
        let opcode = if index == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let header = FrameHeader {
            is_final: index == 4,
            opcode,
            ..FrameHeader::default()
        };
        let frame = Frame::from_payload(header, chunk.clone().into());
        if alice
            .client
            .socket
            .send(Message::Frame(frame))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(alice.client.close_frame().await), Some(1009));
}

#[tokio::test]
async fn binary_frame_closes_with_1003() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    alice.client.send(Message::binary(vec![1u8, 2, 3])).await;
    let frame = alice.client.close_frame().await;
    assert_eq!(frame.map(|frame| frame.code), Some(CloseCode::Unsupported));
}

#[tokio::test]
async fn ping_gets_pong() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;
    alice.client.send_json(json!({ "type": "ping" })).await;
    let frame = alice.client.next_json().await;
    assert_eq!(frame, json!({ "type": "pong" }));
}

#[tokio::test]
async fn unknown_type_gets_an_error_frame() {
    let stack = LocalStack::start(&[]);
    let mut alice = User::connect(&stack, "alice").await;

    alice.client.send_json(json!({ "type": "shout" })).await;
    let error = alice.client.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "unknown_type");
    assert_eq!(error["request_type"], "shout");

    alice.client.send(Message::text("{not json")).await;
    let error = alice.client.next_json().await;
    assert_eq!(error["code"], "invalid_json");

    alice.client.send_json(json!({ "type": "ping" })).await;
    assert_eq!(alice.client.next_json().await["type"], "pong");
}

#[tokio::test]
async fn idle_connection_is_closed_with_1001() {
    let stack = LocalStack::start(&["--idle-timeout", "1"]);
    let mut alice = User::connect(&stack, "alice").await;
    let frame = alice.client.close_frame().await;
    assert_eq!(frame.map(|frame| frame.code), Some(CloseCode::Away));
}

#[tokio::test]
async fn old_connection_is_closed_with_1001() {
    let stack = LocalStack::start(&["--max-connection-age", "1"]);
    let mut alice = User::connect(&stack, "alice").await;
    let frame = alice.client.close_frame().await;
    assert_eq!(frame.map(|frame| frame.code), Some(CloseCode::Away));
}
