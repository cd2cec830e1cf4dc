//! Bearer token verification: RS256 against an OpenID provider's JWKS,
//! served by a loopback server or read from a file, next to HS256.
//!
//! The provider here signs with a fixed test key and publishes it under kid
//! `key-a`; a second key, never published, stands for an attacker's key.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shared::auth::{AuthError, Authenticator, OpenIdConfig, issue_hs256};
use shared::config::ConfigError;
use shared::domain::Timestamp;
use shared::error::ChatError;
use tokio::net::TcpListener;

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example";
const AUDIENCE: &str = "3n4b5urk1ft4fl3mg5e62d9ado";
const KID_A: &str = "key-a";
const KID_B: &str = "key-b";
const HS256_SECRET: &str = "auth-tests-hs256-secret-0123456789abcdef";

/// A 2048-bit RSA key made for these tests with `openssl genrsa -traditional 2048`.
const KEY_A_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAvxkJmZv2KPK0g6B7Tww4dUj/OaEf8NWY4jR7+RawfiZQT+Ct
pN7u/nH7n5IFbALGcAysuIIE/szmmCV6/R3fh8KoSAr00dNNsW+4khiT1bDX/UIi
4LJcYe23SSGDUMownT4rMhFj3cjzCZy2mf48iIe1qxXSoNFmvO+RIBSxjA6/MHoG
WIQIQi5XuuTeBdbtePBtuWaQ2hgNdCfBhZb+xjNmzLGZ2mGk03MAXmMarKDcT29a
jEXWjv/uGcVDLjVbmLxGFtYlATeFqlq3knp3YQUS53H+PfJd7b99u7hjhdmh6+A+
3pRx0H2q9XnEbQDDsAtwiF3c2O+KJoaNVZhDEQIDAQABAoIBAAhsiSDNYD+T22NG
CsmER2TcL+wRb0AFmnS2TZTAbE1TUQ0EYYM4FJ8A1U/Gdxi40piT5nVHvgKhc7TX
SiGoVHc+nH54hSxOvUkKHL/L95Be+FaAuNrg4fOrL/44TPqdvyDfYbYWUCmxtw0A
bIhDTdXS7a46CwvtzzKa+PHKF72NwU3Qzll8B9KlKdnNUJufVlIGl5MfcrtmHuXg
PmVveDdHUc5760KjyepLpl5EcWqfLlzoyELcid2Io2Hk3aWlw6f95HmuTb98LDv+
FRLYxWT0eSbK/Hdu2ZijLgrtzqK4ZxVxFJRDPQohGDdISQikZEsNw2WKL3Gg7E/x
uRicq0ECgYEA7454Zov64pSCqNLJMCC3lurW+NpHlnEna8Bj9ZGb6jWr3FwvoLy5
fuCADX45Dak5ZaNO4lbzdCKcqY7uDfXuWXXddTCPyrumFXpM4yFmLlBm5xZcdeg/
zlw7IK7exKcWKiJS7Dirx2N24mznTZ2cqluypi+i8j4gXQt7RC7ILtkCgYEAzDcK
vJJ2EYDsPMcKinStvhw9pUdqT6sOu8Eh95QdUMEhRmcjn77WcXBfnedyeY6mM8Mn
MGAjnx2+i6aN4LolZcH4B28Fzhs39wpdqdNdGmQDcflNPxqnZKMVAa59228b64dB
eBm9qYHWou24+3f7XYVu0Jx3e/Hh4Ok9s8+NAvkCgYBI3y4BA9Pt2P9mG7jXyxwN
7KI4US41tXYocP33VbP4Kxt8jQ5v9vj2f5R0hlEUtsWfBW6Zq5mjWmQNsEz6MjWv
QQt8+qjDIxICtpFtBlvu+sZSxZqaw2uleqkB6DAb4jf72TUgZpzaqocfmcFC+w8N
Q5e0tgj7Z6qwoy18MD71AQKBgQC/2cHzcGENhqHpY1DKzFzhamSbnqEIoXpg90sy
7WoxEI9zNbgo/j82KU0a6nIIMvR/UorBjsBIXshBKELH6fjyRSz/xtScUcPdCVb/
Ebu47Fa0P3LLov25tOAqSUSh3xtKxTHDY+NjmMANJuoPDSQQMyftQeGahp4fDuBR
yd3++QKBgAZabuicVWzQ+8ykaEKYSyf2Rmj7/Wq2KsovpFNmblqPBDQRteQgVgGr
WTcHd8EG7R3mPLIhfUkoW707AlgdSGxG1KeNP+F9tuhhk6pGR0pKmIA/olCUgFJ+
AGBntx+2JPdHGqEkgdbS1CLnypqeOX42VYSBlHLBAAb17bK373bk
-----END RSA PRIVATE KEY-----
";

