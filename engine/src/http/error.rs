//! `HttpError`: why a request could not produce a response, worded for the operator who reads the run
//! report. Every field is safe to print: origins instead of URLs (a URL may carry a key in its query), and
//! nothing from the credentials. What the token endpoint says is kept only in scrubbed, shortened form.

use std::fmt::Write as _;
use std::time::Duration;

/// A failed request. Statuses are not errors: after the retries, any status comes back as a
/// [`Response`](super::Response) so the caller can apply its own status rules.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL's origin is neither the base URL's nor one of the allowed hosts.
    #[error(
        "refused to send a request to {origin}: it is neither the base URL's origin nor one of http.allowed_hosts, \
         so it may not receive this connector's requests or credentials"
    )]
    OffHost { origin: String },

    /// Plain `http` to a host that is not loopback, or a scheme that is not http(s) at all.
    #[error("refused to use {origin}: only https is allowed (plain http only for loopback addresses)")]
    InsecureScheme { origin: String },

    /// The server redirected to an origin that may not receive requests.
    #[error(
        "{from} redirected to {to}, which is neither the base URL's origin nor one of http.allowed_hosts; \
         the redirect was not followed"
    )]
    Redirect { from: String, to: String },

    /// More redirects in a row than [`MAX_REDIRECTS`](super::MAX_REDIRECTS).
    #[error("{origin} redirected more than {hops} times in a row; gave up")]
    TooManyRedirects { origin: String, hops: u32 },

    /// The token endpoint did not issue a token.
    #[error("{}", auth_message(*.status, .error.as_deref(), .codes, .explanation.as_deref(), .description.as_deref()))]
    Auth {
        /// HTTP status of the token endpoint's answer.
        status: u16,
        /// The `error` string of the answer (e.g. `invalid_client`), when there is one.
        error: Option<String>,
        /// Every code found with the spec's error-code paths, numbers as decimal text.
        codes: Vec<String>,
        /// The spec's explanation for the first code that has one.
        explanation: Option<String>,
        /// The server's `error_description`, at most 300 characters.
        description: Option<String>,
    },

    /// The connection failed (refused, reset, DNS, TLS, broken body) on every attempt allowed.
    #[error("could not get an answer from {origin} ({attempts} {}): {message}", plural(*.attempts))]
    Network { origin: String, attempts: u32, message: String },

    /// The server asked to wait longer than `retry.max_retry_after` allows.
    #[error(
        "{origin} answered HTTP {status} and asked to retry after {}, longer than retry.max_retry_after ({}); gave up",
        human(*.wait),
        human(*.max)
    )]
    RetryAfterTooLong { origin: String, status: u16, wait: Duration, max: Duration },

    /// No complete answer within `http.timeout` on every attempt allowed.
    #[error("{origin} did not answer within {} ({attempts} {})", human(*.timeout), plural(*.attempts))]
    Timeout { origin: String, attempts: u32, timeout: Duration },

    /// The answer's body is larger than the client accepts.
    #[error("the answer from {origin} is larger than {limit} bytes; refused to read it")]
    TooLarge { origin: String, limit: u64 },

    /// The client or a request could not be put together (bad header, unknown budget, TLS setup).
    #[error("could not prepare the HTTP request: {message}")]
    Build { message: String },
}

fn plural(attempts: u32) -> &'static str {
    if attempts == 1 { "attempt" } else { "attempts" }
}

fn auth_message(
    status: u16,
    error: Option<&str>,
    codes: &[String],
    explanation: Option<&str>,
    description: Option<&str>,
) -> String {
    let mut text = format!("the token endpoint did not issue a token (HTTP {status}");
    if let Some(error) = error {
        let _ = write!(text, ", error `{error}`");
    }
    let codes: Vec<&str> = codes.iter().map(String::as_str).filter(|c| Some(*c) != error).collect();
    if !codes.is_empty() {
        let _ = write!(text, ", {} {}", if codes.len() == 1 { "code" } else { "codes" }, codes.join(", "));
    }
    text.push(')');
    if let Some(explanation) = explanation {
        let _ = write!(text, ": {explanation}");
    }
    if let Some(description) = description {
        let _ = write!(text, "; the server said: {description}");
    }
    text
}

/// A duration as an operator writes it in a spec: `250ms`, `1.5s`, `90s`, `2m`, `1h`.
pub(crate) fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

impl HttpError {
    /// True for the errors a caller may want to treat as "the API is unreachable right now" rather than
    /// "the connector is misconfigured".
    pub fn is_transient(&self) -> bool {
        matches!(self, HttpError::Network { .. } | HttpError::Timeout { .. } | HttpError::RetryAfterTooLong { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_spec() {
        let cases = [(250, "250ms"), (1000, "1s"), (1500, "1.5s"), (90_000, "90s"), (120_000, "2m"), (3_600_000, "1h")];
        for (ms, text) in cases {
            assert_eq!(human(Duration::from_millis(ms)), text);
        }
    }
}
