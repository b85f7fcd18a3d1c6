//! Tests of the HTTP runtime against loopback servers started inside each test (127.0.0.1, port 0), so
//! nothing leaves the machine. Each test is bounded by a timeout; retry backoffs are a millisecond.

use super::*;
use axum::Router;
use axum::body::Body as AxBody;
use axum::extract::RawQuery;
use axum::http::HeaderMap as AxHeaders;
use axum::response::Response as AxResponse;
use axum::routing::{any, get, post};
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const SECRET: &str = "s3cret-VALUE-42";

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(20), test).await.expect("the test finished within 20s");
}

/// Starts `router` on a fresh loopback port; the server lives as long as the test's runtime.
async fn serve(router: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Url::parse(&format!("http://{address}/")).unwrap()
}

fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> AxResponse {
    let mut builder = AxResponse::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(AxBody::from(body.into())).unwrap()
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// Counts a call and says which one it is, from 1.
    fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Every request's headers, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<AxHeaders>>>);

impl Seen {
    fn push(&self, headers: AxHeaders) {
        self.0.lock().unwrap().push(headers);
    }
    fn all(&self) -> Vec<AxHeaders> {
        self.0.lock().unwrap().clone()
    }
}

fn header(headers: &AxHeaders, name: &str) -> String {
    headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

fn fast_retry() -> Retry {
    Retry {
        statuses: vec![429, 500, 502, 503, 504],
        max_attempts: 3,
        retry_after: RetryAfter::Honor,
        max_retry_after: Duration::from_secs(60),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
        jitter: true,
        on_network_error: true,
    }
}

fn settings(base: &Url, auth: ResolvedAuth) -> ClientSettings {
    ClientSettings {
        base_url: base.clone(),
        allowed_origins: Vec::new(),
        auth,
        retry: fast_retry(),
        budgets: Vec::new(),
        timeout: Duration::from_secs(5),
        default_headers: Vec::new(),
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
    }
}

fn bearer() -> ResolvedAuth {
    ResolvedAuth::Bearer(SECRET.into())
}

fn oauth2(token_url: Url) -> ResolvedAuth {
    ResolvedAuth::OAuth2 {
        token_url,
        client_id: "app".into(),
        client_secret: SECRET.into(),
        scope: Some("api/.default".into()),
        credentials_in: CredentialsIn::Body,
        refresh_before: Duration::from_secs(300),
        error_code_paths: vec![
            crate::jsonpath::JsonPath::compile("$.error_codes[*]").unwrap(),
            crate::jsonpath::JsonPath::compile("$.error").unwrap(),
        ],
        error_messages: vec![("7000215".into(), "the client secret is wrong; create a new one".into())],
    }
}

fn url(base: &Url, path: &str) -> Url {
    base.join(path).unwrap()
}

// ---- headers and credentials -------------------------------------------------------------------------

#[tokio::test]
async fn credentials_and_headers_go_on_every_attempt() {
    bounded(async {
        let calls = Counter::default();
        let seen = Seen::default();
        let (c, s) = (calls.clone(), seen.clone());
        let base = serve(Router::new().route(
            "/items",
            get(move |headers: AxHeaders| async move {
                s.push(headers);
                if c.hit() == 1 { reply(503, &[], "busy") } else { reply(200, &[], r#"{"items":[]}"#) }
            }),
        ))
        .await;
        let mut settings = settings(&base, bearer());
        settings.default_headers = vec![("X-Tenant".into(), "t1".into()), ("X-Mode".into(), "default".into())];
        let client = HttpClient::new(settings).unwrap();
        let mut request = Request::get(url(&base, "/items"));
        request.headers = vec![("X-Req".into(), "r1".into()), ("X-Mode".into(), "request".into())];
        let response = client.send(request).await.unwrap();
        assert_eq!((response.status, response.attempts), (200, 2));
        assert_eq!(response.json().unwrap(), serde_json::json!({"items": []}));
        let seen = seen.all();
        assert_eq!(seen.len(), 2);
        for headers in &seen {
            assert_eq!(header(headers, "authorization"), format!("Bearer {SECRET}"));
            assert_eq!(header(headers, "accept"), "application/json");
            assert_eq!(header(headers, "x-tenant"), "t1");
            assert_eq!(header(headers, "x-req"), "r1");
            assert_eq!(headers.get_all("x-mode").iter().collect::<Vec<_>>(), ["request"]);
            assert_eq!(header(headers, "user-agent"), concat!("engine/", env!("CARGO_PKG_VERSION")));
            assert!(header(headers, "accept-encoding").contains("gzip"));
        }
        assert_eq!(client.token_requests(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_request_header_replaces_the_default_accept() {
    bounded(async {
        let seen = Seen::default();
        let s = seen.clone();
        let base = serve(Router::new().route(
            "/export",
            get(move |headers: AxHeaders| async move {
                s.push(headers);
                reply(200, &[], "a,b")
            }),
        ))
        .await;
        let client = HttpClient::new(settings(&base, ResolvedAuth::None)).unwrap();
        let mut request = Request::get(url(&base, "/export"));
        request.headers = vec![("Accept".into(), "text/csv".into())];
        client.send(request).await.unwrap();
        let seen = seen.all();
        assert_eq!(seen[0].get_all("accept").iter().collect::<Vec<_>>(), ["text/csv"]);
        assert!(seen[0].get("authorization").is_none());
    })
    .await;
}

#[tokio::test]
async fn api_keys_and_basic_auth_are_attached() {
    bounded(async {
        let seen = Seen::default();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (s, q) = (seen.clone(), queries.clone());
        let base = serve(Router::new().route(
            "/users",
            get(move |headers: AxHeaders, RawQuery(query): RawQuery| async move {
                s.push(headers);
                q.lock().unwrap().push(query.unwrap_or_default());
                reply(200, &[], "{}")
            }),
        ))
        .await;

        let in_header =
            ResolvedAuth::ApiKey { location: KeyLocation::Header, name: "X-Api-Key".into(), value: SECRET.into() };
        HttpClient::new(settings(&base, in_header)).unwrap().send(Request::get(url(&base, "/users"))).await.unwrap();

        let in_query = ResolvedAuth::ApiKey { location: KeyLocation::Query, name: "key".into(), value: SECRET.into() };
        let client = HttpClient::new(settings(&base, in_query)).unwrap();
        // A next link that echoes the key: it is sent once, and the response's URL does not carry it.
        let response = client.send(Request::get(url(&base, &format!("/users?page=2&key={SECRET}")))).await.unwrap();
        assert_eq!(response.url.query(), Some("page=2"));

        let basic = ResolvedAuth::Basic { username: "user".into(), password: "pass".into() };
        HttpClient::new(settings(&base, basic)).unwrap().send(Request::get(url(&base, "/users"))).await.unwrap();

        let seen = seen.all();
        let queries = queries.lock().unwrap().clone();
        assert_eq!(header(&seen[0], "x-api-key"), SECRET);
        assert_eq!(queries[1], format!("page=2&key={SECRET}"));
        assert!(seen[1].get("x-api-key").is_none() && seen[1].get("authorization").is_none());
        assert_eq!(header(&seen[2], "authorization"), "Basic dXNlcjpwYXNz");
        assert_eq!(seen[2].get_all("authorization").iter().count(), 1);
    })
    .await;
}

#[tokio::test]
async fn post_bodies_are_json_and_resent_on_retry() {
    bounded(async {
        let calls = Counter::default();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (c, b) = (calls.clone(), bodies.clone());
        let base = serve(Router::new().route(
            "/query",
            post(move |headers: AxHeaders, body: String| async move {
                b.lock().unwrap().push((header(&headers, "content-type"), body));
                if c.hit() == 1 { reply(502, &[], "") } else { reply(200, &[], "{}") }
            }),
        ))
        .await;
        let client = HttpClient::new(settings(&base, ResolvedAuth::None)).unwrap();
        let response = client.send(Request::post(url(&base, "/query"), serde_json::json!({"q": "x"}))).await.unwrap();
        assert_eq!((response.status, response.attempts), (200, 2));
        let expected = ("application/json".to_string(), r#"{"q":"x"}"#.to_string());
        assert_eq!(*bodies.lock().unwrap(), [expected.clone(), expected]);
    })
    .await;
}

// ---- host pinning and redirects ----------------------------------------------------------------------

/// A server that counts every request it gets, whatever the path.
async fn counting_server() -> (Url, Counter, Seen) {
    let calls = Counter::default();
    let seen = Seen::default();
    let (c, s) = (calls.clone(), seen.clone());
    let base = serve(Router::new().fallback(any(move |headers: AxHeaders| async move {
        c.hit();
        s.push(headers);
        reply(200, &[], "{}")
    })))
    .await;
    (base, calls, seen)
}

#[tokio::test]
async fn requests_to_other_origins_are_refused_before_sending() {
    bounded(async {
        let (home, home_calls, _) = counting_server().await;
        let (other, other_calls, other_seen) = counting_server().await;
        let client = HttpClient::new(settings(&home, bearer())).unwrap();

        let next_link = url(&other, "/steal?token=abc123");
        let error = client.send(Request::get(next_link.clone())).await.unwrap_err();
        let origin = other.as_str().trim_end_matches('/').to_string();
        assert!(matches!(&error, HttpError::OffHost { origin: o } if *o == origin), "{error:?}");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("abc123") && !text.contains("/steal"), "{text}");
        assert_eq!(other_calls.get(), 0);
        assert!(!client.is_allowed(&next_link));
        assert!(client.is_allowed(&url(&home, "/anything?x=1")));

        client.send(Request::get(url(&home, "/ok"))).await.unwrap();
        assert_eq!(home_calls.get(), 1);

        // Listed as an allowed origin, the other server gets requests and credentials.
        let mut allowed = settings(&home, bearer());
        allowed.allowed_origins = vec![url(&other, "/v2/")];
        let client = HttpClient::new(allowed).unwrap();
        assert!(client.is_allowed(&next_link));
        client.send(Request::get(next_link)).await.unwrap();
        assert_eq!(other_calls.get(), 1);
        assert_eq!(header(&other_seen.all()[0], "authorization"), format!("Bearer {SECRET}"));
    })
    .await;
}

#[test]
fn plain_http_is_only_for_loopback() {
    let new = |base: &str| HttpClient::new(settings(&Url::parse(base).unwrap(), ResolvedAuth::None));
    let error = new("http://api.example.com/v1").unwrap_err();
    assert!(matches!(&error, HttpError::InsecureScheme { origin } if origin == "http://api.example.com"), "{error:?}");
    assert!(matches!(new("ftp://files.example.com/"), Err(HttpError::InsecureScheme { .. })));
    for loopback in ["http://localhost:8080/", "http://127.0.0.1/", "http://127.1.2.3:9/", "http://[::1]:8080/"] {
        assert!(new(loopback).is_ok(), "{loopback}");
    }

    let client = new("https://api.example.com/v1/").unwrap();
    assert!(client.is_allowed(&Url::parse("https://api.example.com:443/v2?x=1").unwrap()));
    assert!(!client.is_allowed(&Url::parse("http://api.example.com/v1/").unwrap()));
    assert!(!client.is_allowed(&Url::parse("https://api.example.com:8443/v1/").unwrap()));
    assert!(!client.is_allowed(&Url::parse("https://evil.example.com/v1/").unwrap()));

    let mut with_allowed = settings(&Url::parse("https://api.example.com/").unwrap(), ResolvedAuth::None);
    with_allowed.allowed_origins = vec![Url::parse("http://cdn.example.com/").unwrap()];
    assert!(matches!(HttpClient::new(with_allowed), Err(HttpError::InsecureScheme { .. })));

    let token_url = Url::parse("http://login.example.com/token").unwrap();
    let error = HttpClient::new(settings(&Url::parse("https://api.example.com/").unwrap(), oauth2(token_url)));
    assert!(matches!(error, Err(HttpError::InsecureScheme { origin }) if origin == "http://login.example.com"));
}

#[tokio::test]
async fn same_origin_redirects_are_followed() {
    bounded(async {
        let seen = Seen::default();
        let s = seen.clone();
        let base = serve(
            Router::new()
                .route("/start", get(|| async { reply(302, &[("location", "/final?x=1")], "") }))
                .route(
                    "/final",
                    get(move |headers: AxHeaders| async move {
                        s.push(headers);
                        reply(200, &[], "done")
                    }),
                )
                .route("/form", post(|| async { reply(303, &[("location", "/result")], "") }))
                .route("/result", get(|| async { reply(200, &[], "result") }))
                .route("/loop", get(|| async { reply(302, &[("location", "/loop")], "") })),
        )
        .await;
        let client = HttpClient::new(settings(&base, bearer())).unwrap();

        let response = client.send(Request::get(url(&base, "/start"))).await.unwrap();
        assert_eq!((response.status, response.attempts, &response.body[..]), (200, 2, &b"done"[..]));
        assert_eq!(response.url, url(&base, "/final?x=1"));
        assert_eq!(header(&seen.all()[0], "authorization"), format!("Bearer {SECRET}"));

        // 303 after a POST continues as a GET (the route only answers GET).
        let response = client.send(Request::post(url(&base, "/form"), serde_json::json!({}))).await.unwrap();
        assert_eq!((response.status, &response.body[..]), (200, &b"result"[..]));

        let error = client.send(Request::get(url(&base, "/loop"))).await.unwrap_err();
        assert!(matches!(error, HttpError::TooManyRedirects { hops: MAX_REDIRECTS, .. }), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn cross_origin_redirects_are_refused() {
    bounded(async {
        let (other, other_calls, _) = counting_server().await;
        let target = url(&other, "/landing?token=abc123").to_string();
        let base = serve(Router::new().route(
            "/start",
            get(move || {
                let target = target.clone();
                async move { reply(307, &[("location", &target)], "") }
            }),
        ))
        .await;
        let client = HttpClient::new(settings(&base, bearer())).unwrap();
        let error = client.send(Request::get(url(&base, "/start"))).await.unwrap_err();
        let origin = other.as_str().trim_end_matches('/');
        assert!(matches!(&error, HttpError::Redirect { to, .. } if to == origin), "{error:?}");
        assert!(!error.to_string().contains("abc123"));
        assert_eq!(other_calls.get(), 0);
    })
    .await;
}

// ---- retries -----------------------------------------------------------------------------------------

/// A server whose `/r` answers with `script(call number)`, and the number of calls so far.
async fn scripted(script: fn(usize) -> AxResponse) -> (Url, Counter) {
    let calls = Counter::default();
    let c = calls.clone();
    let base = serve(Router::new().route("/r", any(move || async move { script(c.hit()) }))).await;
    (base, calls)
}

#[tokio::test]
async fn retry_after_seconds_are_honoured() {
    bounded(async {
        let (base, calls) =
            scripted(|n| if n == 1 { reply(429, &[("retry-after", "1")], "") } else { reply(200, &[], "{}") }).await;
        let client = HttpClient::new(settings(&base, ResolvedAuth::None)).unwrap();
        let started = Instant::now();
        let response = client.send(Request::get(url(&base, "/r"))).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(950), "{:?}", started.elapsed());
        assert_eq!((response.status, response.attempts, calls.get()), (200, 2, 2));
    })
    .await;
}

#[tokio::test]
async fn the_last_status_comes_back_as_a_response() {
    bounded(async {
        let (base, calls) = scripted(|_| reply(429, &[], "slow down")).await;
        let client = HttpClient::new(settings(&base, ResolvedAuth::None)).unwrap();
        let response = client.send(Request::get(url(&base, "/r"))).await.unwrap();
        assert_eq!((response.status, response.attempts, calls.get()), (429, 3, 3));
        assert_eq!(&response.body[..], b"slow down");
    })
    .await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_gives_up() {
    bounded(async {
        let (base, calls) = scripted(|_| reply(503, &[("retry-after", "3600")], "")).await;
        let client = HttpClient::new(settings(&base, ResolvedAuth::None)).unwrap();
        let error = client.send(Request::get(url(&base, "/r"))).await.unwrap_err();
        assert!(
            matches!(error, HttpError::RetryAfterTooLong { status: 503, wait, .. } if wait == Duration::from_secs(3600)),
            "{error:?}"
        );
        assert!(error.to_string().contains("retry.max_retry_after (1m)"), "{error}");
        assert_eq!(calls.get(), 1);

        // Ignored, the header does not matter and backoff applies.
        let mut ignoring = settings(&base, ResolvedAuth::None);
        ignoring.retry.retry_after = RetryAfter::Ignore;
        let response = HttpClient::new(ignoring).unwrap().send(Request::get(url(&base, "/r"))).await.unwrap();
        assert_eq!((response.status, response.attempts), (503, 3));
    })
    .await;
}

#[tokio::test]
async fn extra_statuses_are_retried_for_that_request_only() {
    bounded(async {
        let (base, calls) = scripted(|n| if n % 2 == 1 { reply(409, &[], "") } else { reply(200, &[], "{}") }).await;
        let client = HttpClient::new(settings(&base, ResolvedAuth::None)).unwrap();
        let mut request = Request::get(url(&base, "/r"));
        request.retry_statuses_extra = vec![409];
        assert_eq!(client.send(request).await.unwrap().status, 200);
        assert_eq!(client.send(Request::get(url(&base, "/r"))).await.unwrap().status, 409);
        assert_eq!(calls.get(), 3);
    })
    .await;
}

#[tokio::test]
async fn network_errors_are_retried_then_reported() {
    bounded(async {
        // A port that was just free: connecting to it is refused.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let client = HttpClient::new(settings(&base, bearer())).unwrap();
        let error = client.send(Request::get(url(&base, "/r?token=abc123"))).await.unwrap_err();
        assert!(matches!(&error, HttpError::Network { attempts: 3, .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains(base.as_str().trim_end_matches('/')) && !text.contains("abc123"), "{text}");

        let mut once = settings(&base, ResolvedAuth::None);
        once.retry.on_network_error = false;
        let error = HttpClient::new(once).unwrap().send(Request::get(url(&base, "/r"))).await.unwrap_err();
        assert!(matches!(error, HttpError::Network { attempts: 1, .. }), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn each_attempt_has_the_timeout() {
    bounded(async {
        let calls = Counter::default();
        let c = calls.clone();
        let base = serve(Router::new().route(
            "/slow",
            get(move || async move {
                c.hit();
                tokio::time::sleep(Duration::from_secs(3)).await;
                reply(200, &[], "{}")
            }),
        ))
        .await;
        let mut settings = settings(&base, ResolvedAuth::None);
        settings.timeout = Duration::from_millis(100);
        settings.retry.max_attempts = 2;
        let started = Instant::now();
        let error = HttpClient::new(settings).unwrap().send(Request::get(url(&base, "/slow"))).await.unwrap_err();
        assert!(matches!(error, HttpError::Timeout { attempts: 2, .. }), "{error:?}");
        assert!(error.to_string().contains("within 100ms"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(calls.get(), 2);
    })
    .await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    bounded(async {
        let (base, _) = scripted(|_| reply(200, &[], "x".repeat(100))).await;
        let mut settings = settings(&base, ResolvedAuth::None);
        settings.max_response_bytes = 10;
        let error = HttpClient::new(settings).unwrap().send(Request::get(url(&base, "/r"))).await.unwrap_err();
        assert!(matches!(error, HttpError::TooLarge { limit: 10, .. }), "{error:?}");
    })
    .await;
}

// ---- budgets -----------------------------------------------------------------------------------------

#[tokio::test]
async fn budgets_pace_requests_in_a_sliding_window() {
    bounded(async {
        let (base, calls) = scripted(|_| reply(200, &[], "{}")).await;
        let mut settings = settings(&base, ResolvedAuth::None);
        settings.budgets =
            vec![Budget { name: "reports".into(), requests: 2, per: Duration::from_millis(200), description: None }];
        let client = HttpClient::new(settings).unwrap();
        let started = Instant::now();
        for _ in 0..5 {
            let mut request = Request::get(url(&base, "/r"));
            request.budget = Some("reports".into());
            client.send(request).await.unwrap();
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert_eq!(calls.get(), 5);

        let mut unknown = Request::get(url(&base, "/r"));
        unknown.budget = Some("nope".into());
        assert!(matches!(client.send(unknown).await, Err(HttpError::Build { .. })));
    })
    .await;
}

// ---- OAuth2 client credentials -----------------------------------------------------------------------

/// A token endpoint (`/token`) and an API (`/api`) on one server. Tokens are `tok-<n>`; the API accepts only
/// the latest one, and answers the first `reject_first` calls with 401 anyway.
struct OAuthServer {
    base: Url,
    token_calls: Counter,
    api_calls: Counter,
    token_requests: Arc<Mutex<Vec<(AxHeaders, String)>>>,
    api_seen: Seen,
}

async fn oauth_server(token_reply: fn(usize) -> AxResponse, reject_first: usize) -> OAuthServer {
    let token_calls = Counter::default();
    let api_calls = Counter::default();
    let token_requests = Arc::new(Mutex::new(Vec::new()));
    let api_seen = Seen::default();
    let (tc, tr) = (token_calls.clone(), token_requests.clone());
    let (tc2, ac, seen) = (token_calls.clone(), api_calls.clone(), api_seen.clone());
    let router = Router::new()
        .route(
            "/token",
            post(move |headers: AxHeaders, body: String| async move {
                tr.lock().unwrap().push((headers, body));
                let n = tc.hit();
                // Slow enough that concurrent requests really do race for the first token.
                tokio::time::sleep(Duration::from_millis(50)).await;
                token_reply(n)
            }),
        )
        .route(
            "/api",
            get(move |headers: AxHeaders| async move {
                let n = ac.hit();
                let expected = format!("Bearer tok-{}", tc2.get());
                let ok = header(&headers, "authorization") == expected && n > reject_first;
                seen.push(headers);
                if ok { reply(200, &[], "{}") } else { reply(401, &[], r#"{"error":"expired"}"#) }
            }),
        );
    let base = serve(router).await;
    OAuthServer { base, token_calls, api_calls, token_requests, api_seen }
}

fn token_ok(n: usize) -> AxResponse {
    reply(200, &[("content-type", "application/json")], format!(r#"{{"access_token":"tok-{n}","expires_in":3600}}"#))
}

fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

#[tokio::test]
async fn one_token_serves_the_run() {
    bounded(async {
        let server = oauth_server(token_ok, 0).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        assert_eq!(client.token_requests(), 0, "minted lazily");
        for _ in 0..3 {
            assert_eq!(client.send(Request::get(url(&server.base, "/api"))).await.unwrap().status, 200);
        }
        assert_eq!((client.token_requests(), server.token_calls.get(), server.api_calls.get()), (1, 1, 3));
        let (headers, body) = server.token_requests.lock().unwrap()[0].clone();
        assert_eq!(
            form(&body),
            [
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("client_id".into(), "app".into()),
                ("client_secret".into(), SECRET.into()),
                ("scope".into(), "api/.default".into()),
            ]
        );
        assert!(headers.get("authorization").is_none());
        assert_eq!(header(&headers, "content-type"), "application/x-www-form-urlencoded");
        // The secret goes to the token endpoint only.
        for headers in server.api_seen.all() {
            assert!(!format!("{headers:?}").contains(SECRET));
            assert_eq!(header(&headers, "authorization"), "Bearer tok-1");
        }
    })
    .await;
}

#[tokio::test]
async fn client_credentials_can_go_as_basic_auth() {
    bounded(async {
        let server = oauth_server(token_ok, 0).await;
        let mut auth = oauth2(url(&server.base, "/token"));
        if let ResolvedAuth::OAuth2 { credentials_in, client_secret, .. } = &mut auth {
            *credentials_in = CredentialsIn::BasicAuth;
            *client_secret = "s3cret".into();
        }
        let client = HttpClient::new(settings(&server.base, auth)).unwrap();
        client.send(Request::get(url(&server.base, "/api"))).await.unwrap();
        let (headers, body) = server.token_requests.lock().unwrap()[0].clone();
        assert_eq!(header(&headers, "authorization"), "Basic YXBwOnMzY3JldA==");
        assert_eq!(
            form(&body),
            [("grant_type".to_string(), "client_credentials".to_string()), ("scope".into(), "api/.default".into())]
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_requests_share_one_mint() {
    bounded(async {
        let server = oauth_server(token_ok, 0).await;
        let client = Arc::new(HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (client, target) = (client.clone(), url(&server.base, "/api"));
            tasks.spawn(async move { client.send(Request::get(target)).await.unwrap().status });
        }
        while let Some(status) = tasks.join_next().await {
            assert_eq!(status.unwrap(), 200);
        }
        assert_eq!((client.token_requests(), server.token_calls.get(), server.api_calls.get()), (1, 1, 8));
    })
    .await;
}

#[tokio::test]
async fn a_401_mints_a_fresh_token_once() {
    bounded(async {
        let server = oauth_server(token_ok, 1).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        let response = client.send(Request::get(url(&server.base, "/api"))).await.unwrap();
        assert_eq!((response.status, response.attempts), (200, 2));
        assert_eq!((client.token_requests(), server.api_calls.get()), (2, 2));
        let seen: Vec<String> = server.api_seen.all().iter().map(|h| header(h, "authorization")).collect();
        assert_eq!(seen, ["Bearer tok-1", "Bearer tok-2"]);
    })
    .await;
}

#[tokio::test]
async fn a_second_401_is_the_answer() {
    bounded(async {
        let server = oauth_server(token_ok, usize::MAX).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        let response = client.send(Request::get(url(&server.base, "/api"))).await.unwrap();
        assert_eq!((response.status, response.attempts), (401, 2));
        assert_eq!((client.token_requests(), server.api_calls.get()), (2, 2));
    })
    .await;
}

#[tokio::test]
async fn short_lived_and_unbounded_tokens() {
    bounded(async {
        fn instant_expiry(n: usize) -> AxResponse {
            reply(200, &[], format!(r#"{{"access_token":"tok-{n}","expires_in":"0"}}"#))
        }
        let server = oauth_server(instant_expiry, 0).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        for _ in 0..2 {
            assert_eq!(client.send(Request::get(url(&server.base, "/api"))).await.unwrap().status, 200);
        }
        assert_eq!(client.token_requests(), 2);

        fn no_expiry(n: usize) -> AxResponse {
            reply(200, &[], format!(r#"{{"access_token":"tok-{n}"}}"#))
        }
        let server = oauth_server(no_expiry, 0).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        for _ in 0..2 {
            assert_eq!(client.send(Request::get(url(&server.base, "/api"))).await.unwrap().status, 200);
        }
        assert_eq!(client.token_requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn token_refusals_are_explained_and_not_retried() {
    bounded(async {
        fn refuse(_: usize) -> AxResponse {
            let description = format!("Invalid client secret provided ({SECRET}). {}", "Trace details. ".repeat(100));
            let body = serde_json::json!({
                "error": "invalid_client",
                "error_description": description,
                "error_codes": [7000215],
                "access_token_hint": SECRET,
            });
            reply(401, &[("content-type", "application/json")], body.to_string())
        }
        let server = oauth_server(refuse, 0).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        let error = client.send(Request::get(url(&server.base, "/api"))).await.unwrap_err();
        let HttpError::Auth { status, error: code, codes, explanation, description } = &error else {
            panic!("an auth error, got {error:?}");
        };
        assert_eq!((*status, code.as_deref()), (401, Some("invalid_client")));
        assert_eq!(codes, &["7000215", "invalid_client"]);
        assert_eq!(explanation.as_deref(), Some("the client secret is wrong; create a new one"));
        assert!(description.as_ref().unwrap().chars().count() <= 301);
        let text = error.to_string();
        assert!(text.contains("HTTP 401") && text.contains("invalid_client") && text.contains("7000215"), "{text}");
        assert!(text.contains("the client secret is wrong"), "{text}");
        for shown in [text, format!("{error:?}"), format!("{client:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
        }
        assert_eq!((client.token_requests(), server.token_calls.get(), server.api_calls.get()), (1, 1, 0));
    })
    .await;
}

#[tokio::test]
async fn token_endpoint_outages_follow_the_retry_policy() {
    bounded(async {
        fn flaky(n: usize) -> AxResponse {
            if n == 1 { reply(503, &[], "") } else { token_ok(n) }
        }
        let server = oauth_server(flaky, 0).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        assert_eq!(client.send(Request::get(url(&server.base, "/api"))).await.unwrap().status, 200);
        assert_eq!((client.token_requests(), server.token_calls.get()), (2, 2));

        fn not_json(_: usize) -> AxResponse {
            reply(200, &[], "<html>hello</html>")
        }
        let server = oauth_server(not_json, 0).await;
        let client = HttpClient::new(settings(&server.base, oauth2(url(&server.base, "/token")))).unwrap();
        let error = client.send(Request::get(url(&server.base, "/api"))).await.unwrap_err();
        assert!(matches!(error, HttpError::Auth { status: 200, .. }), "{error:?}");
        assert!(error.to_string().contains("access_token"), "{error}");
    })
    .await;
}

// ---- secrets -----------------------------------------------------------------------------------------

#[test]
fn debug_output_never_shows_secrets() {
    let base = Url::parse("https://api.example.com/").unwrap();
    let token_url = Url::parse("https://login.example.com/tenant/token?key=abc123").unwrap();
    let auths = [
        bearer(),
        ResolvedAuth::ApiKey { location: KeyLocation::Query, name: "key".into(), value: SECRET.into() },
        ResolvedAuth::Basic { username: "user".into(), password: SECRET.into() },
        oauth2(token_url),
    ];
    for auth in auths {
        let shown = format!("{auth:?}");
        assert!(shown.contains("[redacted]") && !shown.contains(SECRET) && !shown.contains("abc123"), "{shown}");
        let settings = settings(&base, auth);
        let shown = format!("{settings:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        let shown = format!("{:?}", HttpClient::new(settings).unwrap());
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

#[test]
fn the_client_is_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<HttpClient>();
    shareable::<HttpError>();
}
