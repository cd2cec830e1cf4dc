//! Bearer tokens: JWTs whose `sub` is the user id and which carry `exp`.
//!
//! Two methods, each optional:
//!
//! - RS256 against the JWKS of an OpenID provider (a Cognito user pool or any
//!   other), with `iss` checked against `JWT_ISSUER` and the audience against
//!   `JWT_AUDIENCE`. The audience is accepted from `aud` or, as Cognito access
//!   tokens carry it, from `client_id`. A token with a `token_use` claim
//!   (Cognito sets one) must have `token_use: "access"`: Cognito ID tokens are
//!   rejected, because an API takes access tokens. Tokens without the claim,
//!   as other providers issue them, are accepted. The JWKS is fetched at init
//!   and again when a token names an unknown `kid`, at most once a minute.
//! - HS256 with a shared secret of at least 32 bytes; an empty secret turns
//!   HS256 off.
//!
//! Every token needs `exp`, and no leeway is allowed on it.

mod jwks;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, var};
use crate::domain::{Timestamp, validate_user_id};
use crate::error::ChatError;

pub use jwks::{JwksError, MIN_REFRESH_INTERVAL};

/// Minimum HS256 secret length, in bytes (the size of the SHA-256 output).
pub const MIN_SECRET_BYTES: usize = 32;

/// The only `token_use` accepted when a token has one (Cognito's access tokens).
pub const ACCEPTED_TOKEN_USE: &str = "access";

/// The reason a token was rejected. Every variant is a 401 for the client.
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

/// The claims this service reads from HS256 tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, in epoch seconds.
    pub exp: i64,
}

/// The claims read from RS256 tokens besides those `jsonwebtoken` checks
/// (`exp`, `iss`).
#[derive(Debug, Deserialize)]
struct ProviderClaims {
    sub: String,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
}

/// `aud` is one string or an array of strings (RFC 7519, section 4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|item| item == audience),
        }
    }
}

/// The location of an OpenID provider's keys and the claims its tokens must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIdConfig {
    /// The JWKS: an `https://` or `http://` URL, whose redirects are not
    /// followed, or a `file://` path.
    pub jwks_url: String,
    /// The exact `iss` of accepted tokens.
    pub issuer: String,
    /// The `aud` entry, or Cognito `client_id`, of accepted tokens.
    pub audience: String,
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    hs256: Option<DecodingKey>,
    provider: Option<Arc<Provider>>,
}

/// An OpenID provider's keys and the claims its tokens must carry.
struct Provider {
    keys: jwks::KeySet,
    validation: Validation,
    audience: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.provider.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Creates an authenticator accepting HS256 tokens signed with `secret`.
    ///
    /// # Errors
    ///
    /// When `secret` is shorter than [`MIN_SECRET_BYTES`].
    pub fn hs256(secret: &[u8]) -> Result<Self, ConfigError> {
        Ok(Self {
            hs256: Some(hs256_key(secret)?),
            provider: None,
        })
    }

    /// Creates an authenticator accepting HS256 tokens signed with
    /// `hs256_secret`, if given, and RS256 tokens of the provider `openid`,
    /// if given. It fetches the provider's JWKS before it returns.
    ///
    /// # Errors
    ///
    /// When the secret is too short, a setting of `openid` is empty or
    /// invalid, or the JWKS cannot be fetched or has no RS256 key.
    pub async fn new(
        hs256_secret: Option<&[u8]>,
        openid: Option<OpenIdConfig>,
    ) -> Result<Self, ConfigError> {
        let hs256 = hs256_secret.map(hs256_key).transpose()?;
        let provider = match openid {
            Some(openid) => Some(Arc::new(Provider::new(openid).await?)),
            None => None,
        };
        Ok(Self { hs256, provider })
    }