/// A second key, which the provider never publishes.
const KEY_B_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAnwpkVEQCo8acaJyaqdvJbBnu0iDjieany65VflfMtcxwbXjQ
Rr8hA2ZDgt3urBM1x4l0WmZJruYDJDLZJdvRrrM+5ZxLFpYdap6yYGbVsrDoFXgY
ee1EZj1dtFmDfO869qtfgGWXHG6UMDqX0BgScO+VymM1Eqod9HWdICfRxBMoC+1P
8h0PsTH4PRZAiwWtRz73yMrO7O7o+r2D5yl/Q8GaPeo26CUO+fi2gNWemrXx56GC
ItKWpXNNDawZBCZYDnPu7oci9zfV4foUY7YYS7kOUbJmiInmeMFg1MBU0Y2vF/Bg
6wNssAvF0sJPAIUB5M68CMoLeS2QGQnD8lS/kwIDAQABAoIBAAVVLl8K9sGyF62E
TsVSStM2nWTrWGXX15mDS3eUjxcrdzucePNeVkeMZsgdE/MuI7gAmmerlV3pdYKB
t/lGgSXn+bxuPLBRsUPRdW65FAJNX0LVB5ETDR+WgC1bcQa/6My7m1StU19PL+Xc
GRoPrJKf3fhu0ilBjgaT6QRagXSfGEJ+5m6y1uWJlfuGWyWqXM/vSXx0rz5tAKWF
MKlZynwdDciF3K3XATZoVNWbs/bW+Jz8+QY1VbWe7ACbhvdZUaYAi1lUlXkU/G7d
QThlT8+qF2FGFQRtCK6DRT36tWdns3Sif7VTR8EDiuztGU+WJAtdK21ynJgbTTo5
yxP/Uk0CgYEA1pKqnqIsBmKfDZQ0HjsWyadfz9vEXaACOgyPkGcx8BGZp20Cq1Fz
qsvzEdEYX23oQ6LkNr8OBX/jRqqFITzaXRwkwIEErUxtEMmrVhHyITMm9BxzE/sx
Yv36wJ2nEXd+CiLvdnedWJW/KHC+oZgyAdjkA0/ksF4kSxHtggMZ4H0CgYEAvb8F
49wrzCkuQwJQFhPg2p6jDaCzTKZOeSoxqGnWnDJEnlj0c+qbXhLufZvuOZQGxO6F
uXUVe6iMDLugo67MpoH8FCwpxVTDuFsniF08kp710Vr/GWjvTh51VxW6cu1brJtO
lCXQUEwCLk67P1r9tbi2uvrx0Op4MXQIIGh0rU8CgYBtiz8T8ZMsR1kQI6Nf86a0
mIBvq7DaY3//hr4caLKz7yhUs3Bzagf1IF4dsHQS9BdpwFVmJa/Q2vN69j81Ms4A
TwfsR3HNz4C2215feJX2oRi383ZEsy8JbMSBZXsPjcOJBUDfaD2qJfkLelO4R+zv
yHzPvA/ygn1g3ew1PcQOOQKBgFvEl0Ssp0IGaKlf5PvIgWc6cgGVRyI7DJjtHzck
ePbyGN28h/3H6XyGC3IUiBKw1NVJxsL7LXiw+4rs87Q2RiQBmbjn4wvdAwuWingZ
H8KJvrmSGO5hIdvWP0nu6E3NHhlMw6RC5YzwNd3Plh/+EdZhj36+/1TbEWZZh9Sk
sElhAoGANDWwH92dCPCCU/LHLmubEdUN2JPW60VnUyFtucK1IqJLOC/GTrckfJpF
XD2VJaZGkmgsWuxQ/XvzaSrpTjpGCMRSCK34gzmhohCKLnPcbCdZb4FzfKhsnd9t
DGSGuTHk0KswVtL0QavkCG/UmjbUjtLRcsq7aciRWSIJZPQ1Z/k=
-----END RSA PRIVATE KEY-----
";

