//! An OpenID provider's signing keys: its JSON Web Key Set (RFC 7517),
//! fetched at init and refreshed when a token names a key id it lacks.
//!
//! Refreshes are rate-limited to one per [`MIN_REFRESH_INTERVAL`], so tokens
//! with made-up key ids cannot make every request fetch the set. The fetch
//! uses the hyper-based client of `aws-smithy-http-client` with rustls, the
//! same stack as the AWS SDK clients.
//!
//! NOTE: a key that the provider removes stays trusted until the next
//! refresh, and only a token with an unknown key id triggers one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use tracing::{info, warn};

/// Minimum time between two refreshes of the key set.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Maximum size of a JWKS document. Providers publish a few keys, a few KB.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Time to connect to the provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time without data while reading the response.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure to load the key set.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The URL's scheme is not `https`, `http` or `file`.
    #[error("{0:?} is not an https://, http:// or file:// URL")]
    UnsupportedUrl(String),
    /// The request could not be built from the URL.
    #[error("invalid JWKS URL {url}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading the file failed.
    #[error("reading {path} failed")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The request failed or timed out.
    #[error("fetching {url} failed")]
    Fetch {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The provider returned a status other than 2xx.
    #[error("fetching {url} returned HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The document is larger than this service reads.
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// The document is not a JWKS.
    #[error("the JWKS is not a JSON object with a keys array")]
    NotJwks(#[source] serde_json::Error),
    /// The set has no key usable for RS256.
    #[error("the JWKS has no RSA signing key with a kid")]
    NoUsableKey,
}

/// The source of the set.
enum Location {
    Http { url: String, connector: Connector },
    File(PathBuf),
}

/// The current keys of a provider, by key id, and how to fetch them again.
pub(super) struct KeySet {
    location: Location,
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    /// When the last refresh after init started, so that refreshes are rate-limited.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl KeySet {
    /// Fetches the set at `url` once.
    pub(super) async fn load(url: &str) -> Result<Self, JwksError> {
        let location = Location::parse(url)?;
        let keys = location.fetch().await?;
        info!(keys = keys.len(), "JWKS loaded");
        Ok(Self {
            location,
            keys: RwLock::new(Arc::new(keys)),
            last_refresh: tokio::sync::Mutex::new(None),
        })
    }

    /// Returns the key with id `kid`. When the set lacks it, the set is
    /// fetched again, unless the last refresh started less than
    /// [`MIN_REFRESH_INTERVAL`] ago. `None` when the key is still missing.
    pub(super) async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        self.refresh().await;
        self.cached(kid)
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    /// Replaces the set with a fresh copy. One caller fetches while
    /// concurrent callers wait, then find the interval not yet over. A
    /// failed fetch keeps the current keys.
    async fn refresh(&self) {
        let mut last_refresh = self.last_refresh.lock().await;
        if last_refresh.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            return;
        }
        *last_refresh = Some(Instant::now());
        match self.location.fetch().await {
            Ok(keys) => {
                info!(keys = keys.len(), "JWKS refreshed");
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
            }
            Err(err) => {
                warn!(
                    error = %err,
                    cause = ?std::error::Error::source(&err),
                    "refreshing the JWKS failed; keeping the current keys"
                );
            }
        }
    }
}

