//! Bearer tokens: JWTs whose `sub` is the user id and which carry `exp`.
//!
//! HS256 tokens are verified with a shared secret of at least 32 bytes; an
//! empty secret turns HS256 off.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, var};
use crate::domain::{Timestamp, validate_user_id};
use crate::error::ChatError;

/// Minimum HS256 secret length, in bytes (the size of the SHA-256 output).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was rejected. Every variant is a 401 for the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is not a JWT, or uses an algorithm that is not accepted.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature, expiry or a claim did not verify.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// No verification method is configured for the token's algorithm.
    #[error("tokens signed with {0:?} are not accepted")]
    AlgorithmNotAccepted(Algorithm),
}

impl From<AuthError> for ChatError {
    fn from(err: AuthError) -> Self {
        ChatError::unauthorized(err.to_string())
    }
}

/// The claims this service reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, in epoch seconds.
    pub exp: i64,
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    hs256: Option<DecodingKey>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.hs256.is_some())
            .finish()
    }
}

impl Authenticator {
    /// An authenticator accepting HS256 tokens signed with `secret`.
    ///
    /// # Errors
    ///
    /// When `secret` is shorter than [`MIN_SECRET_BYTES`].
    pub fn hs256(secret: &[u8]) -> Result<Self, ConfigError> {
        Ok(Self {
            hs256: Some(hs256_key(secret)?),
        })
    }

    /// The authenticator `JWT_SECRET` configures.
    pub fn from_env() -> Result<Self, ConfigError> {
        let hs256 = config::optional(var::JWT_SECRET)
            .map(|secret| hs256_key(secret.as_bytes()))
            .transpose()?;
        Ok(Self { hs256 })
    }

    /// Verifies `token` and returns its user id.
    pub async fn verify(&self, token: &str) -> Result<String, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| AuthError::Malformed(err.to_string()))?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let key = self
                    .hs256
                    .as_ref()
                    .ok_or(AuthError::AlgorithmNotAccepted(Algorithm::HS256))?;
                let mut validation = Validation::new(Algorithm::HS256);
                validation.set_required_spec_claims(&["exp", "sub"]);
                validation.validate_aud = false;
                validation.leeway = 0;
                jsonwebtoken::decode::<Claims>(token, key, &validation)
                    .map_err(|err| AuthError::Invalid(err.to_string()))?
                    .claims
            }
            other => return Err(AuthError::AlgorithmNotAccepted(other)),
        };
        validate_user_id("sub", &claims.sub).map_err(|err| AuthError::Invalid(err.to_string()))?;
        Ok(claims.sub)
    }

    /// Verifies the `Authorization: Bearer {token}` header value.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<String, AuthError> {
        let value = header.ok_or(AuthError::Missing)?.trim();
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Missing)?
            .trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        self.verify(token).await
    }
}

fn hs256_key(secret: &[u8]) -> Result<DecodingKey, ConfigError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name: var::JWT_SECRET,
            reason: format!(
                "must be at least {MIN_SECRET_BYTES} bytes, or empty to turn HS256 off"
            ),
        });
    }
    DecodingKey::from_secret(secret).map_err(|err| ConfigError::Invalid {
        name: var::JWT_SECRET,
        reason: err.to_string(),
    })
}

/// Signs an HS256 token for `user_id` that expires at `expires_at`, as the
/// local stack's `POST /dev/token` does.
pub fn issue_hs256(
    secret: &[u8],
    user_id: &str,
    expires_at: Timestamp,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: user_id.to_owned(),
        exp: expires_at.epoch_seconds(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret)?,
    )
}