/// Builds the public half of `pem` as a JWK with `kid`.
fn public_jwk(pem: &str, kid: &str) -> Jwk {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn jwks(keys: &[(&str, &str)]) -> String {
    let set = JwkSet {
        keys: keys.iter().map(|(pem, kid)| public_jwk(pem, kid)).collect(),
    };
    serde_json::to_string(&set).unwrap()
}

/// Signs `claims` with `pem`, naming `kid` in the header.
fn sign(pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn in_one_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

/// Builds the claims of a Cognito access token for user `sub`.
fn access_claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "client_id": AUDIENCE,
        "token_use": "access",
        "scope": "openid",
        "exp": in_one_hour(),
        "iat": chrono::Utc::now().timestamp(),
    })
}

/// Returns `claims` with `changes` applied. A `null` in `changes` removes the claim.
fn with(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.clone();
    let object = claims.as_object_mut().unwrap();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), value.clone());
        }
    }
    claims
}

/// A JWKS server on 127.0.0.1 whose document can be replaced and which counts its requests.
struct JwksServer {
    url: String,
    document: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct JwksState {
    document: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(document: String) -> Self {
        let document = Arc::new(Mutex::new(document));
        let requests = Arc::new(AtomicUsize::new(0));
        let state = JwksState {
            document: Arc::clone(&document),
            requests: Arc::clone(&requests),
        };
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{address}/.well-known/jwks.json"),
            document,
            requests,
        }
    }

