//! CORS responses as the attachments bucket's `CorsConfiguration` in
//! `template.yaml` sets them, so that a browser can send a presigned PUT: methods PUT and
//! GET, any request header, `ETag` exposed, max age 3000 s, for one origin
//! (or `*`). As S3 does, a preflight that matches no rule gets 403.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// `AllowedMethods`.
pub const ALLOWED_METHODS: &[&str] = &["PUT", "GET"];
/// `ExposedHeaders`.
pub const EXPOSED_HEADERS: &str = "ETag";
/// `MaxAge`, in seconds.
pub const MAX_AGE_SECONDS: u32 = 3000;

/// The bucket's CORS rule.
#[derive(Debug, Clone)]
pub struct BucketCors {
    allowed_origin: String,
}

impl BucketCors {
    /// Creates the rule for `allowed_origin` (`*` for any).
    pub fn new(allowed_origin: &str) -> Self {
        Self {
            allowed_origin: allowed_origin.trim_end_matches('/').to_owned(),
        }
    }

    /// Returns whether a request is a preflight request.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        crate::http_api::cors::is_preflight(method, headers)
    }

    /// Builds the response to a preflight request: 200 with the CORS headers
    /// when the origin and method match the rule, else 403, as S3 returns.
    pub fn preflight(&self, headers: &HeaderMap) -> Response {
        let method_allowed = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|method| ALLOWED_METHODS.contains(&method));
        let Some(origin) = self.allow_origin(headers).filter(|_| method_allowed) else {
            let mut response = Response::new(Body::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessForbidden</Code>\
                 <Message>CORSResponse: This CORS request is not allowed.</Message></Error>",
            ));
            *response.status_mut() = StatusCode::FORBIDDEN;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            return response;
        };

        let mut response = Response::new(Body::empty());
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("PUT, GET"),
        );
        // `AllowedHeaders: ["*"]`: every requested header is allowed.
        if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        out.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(MAX_AGE_SECONDS),
        );
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
            ),
        );
        response
    }

    /// Adds the CORS headers to the response of an actual request whose
    /// `Origin` and method match the rule.
    pub fn apply(&self, method: &Method, request_headers: &HeaderMap, response: &mut Response) {
        if !ALLOWED_METHODS.contains(&method.as_str()) {
            return;
        }
        if let Some(origin) = self.allow_origin(request_headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("PUT, GET"),
            );
            out.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    fn allow_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        crate::http_api::cors::allow_origin(&self.allowed_origin, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_headers(origin: &str, method: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_str(method).unwrap(),
        );
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        headers
    }

    #[test]
    fn preflight_allows_put_from_the_origin() {
        let cors = BucketCors::new("http://127.0.0.1:5173");
        let response = cors.preflight(&preflight_headers("http://127.0.0.1:5173", "PUT"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type"
        );
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "ETag"
        );
    }

    #[test]
    fn preflight_rejects_other_origins_and_methods() {
        let cors = BucketCors::new("http://127.0.0.1:5173");
        let origin = cors.preflight(&preflight_headers("http://other.example", "PUT"));
        assert_eq!(origin.status(), StatusCode::FORBIDDEN);
        let method = cors.preflight(&preflight_headers("http://127.0.0.1:5173", "DELETE"));
        assert_eq!(method.status(), StatusCode::FORBIDDEN);
    }
}