    /// Creates the authenticator that `JWT_SECRET` and `JWKS_URL` (with
    /// `JWT_ISSUER` and `JWT_AUDIENCE`, both then required) configure. An
    /// unset or empty variable turns its method off.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let secret = config::optional(var::JWT_SECRET);
        let openid = match config::optional(var::JWKS_URL) {
            Some(jwks_url) => Some(OpenIdConfig {
                jwks_url,
                issuer: config::required(var::JWT_ISSUER)?,
                audience: config::required(var::JWT_AUDIENCE)?,
            }),
            None => None,
        };
        Self::new(secret.as_deref().map(str::as_bytes), openid).await
    }

    /// Verifies `token` and returns its user id.
    pub async fn verify(&self, token: &str) -> Result<String, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| AuthError::Malformed(err.to_string()))?;
        let sub = match header.alg {
            Algorithm::HS256 => {
                let key = self
                    .hs256
                    .as_ref()
                    .ok_or(AuthError::AlgorithmNotAccepted(Algorithm::HS256))?;
                let mut validation = Validation::new(Algorithm::HS256);
                validation.set_required_spec_claims(&["exp", "sub"]);
                validation.validate_aud = false;
                validation.validate_nbf = true;
                validation.leeway = 0;
                jsonwebtoken::decode::<Claims>(token, key, &validation)
                    .map_err(|err| AuthError::Invalid(err.to_string()))?
                    .claims
                    .sub
            }
            Algorithm::RS256 => {
                let provider = self
                    .provider
                    .as_ref()
                    .ok_or(AuthError::AlgorithmNotAccepted(Algorithm::RS256))?;
                provider.verify(token, header.kid.as_deref()).await?
            }
            other => return Err(AuthError::AlgorithmNotAccepted(other)),
        };
        validate_user_id("sub", &sub).map_err(|err| AuthError::Invalid(err.to_string()))?;
        Ok(sub)
    }

    /// Verifies the `Authorization: Bearer {token}` header value.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<String, AuthError> {
        let value = header.ok_or(AuthError::Missing)?.trim();
        // The scheme name is case-insensitive (RFC 7235).
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        self.verify(token).await
    }
}

impl Provider {
    async fn new(openid: OpenIdConfig) -> Result<Self, ConfigError> {
        if openid.issuer.trim().is_empty() {
            return Err(ConfigError::Missing(var::JWT_ISSUER));
        }
        if openid.audience.trim().is_empty() {
            return Err(ConfigError::Missing(var::JWT_AUDIENCE));
        }
        let keys =
            jwks::KeySet::load(&openid.jwks_url)
                .await
                .map_err(|err| ConfigError::Invalid {
                    name: var::JWKS_URL,
                    reason: err.to_string(),
                })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.set_issuer(&[openid.issuer.as_str()]);
        // `aud` or `client_id` is checked below: Cognito access tokens have no `aud`.
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        Ok(Self {
            keys,
            validation,
            audience: openid.audience,
        })
    }

    /// Verifies an RS256 token whose header names `kid`, and returns its `sub`.
    async fn verify(&self, token: &str, kid: Option<&str>) -> Result<String, AuthError> {
        let kid = kid.ok_or_else(|| AuthError::Invalid("the token has no kid".to_owned()))?;
        let key = self.keys.key(kid).await.ok_or_else(|| {
            AuthError::Invalid(format!("no key with kid {kid:?} in the provider's JWKS"))
        })?;
        let claims = jsonwebtoken::decode::<ProviderClaims>(token, &key, &self.validation)
            .map_err(|err| AuthError::Invalid(err.to_string()))?
            .claims;
        if let Some(token_use) = claims.token_use.as_deref()
            && token_use != ACCEPTED_TOKEN_USE
        {
            return Err(AuthError::Invalid(format!(
                "token_use is {token_use:?}; only {ACCEPTED_TOKEN_USE:?} tokens are accepted"
            )));
        }
        let for_us = claims
            .aud
            .as_ref()
            .is_some_and(|aud| aud.contains(&self.audience))
            || claims.client_id.as_deref() == Some(self.audience.as_str());
        if !for_us {
            return Err(AuthError::Invalid(
                "neither aud nor client_id is this service's audience".to_owned(),
            ));
        }
        Ok(claims.sub)
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