    fn publish(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(state): State<JwksState>) -> ([(&'static str, &'static str); 1], String) {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let document = state.document.lock().unwrap().clone();
    ([("content-type", "application/json")], document)
}

fn openid(jwks_url: &str) -> OpenIdConfig {
    OpenIdConfig {
        jwks_url: jwks_url.to_owned(),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
    }
}

/// Starts a server publishing key A, and an authenticator that trusts it and HS256.
async fn provider() -> (JwksServer, Authenticator) {
    let server = JwksServer::start(jwks(&[(KEY_A_PEM, KID_A)])).await;
    let auth = Authenticator::new(Some(HS256_SECRET.as_bytes()), Some(openid(&server.url)))
        .await
        .unwrap();
    (server, auth)
}

/// Asserts that `token` is rejected, with a 401 for the client and a reason containing `reason`.
async fn assert_rejected(auth: &Authenticator, token: &str, reason: &str) {
    let err = auth
        .verify(token)
        .await
        .expect_err("the token must be rejected");
    let message = err.to_string();
    assert!(
        message.contains(reason),
        "{message:?} should mention {reason:?}"
    );
    assert_eq!(ChatError::from(err).status(), 401, "{message}");
}

#[tokio::test]
async fn rs256_cognito_access_token_is_accepted() {
    let (server, auth) = provider().await;
    let token = sign(KEY_A_PEM, Some(KID_A), &access_claims("alice"));

    assert_eq!(auth.verify(&token).await.unwrap(), "alice");
    assert_eq!(server.requests(), 1, "the JWKS is fetched once, at init");
}

#[tokio::test]
async fn rs256_token_with_aud_is_accepted() {
    let (_server, auth) = provider().await;
    let single = with(
        &access_claims("bob"),
        json!({ "client_id": null, "token_use": null, "aud": AUDIENCE }),
    );
    let listed = with(&single, json!({ "aud": ["other-api", AUDIENCE] }));

    for claims in [single, listed] {
        let token = sign(KEY_A_PEM, Some(KID_A), &claims);
        assert_eq!(auth.verify(&token).await.unwrap(), "bob", "{claims}");
    }
}

#[tokio::test]
async fn rs256_id_token_is_rejected() {
    let (_server, auth) = provider().await;
    let claims = with(
        &access_claims("alice"),
        json!({ "token_use": "id", "client_id": null, "aud": AUDIENCE }),
    );
    let token = sign(KEY_A_PEM, Some(KID_A), &claims);

    assert_rejected(&auth, &token, "token_use").await;
}

#[tokio::test]
async fn rs256_token_signed_with_other_key_is_rejected() {
    let (_server, auth) = provider().await;
    let token = sign(KEY_B_PEM, Some(KID_A), &access_claims("alice"));

    assert_rejected(&auth, &token, "InvalidSignature").await;
}

#[tokio::test]
async fn rs256_token_with_tampered_claims_is_rejected() {
    let (_server, auth) = provider().await;
    let token = sign(KEY_A_PEM, Some(KID_A), &access_claims("alice"));
    let parts: Vec<&str> = token.split('.').collect();
    let other = sign(KEY_A_PEM, Some(KID_A), &access_claims("mallory"));
    let other_payload = other.split('.').nth(1).unwrap();
    let spliced = format!("{}.{}.{}", parts[0], other_payload, parts[2]);

    assert_rejected(&auth, &spliced, "InvalidSignature").await;
}

#[tokio::test]
async fn rs256_wrong_or_missing_issuer_is_rejected() {
    let (_server, auth) = provider().await;
    let wrong = with(
        &access_claims("alice"),
        json!({ "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other" }),
    );
    let missing = with(&access_claims("alice"), json!({ "iss": null }));

    assert_rejected(
        &auth,
        &sign(KEY_A_PEM, Some(KID_A), &wrong),
        "InvalidIssuer",
    )
    .await;
    assert_rejected(&auth, &sign(KEY_A_PEM, Some(KID_A), &missing), "iss").await;
}

#[tokio::test]
async fn rs256_wrong_or_missing_audience_is_rejected() {
    let (_server, auth) = provider().await;
    let base = access_claims("alice");
    let cases = [
        with(&base, json!({ "client_id": "another-app-client" })),
        with(&base, json!({ "client_id": null, "aud": "another-api" })),
        with(&base, json!({ "client_id": null, "aud": ["a", "b"] })),
        with(&base, json!({ "client_id": null })),
    ];

    for claims in &cases {
        let token = sign(KEY_A_PEM, Some(KID_A), claims);
        assert_rejected(&auth, &token, "audience").await;
    }
}

#[tokio::test]
async fn rs256_expired_or_unexpiring_token_is_rejected() {
    let (_server, auth) = provider().await;
    let expired = with(
        &access_claims("alice"),
        json!({ "exp": chrono::Utc::now().timestamp() - 1 }),
    );
    let unexpiring = with(&access_claims("alice"), json!({ "exp": null }));

    assert_rejected(
        &auth,
        &sign(KEY_A_PEM, Some(KID_A), &expired),
        "ExpiredSignature",
    )
    .await;
    assert_rejected(&auth, &sign(KEY_A_PEM, Some(KID_A), &unexpiring), "exp").await;
}

#[tokio::test]
async fn rs256_token_with_invalid_sub_is_rejected() {
    let (_server, auth) = provider().await;
    let claims = with(&access_claims("alice"), json!({ "sub": "has space" }));

    assert_rejected(&auth, &sign(KEY_A_PEM, Some(KID_A), &claims), "sub").await;
}

#[tokio::test]
async fn token_with_alg_none_is_rejected() {
    let (_server, auth) = provider().await;
    let encode = |value: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let header = encode(&json!({ "alg": "none", "typ": "JWT", "kid": KID_A }));
    let payload = encode(&access_claims("alice"));

    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_rejected(&auth, &token, "malformed").await;
    }
}

