//! CORS responses as the HTTP API's `CorsConfiguration` in `template.yaml` sets them:
//! one allowed origin (or `*`), headers `authorization` and `content-type`,
//! methods GET, POST and DELETE, and a max age of 600 s. API Gateway responds to
//! preflight requests itself, without invoking the function.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// `AllowHeaders`.
pub const ALLOW_HEADERS: &str = "authorization,content-type";
/// `AllowMethods`.
pub const ALLOW_METHODS: &str = "GET,POST,DELETE";
/// `MaxAge`, in seconds.
pub const MAX_AGE_SECONDS: u32 = 600;

/// The CORS policy of one API.
#[derive(Debug, Clone)]
pub struct Cors {
    allowed_origin: String,
}

impl Cors {
    /// Creates a policy allowing `allowed_origin` (`*` for any).
    pub fn new(allowed_origin: &str) -> Self {
        Self {
            allowed_origin: allowed_origin.trim_end_matches('/').to_owned(),
        }
    }

    /// Returns whether a request with `method` and `headers` is a preflight request.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        is_preflight(method, headers)
    }

    /// Builds the 204 response to a preflight request. It has no CORS headers
    /// when the origin is not allowed, so that the browser blocks the request.
    pub fn preflight(&self, headers: &HeaderMap) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = self.allow_origin(headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            out.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(MAX_AGE_SECONDS),
            );
        }
        self.add_vary(&mut response);
        response
    }

    /// Adds `Access-Control-Allow-Origin` to the response of an actual
    /// request, replacing any CORS header the function set.
    pub fn apply(&self, request_headers: &HeaderMap, response: &mut Response) {
        let out = response.headers_mut();
        out.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        out.remove(header::ACCESS_CONTROL_ALLOW_METHODS);
        out.remove(header::ACCESS_CONTROL_ALLOW_HEADERS);
        if let Some(origin) = self.allow_origin(request_headers) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        self.add_vary(response);
    }

    /// Returns the `Access-Control-Allow-Origin` value for the request's `Origin`.
    fn allow_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        allow_origin(&self.allowed_origin, headers)
    }

    fn add_vary(&self, response: &mut Response) {
        if self.allowed_origin != "*" {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// Returns whether a request with `method` and `headers` is a CORS preflight request.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Returns the `Access-Control-Allow-Origin` value for the request's
/// `Origin` under `allowed_origin` (`*` for any), or `None` when it is not allowed.
pub(crate) fn allow_origin(allowed_origin: &str, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    if allowed_origin == "*" {
        return Some(HeaderValue::from_static("*"));
    }
    let matches = origin
        .to_str()
        .is_ok_and(|origin| origin.eq_ignore_ascii_case(allowed_origin));
    matches.then(|| origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_headers(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        headers
    }

    #[test]
    fn preflight_allows_the_configured_origin_only() {
        let cors = Cors::new("http://127.0.0.1:5173");
        let allowed = cors.preflight(&request_headers("http://127.0.0.1:5173"));
        assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://127.0.0.1:5173"
        );
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_METHODS],
            ALLOW_METHODS
        );
        let other = cors.preflight(&request_headers("http://evil.example"));
        assert!(
            other
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[test]
    fn wildcard_origin_answers_star() {
        let cors = Cors::new("*");
        let response = cors.preflight(&request_headers("http://anything.example"));
        assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(response.headers().get(header::VARY).is_none());
    }
}
