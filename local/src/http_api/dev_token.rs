//! `POST /dev/token {"user_id"}`: an HS256 bearer token for any valid user
//! id, valid 12 hours. It exists only in the local stack.

use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::domain::{Timestamp, validate_user_id};
use shared::error::{ChatError, ErrorCode};
use shared::handlers::http::error_response;
use tracing::{error, info};

use super::into_axum_response;

/// The path of the route.
pub const PATH: &str = "/dev/token";

/// How long a development token is valid.
pub const TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(12);

#[derive(Debug, Deserialize)]
struct TokenRequest {
    user_id: String,
}

/// Returns `{"token", "user_id", "expires_at"}`, or 400 with the JSON error
/// body of `http-api` when the body or the user id is invalid.
pub fn issue(secret: &[u8], body: &[u8]) -> Response {
    let user_id = match parse(body) {
        Ok(user_id) => user_id,
        Err(err) => return into_axum_response(error_response(&err)),
    };
    let expires_at = Timestamp::new(chrono::Utc::now()).plus(TOKEN_LIFETIME);
    match shared::auth::issue_hs256(secret, &user_id, expires_at) {
        Ok(token) => {
            info!(user_id, "development token issued");
            let body = json!({ "token": token, "user_id": user_id, "expires_at": expires_at });
            (http::StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(err) => {
            error!(error = %err, "signing a development token failed");
            into_axum_response(error_response(&ChatError::Internal(Box::new(err))))
        }
    }
}

fn parse(body: &[u8]) -> Result<String, ChatError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ChatError::client(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {err}"),
        )
    })?;
    let request: TokenRequest = serde_json::from_value(value).map_err(|err| {
        ChatError::client(
            ErrorCode::InvalidRequest,
            format!("expected {{\"user_id\": string}}: {err}"),
        )
    })?;
    validate_user_id("user_id", &request.user_id)?;
    Ok(request.user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_a_valid_user_id() {
        assert_eq!(
            parse(br#"{"user_id":"alice@example.com"}"#).unwrap(),
            "alice@example.com"
        );
    }

    #[test]
    fn parse_rejects_bad_bodies() {
        let code = |body: &[u8]| parse(body).unwrap_err().code();
        assert_eq!(code(b"{not json"), ErrorCode::InvalidJson);
        assert_eq!(code(b"{}"), ErrorCode::InvalidRequest);
        assert_eq!(code(br#"{"user_id":7}"#), ErrorCode::InvalidRequest);
        assert_eq!(code(br#"{"user_id":""}"#), ErrorCode::InvalidRequest);
        assert_eq!(code(br#"{"user_id":"a b"}"#), ErrorCode::InvalidRequest);
        let long = format!(r#"{{"user_id":"{}"}}"#, "a".repeat(129));
        assert_eq!(code(long.as_bytes()), ErrorCode::InvalidRequest);
    }
}