#[tokio::test]
async fn token_without_kid_is_rejected() {
    let (_server, auth) = provider().await;
    let token = sign(KEY_A_PEM, None, &access_claims("alice"));

    assert_rejected(&auth, &token, "kid").await;
}

#[tokio::test]
async fn each_algorithm_needs_its_method_configured() {
    let server = JwksServer::start(jwks(&[(KEY_A_PEM, KID_A)])).await;
    let rs256_only = Authenticator::new(None, Some(openid(&server.url)))
        .await
        .unwrap();
    let hs256_only = Authenticator::hs256(HS256_SECRET.as_bytes()).unwrap();
    let expires_at = Timestamp::new(chrono::Utc::now()).plus(chrono::TimeDelta::hours(1));
    let hs256_token = issue_hs256(HS256_SECRET.as_bytes(), "alice", expires_at).unwrap();
    let rs256_token = sign(KEY_A_PEM, Some(KID_A), &access_claims("alice"));

    assert_rejected(&rs256_only, &hs256_token, "HS256").await;
    assert_rejected(&hs256_only, &rs256_token, "RS256").await;
    assert_eq!(hs256_only.verify(&hs256_token).await.unwrap(), "alice");
    assert_eq!(rs256_only.verify(&rs256_token).await.unwrap(), "alice");
}

#[tokio::test]
async fn hs256_token_signed_with_public_key_is_rejected() {
    // An RS256-to-HS256 confusion: the attacker signs HS256 with the
    // provider's public key as the secret. Only the configured secret counts.
    let (_server, auth) = provider().await;
    let public_jwk = serde_json::to_vec(&public_jwk(KEY_A_PEM, KID_A)).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID_A.to_owned());
    let key = EncodingKey::from_secret(&public_jwk).unwrap();
    let token = jsonwebtoken::encode(&header, &access_claims("alice"), &key).unwrap();

    assert_rejected(&auth, &token, "InvalidSignature").await;
}

#[tokio::test]
async fn unknown_kid_refreshes_jwks_once_a_minute() {
    let (server, auth) = provider().await;
    assert_eq!(server.requests(), 1);

    // The provider rotates in key B; the first token signed with it makes
    // the authenticator fetch the set again.
    server.publish(jwks(&[(KEY_A_PEM, KID_A), (KEY_B_PEM, KID_B)]));
    let rotated = sign(KEY_B_PEM, Some(KID_B), &access_claims("alice"));
    assert_eq!(auth.verify(&rotated).await.unwrap(), "alice");
    assert_eq!(server.requests(), 2);

    // Made-up key ids within the minute fetch nothing.
    for kid in ["made-up-1", "made-up-2", "made-up-3"] {
        let token = sign(KEY_B_PEM, Some(kid), &access_claims("alice"));
        assert_rejected(&auth, &token, "no key with kid").await;
    }
    assert_eq!(server.requests(), 2);
    assert_eq!(auth.verify(&rotated).await.unwrap(), "alice");
}

#[tokio::test]
async fn failed_refresh_keeps_the_current_keys() {
    let (server, auth) = provider().await;
    server.publish("not json".to_owned());

    let unknown = sign(KEY_B_PEM, Some(KID_B), &access_claims("alice"));
    assert_rejected(&auth, &unknown, "no key with kid").await;
    assert_eq!(server.requests(), 2);

    let known = sign(KEY_A_PEM, Some(KID_A), &access_claims("alice"));
    assert_eq!(auth.verify(&known).await.unwrap(), "alice");
}

