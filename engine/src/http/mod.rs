//! The HTTP runtime every request of a run goes through. The caller (the runner) renders URLs; this module
//! makes sending them safe and resilient. One [`HttpClient`] serves one run and is shared through an `Arc`.
//!
//! What it guarantees:
//!
//! - **Host pinning.** A request goes out only when its URL's origin (scheme, host, port) is the base URL's
//!   origin or one of the allowed origins; any other request is refused before sending with
//!   [`HttpError::OffHost`], which names the origin only, never the full URL (its query may hold a token).
//!   Credentials (bearer, API key, basic, OAuth2 token) are therefore attached only to pinned origins.
//! - Plain `http` is refused ([`HttpError::InsecureScheme`]) unless the host is loopback (127.0.0.0/8, `::1`,
//!   `localhost`), for the base URL, the allowed origins, the token URL and every request.
//! - Redirects are never followed by the HTTP library. A 3xx with a `Location` whose origin is pinned is
//!   followed here, up to [`MAX_REDIRECTS`] hops, with pinning checked again at every hop (303, and 301/302
//!   after a POST, continue as a GET without body); a redirect to any other origin is
//!   [`HttpError::Redirect`], naming both origins.
//! - The OAuth2 client secret goes only to the token URL, which is exempt from pinning but must be https or
//!   loopback http.
//! - **OAuth2 client credentials.** One token per client, minted lazily on first use and shared by concurrent
//!   requests (one mint even when several race), cached until `expires_in - refresh_before` (half of
//!   `expires_in` when that is not longer than `refresh_before`; forever when the endpoint gives no
//!   `expires_in`). The credentials go in the form body, or as HTTP basic auth when `credentials_in` says so.
//! - Token endpoint refusals are not retried (network errors and the 429/5xx of `retry.statuses` are, by the
//!   retry policy): the error body is read with each error-code JSONPath, every code found (numbers as
//!   decimal text) is looked up in the spec's messages, and [`HttpError::Auth`] carries the status, the
//!   `error` string, the codes and the first explanation.
//! - A 401 from the API invalidates the cached token and the request is sent once more with a fresh one; a
//!   second 401 comes back as an ordinary [`Response`].
//! - **Retries.** Statuses in `retry.statuses` (plus the request's `retry_statuses_extra`) and, when
//!   `on_network_error`, connection failures, resets and timeouts are retried up to `max_attempts` attempts
//!   in all. The wait is the `Retry-After` header (seconds or HTTP-date) when the policy honours it — one
//!   longer than `max_retry_after` gives up with [`HttpError::RetryAfterTooLong`] — and otherwise
//!   `initial * multiplier^(n-1)` capped at the longest backoff, drawn uniformly between half and all of it
//!   when `jitter` is on.
//! - After the last attempt any status is returned as a [`Response`], not an error, so the runner applies its
//!   own status rules; a network failure on the last attempt is [`HttpError::Network`] (or
//!   [`HttpError::Timeout`]) with the number of attempts.
//! - **Budgets.** A request naming a budget waits until it fits in that budget's sliding window (at most
//!   `requests` sends in any `per`), shared by all requests of the client; every attempt counts.
//! - Each attempt has the spec's timeout, and carries `Accept: application/json` (unless a header overrides
//!   it), the default headers and the request's headers (which win over default headers of the same name),
//!   a `User-Agent: engine/<version>`, and `Accept-Encoding: gzip`.
//! - A response body larger than `max_response_bytes` is refused ([`HttpError::TooLarge`]) rather than read.
//! - **Secrets never leak.** No error's `Display` or `Debug` contains a secret, a token or a full URL; the
//!   server's `error_description` is kept to 300 characters with the secret scrubbed out; the `Debug` of
//!   [`ResolvedAuth`], [`ClientSettings`] and [`HttpClient`] print `[redacted]`; credential headers are
//!   marked sensitive; [`Response::url`] never carries user info or a query-string API key.

mod auth;
mod budget;
mod error;
mod pin;
mod retry;
#[cfg(test)]
mod tests;

pub use crate::model::{CredentialsIn, KeyLocation, Method};
pub use auth::ResolvedAuth;
pub(crate) use auth::basic;
pub use error::HttpError;

use crate::model::{Budget, Http, Retry, RetryAfter};
use bytes::Bytes;
use pin::{Pins, origin_text};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

/// Redirect hops followed for one request before giving up.
pub const MAX_REDIRECTS: u32 = 5;

