//! Credentials: the resolved secrets of a run, how each kind goes onto a request, and the OAuth2 client
//! credentials token — minted lazily, once per client however many requests race for it, cached until
//! shortly before it expires, and explained in the spec's own words when the token endpoint refuses.

use super::pin::origin_text;
use super::{BodyError, HttpClient, HttpError};
use crate::jsonpath::JsonPath;
use crate::model::{CredentialsIn, KeyLocation};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use url::Url;

/// The credentials of a run, with every template already rendered by the caller.
// One value per run, so the size of the OAuth2 variant costs nothing worth a Box (and the fields stay
// constructible as written).
#[allow(clippy::large_enum_variant)]
pub enum ResolvedAuth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// A key in a header (`name: value`) or in the query (`?name=value`).
    ApiKey {
        location: KeyLocation,
        name: String,
        value: SecretString,
    },
    /// HTTP basic authentication.
    Basic {
        username: String,
        password: SecretString,
    },
    /// OAuth 2.0 client credentials. The secret goes to `token_url` only; the token goes where other
    /// credentials go.
    OAuth2 {
        token_url: Url,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
        credentials_in: CredentialsIn,
        refresh_before: Duration,
        /// Where the token endpoint's error body keeps its codes, e.g. `$.error_codes[*]`, `$.error`.
        error_code_paths: Vec<JsonPath>,
        /// Explanation per code, e.g. `("7000215", "the client secret is wrong")`.
        error_messages: Vec<(String, String)>,
    },
}

impl fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HIDDEN: &str = "[redacted]";
        match self {
            ResolvedAuth::None => f.write_str("None"),
            ResolvedAuth::Bearer(_) => f.debug_tuple("Bearer").field(&HIDDEN).finish(),
            ResolvedAuth::ApiKey { location, name, value: _ } => f
                .debug_struct("ApiKey")
                .field("location", location)
                .field("name", name)
                .field("value", &HIDDEN)
                .finish(),
            ResolvedAuth::Basic { username, password: _ } => {
                f.debug_struct("Basic").field("username", username).field("password", &HIDDEN).finish()
            }
            ResolvedAuth::OAuth2 {
                token_url,
                client_id,
                client_secret: _,
                scope,
                credentials_in,
                refresh_before,
                error_code_paths,
                error_messages,
            } => f
                .debug_struct("OAuth2")
                .field("token_url", &origin_text(token_url))
                .field("client_id", client_id)
                .field("client_secret", &HIDDEN)
                .field("scope", scope)
                .field("credentials_in", credentials_in)
                .field("refresh_before", refresh_before)
                .field("error_code_paths", error_code_paths)
                .field("error_messages", &error_messages.len())
                .finish(),
        }
    }
}

/// The token a request was sent with, so a 401 can drop exactly that token and not a newer one another
/// request already minted.
pub(crate) struct Token {
    pub(crate) value: SecretString,
    pub(crate) generation: u64,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    current: Option<Cached>,
    minted: u64,
}

struct Cached {
    value: SecretString,
    /// `None`: the endpoint gave no `expires_in`, so the token is kept until a 401 says otherwise.
    fresh_until: Option<Instant>,
    generation: u64,
}

/// How long a token is used: until `refresh_before` ahead of its expiry, or for half its life when it
/// lives no longer than `refresh_before`.
pub(crate) fn usable_for(expires_in: Duration, refresh_before: Duration) -> Duration {
    if expires_in > refresh_before { expires_in - refresh_before } else { expires_in / 2 }
}

impl HttpClient {
    /// The OAuth2 token for the next attempt (`None` for other kinds of auth), minting one when none is
    /// cached or the cached one is due for refresh. The cache lock is held while minting, so requests
    /// that race here wait for the one mint instead of each starting their own.
    pub(crate) async fn token(&self) -> Result<Option<Token>, HttpError> {
        if !matches!(self.auth, ResolvedAuth::OAuth2 { .. }) {
            return Ok(None);
        }
        let mut cache = self.token.lock().await;
        if let Some(cached) = &cache.current
            && cached.fresh_until.is_none_or(|until| Instant::now() < until)
        {
            return Ok(Some(Token { value: cached.value.clone(), generation: cached.generation }));
        }
        let (value, expires_in) = self.mint().await?;
        cache.minted += 1;
        let generation = cache.minted;
        let fresh_until = expires_in.map(|expires_in| {
            let refresh_before = match &self.auth {
                ResolvedAuth::OAuth2 { refresh_before, .. } => *refresh_before,
                _ => Duration::ZERO,
            };
            Instant::now() + usable_for(expires_in, refresh_before)
        });
        cache.current = Some(Cached { value: value.clone(), fresh_until, generation });
        Ok(Some(Token { value, generation }))
    }