#[tokio::test]
async fn jwks_is_read_from_a_file_url() {
    let path = std::env::temp_dir().join(format!(
        "chat-auth-test-{}-{:08x} jwks.json",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&path, jwks(&[(KEY_A_PEM, KID_A)])).unwrap();
    let url = format!(
        "file://{}",
        urlencoding::encode(&path.to_string_lossy()).replace("%2F", "/")
    );

    let auth = Authenticator::new(None, Some(openid(&url))).await;
    std::fs::remove_file(&path).unwrap();

    let auth = auth.unwrap();
    let token = sign(KEY_A_PEM, Some(KID_A), &access_claims("carol"));
    assert_eq!(auth.verify(&token).await.unwrap(), "carol");
}

#[tokio::test]
async fn openid_settings_are_checked_at_init() {
    let server = JwksServer::start(jwks(&[(KEY_A_PEM, KID_A)])).await;
    let no_issuer = OpenIdConfig {
        issuer: String::new(),
        ..openid(&server.url)
    };
    let no_audience = OpenIdConfig {
        audience: " ".to_owned(),
        ..openid(&server.url)
    };

    assert!(matches!(
        Authenticator::new(None, Some(no_issuer)).await,
        Err(ConfigError::Missing("JWT_ISSUER"))
    ));
    assert!(matches!(
        Authenticator::new(None, Some(no_audience)).await,
        Err(ConfigError::Missing("JWT_AUDIENCE"))
    ));
    for url in [
        "ftp://127.0.0.1/jwks.json",
        "jwks.json",
        "file:///nonexistent/chat-auth-test/jwks.json",
    ] {
        let result = Authenticator::new(None, Some(openid(url))).await;
        assert!(
            matches!(
                result,
                Err(ConfigError::Invalid {
                    name: "JWKS_URL",
                    ..
                })
            ),
            "{url}: {result:?}"
        );
    }
    assert!(matches!(
        Authenticator::new(Some(b"too short"), None).await,
        Err(ConfigError::Invalid {
            name: "JWT_SECRET",
            ..
        })
    ));
}

#[tokio::test]
async fn unreachable_or_failing_jwks_url_fails_init() {
    // A port that was free a moment ago, so nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = JwksServer::start(json!({ "keys": [] }).to_string()).await;
    let missing = server.url.replace("jwks.json", "missing.json");

    for url in [
        format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
        server.url.clone(),
        missing,
    ] {
        let result = Authenticator::new(None, Some(openid(&url))).await;
        let Err(ConfigError::Invalid { name, reason }) = result else {
            panic!("{url}: expected an invalid JWKS_URL, got {result:?}");
        };
        assert_eq!(name, "JWKS_URL");
        assert!(!reason.is_empty());
    }
}

#[tokio::test]
async fn rejected_token_gets_401_json_from_http_api() {
    let (_server, auth) = provider().await;
    // Nothing listens here: a rejected token never reaches the store or S3.
    let nowhere = "http://127.0.0.1:9";
    let store = shared::store::Store::new(
        support::dynamodb_client(nowhere),
        shared::config::TableNames::with_prefix("auth-"),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(support::REGION))
            .credentials_provider(support::test_credentials())
            .endpoint_url(nowhere)
            .force_path_style(true)
            .build(),
    );
    let deps = shared::handlers::HttpDeps {
        store,
        clock: Arc::new(shared::clock::SystemClock),
        pusher: shared::push::Pusher::new(support::management_client(nowhere)),
        auth,
        attachments: shared::attachments::AttachmentBucket::new(s3, "attachments"),
    };
    let expired = with(
        &access_claims("alice"),
        json!({ "exp": chrono::Utc::now().timestamp() - 60 }),
    );
    let tokens = [
        sign(KEY_A_PEM, Some(KID_A), &expired),
        sign(KEY_B_PEM, Some(KID_A), &access_claims("alice")),
        "not-a-jwt".to_owned(),
    ];

    for token in tokens {
        let request = http::Request::builder()
            .method("GET")
            .uri("/chats")
            .header("authorization", format!("Bearer {token}"))
            .body(lambda_http::Body::Empty)
            .unwrap();
        let response = shared::handlers::http::handle(&deps, request)
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[test]
fn auth_error_is_unauthorized() {
    for err in [
        AuthError::Missing,
        AuthError::Malformed("x".into()),
        AuthError::Invalid("x".into()),
        AuthError::AlgorithmNotAccepted(Algorithm::RS384),
    ] {
        assert_eq!(ChatError::from(err).status(), 401);
    }
}