/// The largest response body read when the settings do not say otherwise: far above any page of JSON, far
/// below what would hurt the host.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything a client needs, with the spec's templates already rendered.
pub struct ClientSettings {
    /// The rendered `http.base_url`; its origin is always allowed.
    pub base_url: Url,
    /// The rendered `http.allowed_hosts`; only their origins matter.
    pub allowed_origins: Vec<Url>,
    pub auth: ResolvedAuth,
    pub retry: Retry,
    pub budgets: Vec<Budget>,
    /// Per attempt, from connecting to the last byte of the body.
    pub timeout: Duration,
    /// The rendered `http.headers`.
    pub default_headers: Vec<(String, String)>,
    pub max_response_bytes: u64,
}

impl ClientSettings {
    /// Settings for a run: what the spec fixes (retry policy, budgets, timeout) is copied from `http`; the
    /// rendered values come from the caller.
    pub fn from_http(
        http: &Http,
        base_url: Url,
        allowed_origins: Vec<Url>,
        default_headers: Vec<(String, String)>,
        auth: ResolvedAuth,
    ) -> ClientSettings {
        let r = &http.retry;
        ClientSettings {
            base_url,
            allowed_origins,
            auth,
            retry: Retry {
                statuses: r.statuses.clone(),
                max_attempts: r.max_attempts,
                retry_after: r.retry_after,
                max_retry_after: r.max_retry_after,
                initial_backoff: r.initial_backoff,
                max_backoff: r.max_backoff,
                multiplier: r.multiplier,
                jitter: r.jitter,
                on_network_error: r.on_network_error,
            },
            budgets: http
                .budgets
                .iter()
                .map(|b| Budget {
                    name: b.name.clone(),
                    requests: b.requests,
                    per: b.per,
                    description: b.description.clone(),
                })
                .collect(),
            timeout: http.timeout,
            default_headers,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are not secrets by the spec's rules, but nothing here needs them, so only names show.
        let header_names: Vec<&str> = self.default_headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ClientSettings")
            .field("base_url", &origin_text(&self.base_url))
            .field("allowed_origins", &self.allowed_origins.iter().map(origin_text).collect::<Vec<_>>())
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("budgets", &self.budgets)
            .field("timeout", &self.timeout)
            .field("default_headers", &header_names)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// One request as the runner means it; the client adds credentials, retries and follows redirects.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// Absolute; its origin must be pinned.
    pub url: Url,
    /// Sent on every attempt; a name also among the default headers replaces that default.
    pub headers: Vec<(String, String)>,
    /// Sent as `application/json`.
    pub body: Option<serde_json::Value>,
    /// The name of an `http.budgets` entry this request counts against.
    pub budget: Option<String>,
    /// Statuses retried for this request on top of `retry.statuses`.
    pub retry_statuses_extra: Vec<u16>,
}

impl Request {
    pub fn get(url: Url) -> Request {
        Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            body: None,
            budget: None,
            retry_statuses_extra: Vec::new(),
        }
    }

    pub fn post(url: Url, body: serde_json::Value) -> Request {
        Request { method: Method::Post, body: Some(body), ..Request::get(url) }
    }
}

/// The final answer to a request, whatever its status.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that gave this answer (after redirects), without user info or a query-string API key.
    pub url: Url,
    /// Requests sent on the wire for this one: retries, the re-send after a 401 and redirect hops included.
    pub attempts: u32,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The HTTP client of one run. `Send + Sync`; share it through an `Arc`.
pub struct HttpClient {
    http: reqwest::Client,
    pins: Pins,
    auth: ResolvedAuth,
    token: tokio::sync::Mutex<auth::TokenCache>,
    token_requests: AtomicU64,
    retry: Retry,
    budgets: budget::Budgets,
    timeout: Duration,
    /// `Accept` and the spec's default headers, parsed once.
    default_headers: HeaderMap,
    max_response_bytes: u64,
    jitter: retry::Jitter,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("pins", &self.pins)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a body could not be read: the connection (worth a retry) or its size (not).
pub(crate) enum BodyError {
    Network(reqwest::Error),
    TooLarge(HttpError),
}

/// What one hop of a request (its attempts included) ended with.
struct Received {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    /// Where a 3xx points, when it has a usable `Location`; its body is not read.
    redirect: Option<Url>,
}

/// One hop of a request, as [`HttpClient::hop`] sends it on every attempt.
struct Hop<'a> {
    method: Method,
    url: &'a Url,
    headers: &'a HeaderMap,
    body: Option<Bytes>,
    budget: Option<&'a budget::Window>,
    retry_statuses_extra: &'a [u16],
}

impl HttpClient {
    pub fn new(settings: ClientSettings) -> Result<HttpClient, HttpError> {
        let ClientSettings {
            base_url,
            allowed_origins,
            auth,
            retry,
            budgets,
            timeout,
            default_headers: headers,
            max_response_bytes,
        } = settings;
        let pins = Pins::new(&base_url, &allowed_origins)?;
        if let ResolvedAuth::OAuth2 { token_url, .. } = &auth {
            pin::check_scheme(token_url)?;
        }
        let mut default_headers = HeaderMap::new();
        default_headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        merge_headers(&mut default_headers, &headers)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("engine/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .build()
            .map_err(|e| HttpError::Build { message: describe(&e) })?;
        Ok(HttpClient {
            http,
            pins,
            auth,
            token: Default::default(),
            token_requests: AtomicU64::new(0),
            retry,
            budgets: budget::Budgets::new(&budgets),
            timeout,
            default_headers,
            max_response_bytes,
            jitter: retry::Jitter::from_time(),
        })
    }

    /// Sends a request with retries, credentials and redirects; any final status is a `Response`.
    pub async fn send(&self, request: Request) -> Result<Response, HttpError> {
        let Request { mut method, url, headers, body, budget, retry_statuses_extra } = request;
        let mut url = auth::clean_url(&self.auth, url);
        self.pins.check(&url)?;
        let mut all_headers = self.default_headers.clone();
        merge_headers(&mut all_headers, &headers)?;
        let budget = match &budget {
            Some(name) => Some(
                self.budgets
                    .get(name)
                    .ok_or_else(|| HttpError::Build { message: format!("there is no budget named `{name}`") })?,
            ),
            None => None,
        };
        let mut body = match body {
            Some(json) => {
                all_headers.entry(CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
                let bytes = serde_json::to_vec(&json)
                    .map_err(|e| HttpError::Build { message: format!("the request body is not JSON: {e}") })?;
                Some(Bytes::from(bytes))
            }
            None => None,
        };
        let mut attempts = 0;
        let mut hops = 0;
        loop {
            let hop = Hop {
                method,
                url: &url,
                headers: &all_headers,
                body: body.clone(),
                budget,
                retry_statuses_extra: &retry_statuses_extra,
            };
            let received = self.hop(hop, &mut attempts).await?;
            let Some(target) = received.redirect else {
                let Received { status, headers, body, .. } = received;
                return Ok(Response { status, headers, body, url, attempts });
            };
            if !self.pins.allows(&target) {
                return Err(HttpError::Redirect { from: origin_text(&url), to: origin_text(&target) });
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(HttpError::TooManyRedirects { origin: origin_text(&url), hops: MAX_REDIRECTS });
            }
            // What browsers and RFC 9110 do: 303 always, and 301/302 after a POST, continue as a GET.
            if received.status == 303 || (matches!(received.status, 301 | 302) && method == Method::Post) {
                method = Method::Get;
                body = None;
                all_headers.remove(CONTENT_TYPE);
            }
            url = target;
        }
    }

    /// Token requests sent so far (every attempt at the token endpoint counts).
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    /// Whether a request to `url` would be sent (and get credentials): its origin is pinned and its scheme
    /// allowed. The runner asks this before following a next link it did not build itself.
    pub fn is_allowed(&self, url: &Url) -> bool {
        self.pins.allows(url)
    }

    /// Sends one hop of a request until it gets a final answer or runs out of attempts.
    async fn hop(&self, hop: Hop<'_>, attempts: &mut u32) -> Result<Received, HttpError> {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        let mut token_refreshed = false;
        loop {
            attempt += 1;
            *attempts += 1;
            if let Some(window) = hop.budget {
                window.acquire().await;
            }
            let token = self.token().await?;
            let mut wire_url = hop.url.clone();
            let mut headers = hop.headers.clone();
            auth::attach(self, token.as_ref(), &mut wire_url, &mut headers)?;
            let method = match hop.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
            };
            let mut builder = self.http.request(method, wire_url).headers(headers).timeout(self.timeout);
            if let Some(body) = &hop.body {
                builder = builder.body(body.clone());
            }
            let response = match builder.send().await {
                Ok(response) => response,
                Err(error) => {
                    let wait = self.after_network_error(hop.url, attempt, *attempts, error)?;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            if status == 401
                && !token_refreshed
                && let Some(token) = &token
            {
                // The token may have been revoked or expired early; one fresh token decides. The re-send
                // does not use up the retry policy's attempts.
                token_refreshed = true;
                attempt -= 1;
                self.forget_token(token.generation).await;
                continue;
            }
            let retryable = self.retry.statuses.contains(&status) || hop.retry_statuses_extra.contains(&status);
            if retryable && attempt < max_attempts {
                let wait = self.wait_before_retry(attempt, response.headers(), hop.url, status)?;
                drop(response);
                tokio::time::sleep(wait).await;
                continue;
            }
            let headers = response.headers().clone();
            let redirect = redirect_target(response.status(), &headers, hop.url);
            let body = if redirect.is_some() {
                Bytes::new()
            } else {
                match self.read_body(response, hop.url).await {
                    Ok(body) => body,
                    Err(BodyError::TooLarge(error)) => return Err(error),
                    Err(BodyError::Network(error)) => {
                        let wait = self.after_network_error(hop.url, attempt, *attempts, error)?;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            };
            let redirect = redirect.map(|target| auth::clean_url(&self.auth, target));
            return Ok(Received { status, headers, body, redirect });
        }
    }

    /// Reads a body up to the size limit; the limit applies after decompression.
    pub(crate) async fn read_body(&self, mut response: reqwest::Response, url: &Url) -> Result<Bytes, BodyError> {
        let limit = self.max_response_bytes;
        let too_large = || BodyError::TooLarge(HttpError::TooLarge { origin: origin_text(url), limit });
        if response.content_length().is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        // Reserved whole when the length is known: growing a page-sized buffer chunk by chunk copies it
        // several times over.
        let known = response.content_length().and_then(|length| usize::try_from(length).ok());
        let mut body = Vec::with_capacity(known.unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(BodyError::Network)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    /// The wait before retrying after a network failure on attempt `attempt`, or the final error when the
    /// policy does not retry it or no attempt is left. `attempts` is what the error reports.
    pub(crate) fn after_network_error(
        &self,
        url: &Url,
        attempt: u32,
        attempts: u32,
        error: reqwest::Error,
    ) -> Result<Duration, HttpError> {
        if error.is_builder() {
            return Err(HttpError::Build { message: describe(&error) });
        }
        if self.retry.on_network_error && attempt < self.retry.max_attempts.max(1) {
            return Ok(self.backoff(attempt));
        }
        let origin = origin_text(url);
        if error.is_timeout() {
            Err(HttpError::Timeout { origin, attempts, timeout: self.timeout })
        } else {
            Err(HttpError::Network { origin, attempts, message: describe(&error) })
        }
    }

    /// The wait before retrying a retryable status: the server's `Retry-After` when honoured, else backoff.
    pub(crate) fn wait_before_retry(
        &self,
        attempt: u32,
        headers: &HeaderMap,
        url: &Url,
        status: u16,
    ) -> Result<Duration, HttpError> {
        if self.retry.retry_after == RetryAfter::Honor
            && let Some(wait) = retry::retry_after(headers, jiff::Timestamp::now())
        {
            if wait > self.retry.max_retry_after {
                return Err(HttpError::RetryAfterTooLong {
                    origin: origin_text(url),
                    status,
                    wait,
                    max: self.retry.max_retry_after,
                });
            }
            return Ok(wait);
        }
        Ok(self.backoff(attempt))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let wait = retry::backoff(&self.retry, attempt);
        if self.retry.jitter { self.jitter.spread(wait) } else { wait }
    }
}

/// Where a redirect points, resolved against the URL that answered; `None` for any other answer, or a
/// redirect without a usable `Location` (which is then returned to the caller as it is).
fn redirect_target(status: StatusCode, headers: &HeaderMap, url: &Url) -> Option<Url> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(LOCATION)?.to_str().ok()?;
    url.join(location).ok()
}

/// Adds `pairs` to `headers`, each replacing any earlier value of the same name.
fn merge_headers(headers: &mut HeaderMap, pairs: &[(String, String)]) -> Result<(), HttpError> {
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::Build { message: format!("`{name}` is not a valid header name") })?;
        // The value is not repeated: it may be long, and nothing should be echoed that needn't be.
        let value = HeaderValue::from_str(value).map_err(|_| HttpError::Build {
            message: format!("the value of header `{name}` contains characters a header cannot carry"),
        })?;
        headers.insert(header, value);
    }
    Ok(())
}

/// What went wrong with a connection, in words, without the URL reqwest would put in its message.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_decode() {
        "could not decode the answer"
    } else if error.is_body() {
        "the answer broke off"
    } else if error.is_builder() {
        "invalid request"
    } else {
        "the request failed"
    };
    // The innermost cause is the one that says what happened (refused, reset, certificate, DNS); reqwest's
    // own text is left out because it carries the URL.
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = cause.and_then(std::error::Error::source) {
        cause = Some(inner);
    }
    match cause {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_string(),
    }
}