impl Location {
    fn parse(url: &str) -> Result<Self, JwksError> {
        if let Some(path) = url.strip_prefix("file://") {
            let path = urlencoding::decode(path)
                .map_err(|err| JwksError::InvalidUrl {
                    url: url.to_owned(),
                    source: Box::new(err),
                })?
                .into_owned();
            return Ok(Self::File(PathBuf::from(path)));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(JwksError::UnsupportedUrl(url.to_owned()));
        }
        // Checked here, so that a bad URL fails at init rather than at the first refresh.
        http::Uri::try_from(url).map_err(|err| JwksError::InvalidUrl {
            url: url.to_owned(),
            source: Box::new(err),
        })?;
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build();
        let connector = Connector::builder()
            .connector_settings(settings)
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build();
        Ok(Self::Http {
            url: url.to_owned(),
            connector,
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, JwksError> {
        let document = match self {
            Self::File(path) => tokio::fs::read(path)
                .await
                .map_err(|source| JwksError::Read {
                    path: path.clone(),
                    source,
                })?,
            Self::Http { url, connector } => {
                tokio::time::timeout(FETCH_TIMEOUT, fetch_http(url, connector))
                    .await
                    .map_err(|elapsed| JwksError::Fetch {
                        url: url.clone(),
                        source: Box::new(elapsed),
                    })??
            }
        };
        if document.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        parse_keys(&document)
    }
}

async fn fetch_http(url: &str, connector: &Connector) -> Result<Vec<u8>, JwksError> {
    let fetch_error = |source: Box<dyn std::error::Error + Send + Sync>| JwksError::Fetch {
        url: url.to_owned(),
        source,
    };
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(SdkBody::empty())
        .map_err(|err| fetch_error(Box::new(err)))?;
    let request = HttpRequest::try_from(request).map_err(|err| fetch_error(Box::new(err)))?;
    let response = connector
        .call(request)
        .await
        .map_err(|err| fetch_error(Box::new(err)))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(JwksError::Status {
            url: url.to_owned(),
            status,
        });
    }

    let mut body = ByteStream::new(response.into_body());
    let mut document = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| fetch_error(Box::new(err)))?;
        if document.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        document.extend_from_slice(&chunk);
    }
    Ok(document)
}

/// Parses the RS256 verification keys of a JWKS document, by key id. Keys of other
/// types, for encryption, for other algorithms or without a `kid` are left
/// out, and so is a key that does not parse, so one odd key does not hide the others.
fn parse_keys(document: &[u8]) -> Result<HashMap<String, DecodingKey>, JwksError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(document).map_err(JwksError::NotJwks)?;
    let keys: HashMap<String, DecodingKey> = document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, usable_key(&jwk)?)))
        .collect();
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk) -> Option<DecodingKey> {
    let AlgorithmParameters::RSA(_) = &jwk.algorithm else {
        return None;
    };
    let for_signatures = matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let for_rs256 = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
    if !(for_signatures && for_rs256) {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_only_rs256_signing_keys_with_kid() {
        let rsa = |extra: serde_json::Value| {
            let mut key = serde_json::json!({ "kty": "RSA", "n": "sXch", "e": "AQAB" });
            key.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            key
        };
        let document = serde_json::json!({ "keys": [
            rsa(serde_json::json!({ "kid": "plain" })),
            rsa(serde_json::json!({ "kid": "signing", "use": "sig", "alg": "RS256" })),
            rsa(serde_json::json!({ "kid": "encryption", "use": "enc" })),
            rsa(serde_json::json!({ "kid": "rs512", "alg": "RS512" })),
            rsa(serde_json::json!({})),
            { "kty": "oct", "kid": "secret", "k": "c2VjcmV0" },
            { "kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA" },
            { "kty": "unknown", "kid": "odd" },
        ]});
        let keys = parse_keys(document.to_string().as_bytes()).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["plain", "signing"]);
    }

    #[test]
    fn parse_rejects_a_set_without_usable_keys() {
        let document =
            serde_json::json!({ "keys": [{ "kty": "oct", "kid": "s", "k": "c2VjcmV0" }] });
        assert!(matches!(
            parse_keys(document.to_string().as_bytes()),
            Err(JwksError::NoUsableKey)
        ));
        assert!(matches!(parse_keys(b"[]"), Err(JwksError::NotJwks(_))));
    }

    #[test]
    fn location_accepts_only_http_https_and_file() {
        assert!(matches!(
            Location::parse("ftp://example.com/jwks.json"),
            Err(JwksError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            Location::parse("/etc/jwks.json"),
            Err(JwksError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            Location::parse("file:///tmp/a%20b.json"),
            Ok(Location::File(path)) if path == std::path::Path::new("/tmp/a b.json")
        ));
    }
}