    /// Drops the cached token after the API refused it, unless a newer one has replaced it already.
    pub(crate) async fn forget_token(&self, generation: u64) {
        let mut cache = self.token.lock().await;
        if cache.current.as_ref().is_some_and(|cached| cached.generation == generation) {
            cache.current = None;
        }
    }

    /// One client-credentials exchange, with the run's retry policy for what is worth retrying there:
    /// network errors and the 429/5xx statuses of `retry.statuses`. Anything else the endpoint answers is
    /// final, because a wrong secret does not become right by asking again.
    async fn mint(&self) -> Result<(SecretString, Option<Duration>), HttpError> {
        let ResolvedAuth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            credentials_in,
            error_code_paths,
            error_messages,
            ..
        } = &self.auth
        else {
            unreachable!("mint is only called for OAuth2 auth");
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if *credentials_in == CredentialsIn::Body {
            form.push(("client_id", client_id));
            form.push(("client_secret", client_secret.expose_secret()));
        }
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.token_requests.fetch_add(1, Ordering::Relaxed);
            let mut builder =
                self.http.post(token_url.clone()).timeout(self.timeout).header(ACCEPT, "application/json").form(&form);
            if *credentials_in == CredentialsIn::BasicAuth {
                // RFC 6749 §2.3.1: both are form-encoded before they are joined, so a `:` or `%` in the
                // secret survives.
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let mut value =
                    HeaderValue::from_str(&basic(&encode(client_id), &encode(client_secret.expose_secret())))
                        .map_err(|_| HttpError::Build { message: "the client id cannot be sent in a header".into() })?;
                value.set_sensitive(true);
                builder = builder.header(AUTHORIZATION, value);
            }
            let response = match builder.send().await {
                Ok(response) => response,
                Err(error) => {
                    let wait = self.after_network_error(token_url, attempt, attempt, error)?;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let transient = status == 429 || status >= 500;
            if transient && self.retry.statuses.contains(&status) && attempt < max_attempts {
                let wait = self.wait_before_retry(attempt, response.headers(), token_url, status)?;
                drop(response);
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = match self.read_body(response, token_url).await {
                Ok(body) => body,
                Err(BodyError::TooLarge(error)) => return Err(error),
                Err(BodyError::Network(error)) => {
                    let wait = self.after_network_error(token_url, attempt, attempt, error)?;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let json: Option<Value> = serde_json::from_slice(&body).ok();
            if (200..300).contains(&status) {
                let token = json.as_ref().and_then(|j| j.get("access_token")).and_then(Value::as_str);
                let Some(token) = token.filter(|t| !t.is_empty()) else {
                    return Err(HttpError::Auth {
                        status,
                        error: None,
                        codes: Vec::new(),
                        explanation: Some("the answer is not JSON with an `access_token`".into()),
                        description: None,
                    });
                };
                let expires_in = json.as_ref().and_then(|j| j.get("expires_in")).and_then(seconds);
                return Ok((SecretString::from(token), expires_in));
            }
            let secret = client_secret.expose_secret();
            return Err(token_error(status, json.as_ref(), error_code_paths, error_messages, secret));
        }
    }
}

/// `expires_in` as a number of seconds, or as text holding one (some servers quote it).
fn seconds(value: &Value) -> Option<Duration> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

const MAX_DESCRIPTION_CHARS: usize = 300;
const MAX_CODES: usize = 20;
const MAX_CODE_CHARS: usize = 100;

/// What the token endpoint's refusal means: its codes found with the spec's paths, the spec's explanation
/// of the first one it explains, and the server's own words, scrubbed of the secret and shortened.
pub(crate) fn token_error(
    status: u16,
    body: Option<&Value>,
    code_paths: &[JsonPath],
    messages: &[(String, String)],
    secret: &str,
) -> HttpError {
    let text = |value: &Value, limit: usize| match value {
        Value::String(s) => Some(shorten(&scrub(s, secret), limit)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let error = body.and_then(|b| b.get("error")).and_then(|e| text(e, MAX_CODE_CHARS));
    let mut codes: Vec<String> = Vec::new();
    if let Some(body) = body {
        for path in code_paths {
            for found in path.query(body) {
                // `$.error_codes` (the list itself) is read like `$.error_codes[*]`.
                let items = match found {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for code in items.into_iter().filter_map(|v| text(v, MAX_CODE_CHARS)) {
                    if codes.len() < MAX_CODES && !codes.contains(&code) {
                        codes.push(code);
                    }
                }
            }
        }
    }
    let explanation = codes
        .iter()
        .chain(error.as_ref())
        .find_map(|code| messages.iter().find(|(known, _)| known == code))
        .map(|(_, explanation)| explanation.clone());
    let description = body
        .and_then(|b| b.get("error_description"))
        .and_then(Value::as_str)
        .map(|d| shorten(&scrub(d, secret), MAX_DESCRIPTION_CHARS));
    HttpError::Auth { status, error, codes, explanation, description }
}

/// Removes the secret from text the server wrote, in case it echoes what it was sent.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() { text.to_string() } else { text.replace(secret, "[redacted]") }
}

fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Puts the credentials on one attempt. The caller has already checked that `url` is pinned; this is the
/// only place credentials are written, so it checks again rather than trust that.
pub(crate) fn attach(
    client: &HttpClient,
    token: Option<&Token>,
    url: &mut Url,
    headers: &mut HeaderMap,
) -> Result<(), HttpError> {
    client.pins.check(url)?;
    let sensitive = |text: String| {
        let mut value = HeaderValue::from_str(&text).map_err(|_| HttpError::Build {
            message: "a credential contains characters a header cannot carry".into(),
        })?;
        value.set_sensitive(true);
        Ok::<_, HttpError>(value)
    };
    match &client.auth {
        ResolvedAuth::None => {}
        ResolvedAuth::Bearer(secret) => {
            headers.insert(AUTHORIZATION, sensitive(format!("Bearer {}", secret.expose_secret()))?);
        }
        ResolvedAuth::OAuth2 { .. } => {
            let token = token.expect("an OAuth2 request carries a token");
            headers.insert(AUTHORIZATION, sensitive(format!("Bearer {}", token.value.expose_secret()))?);
        }
        ResolvedAuth::ApiKey { location: KeyLocation::Header, name, value } => {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::Build { message: format!("`{name}` is not a valid header name") })?;
            headers.insert(name, sensitive(value.expose_secret().to_string())?);
        }
        ResolvedAuth::ApiKey { location: KeyLocation::Query, name, value } => {
            url.query_pairs_mut().append_pair(name, value.expose_secret());
        }
        ResolvedAuth::Basic { username, password } => {
            headers.insert(AUTHORIZATION, sensitive(basic(username, password.expose_secret()))?);
        }
    }
    Ok(())
}

/// The `Authorization` value of HTTP basic authentication (RFC 7617).
pub(crate) fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{username}:{password}").as_bytes()))
}

/// Standard base64 with padding; twelve lines do not justify a crate.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A URL as the caller may see it: without user info, and without the API key when the key travels in the
/// query (a next link that echoes it must not carry it into logs; it is added again on the wire).
pub(crate) fn clean_url(auth: &ResolvedAuth, mut url: Url) -> Url {
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if let ResolvedAuth::ApiKey { location: KeyLocation::Query, name, .. } = auth
        && url.query_pairs().any(|(key, _)| key == name.as_str())
    {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| key != name.as_str())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(basic("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn token_lifetime_leaves_room_to_refresh() {
        let min = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(usable_for(min(60), min(5)), min(55));
        assert_eq!(usable_for(min(4), min(5)), min(2));
        assert_eq!(usable_for(min(5), min(5)), Duration::from_secs(150));
        assert_eq!(usable_for(Duration::ZERO, min(5)), Duration::ZERO);
    }

    #[test]
    fn token_errors_are_explained_scrubbed_and_short() {
        let body = serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("bad secret s3cr3t {}", "x".repeat(1000)),
            "error_codes": [7000215, 9002313],
        });
        let paths = vec![JsonPath::compile("$.error_codes").unwrap(), JsonPath::compile("$.error").unwrap()];
        let messages = vec![
            ("9002313".to_string(), "malformed request".to_string()),
            ("7000215".to_string(), "the client secret is wrong".to_string()),
        ];
        let HttpError::Auth { status, error, codes, explanation, description } =
            token_error(401, Some(&body), &paths, &messages, "s3cr3t")
        else {
            panic!("an auth error");
        };
        assert_eq!(status, 401);
        assert_eq!(error.as_deref(), Some("invalid_client"));
        assert_eq!(codes, ["7000215", "9002313", "invalid_client"]);
        assert_eq!(explanation.as_deref(), Some("the client secret is wrong"));
        let description = description.unwrap();
        assert!(description.starts_with("bad secret [redacted] "), "{description}");
        assert_eq!(description.chars().count(), MAX_DESCRIPTION_CHARS + 1);
    }

    #[test]
    fn clean_url_drops_user_info_and_the_query_key() {
        let auth = ResolvedAuth::ApiKey { location: KeyLocation::Query, name: "key".into(), value: "k".into() };
        let url = Url::parse("https://u:p@api.example.com/a?key=k&page=2").unwrap();
        assert_eq!(clean_url(&auth, url).as_str(), "https://api.example.com/a?page=2");
        let url = Url::parse("https://api.example.com/a?key=k").unwrap();
        assert_eq!(clean_url(&auth, url).as_str(), "https://api.example.com/a");
        let url = Url::parse("https://api.example.com/a?x=%2F+y").unwrap();
        assert_eq!(clean_url(&auth, url).as_str(), "https://api.example.com/a?x=%2F+y");
    }
}
