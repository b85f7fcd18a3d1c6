//! A scripted HTTP server on 127.0.0.1 for tests that talk HTTP: every request is recorded, and a
//! closure decides each answer. Nothing leaves the machine.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The raw query string, percent-encoded as sent.
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An answer: status, headers and a body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(value: serde_json::Value) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string(),
        }
    }
    pub fn status(status: u16, value: serde_json::Value) -> Reply {
        Reply { status, ..Reply::json(value) }
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type Handler = dyn Fn(&Seen, &str) -> Reply + Send + Sync;

pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Starts the server on the current tokio runtime; the handler gets each request and the base URL.
    pub async fn start(handler: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (log, base_for_handler) = (seen.clone(), base.clone());
        let app = axum::Router::new().fallback(move |request: Request| {
            let (log, handler, base) = (log.clone(), handler.clone(), base_for_handler.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    headers: parts.headers.clone(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                log.lock().expect("log").push(seen.clone());
                let reply = handler(&seen, &base);
                let mut response = Response::new(Body::from(reply.body));
                *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
                for (name, value) in reply.headers {
                    response.headers_mut().append(
                        HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                        HeaderValue::from_str(&value).expect("header value"),
                    );
                }
                response
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { base, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    pub fn requests_to(&self, path_part: &str) -> Vec<Seen> {
        self.requests().into_iter().filter(|s| s.path.contains(path_part)).collect()
    }
}
