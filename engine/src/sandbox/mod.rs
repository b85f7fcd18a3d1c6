//! The sandbox: a local API server that plays a vendor's API from recorded data, so a spec can be run and
//! tested without credentials or network.
//!
//! Everything vendor-shaped comes from two places: the spec (paths, where records sit in a page, the
//! pagination kind, the incremental filter, the auth kind) and the sandbox directory (records as JSON
//! Lines, made-up credentials, canned error replies, injected faults). See [`data`] for the directory and
//! `routes` for what is read from the spec.
//!
//! The server listens on 127.0.0.1 only. It pages with opaque tokens, honours the spec's incremental
//! filter, hides incremental records later than its clock, checks that every API call carries the
//! credential the spec sends, and logs every request (never a header or a body).

pub mod data;
mod routes;
mod server;

pub use data::{DataError, RunPlan, SandboxData, sandbox_schema_json};
pub use server::{LoggedRequest, RequestCallback};

use crate::config::RunConfig;
use crate::model::Spec;
use crate::run::Credential;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

/// How to start a sandbox.
#[derive(Clone, Default)]
pub struct SandboxOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The sandbox's clock (ms): incremental records later than this are not served yet.
    pub now_ms: i64,
    /// Move every time in the records by the whole days between the anchor and `now_ms`, so recorded data
    /// looks recent.
    pub shift_to_now: bool,
    /// Called with every request as it is answered.
    pub on_request: Option<RequestCallback>,
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    log: Arc<Mutex<Vec<LoggedRequest>>>,
    stop: CancellationToken,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds 127.0.0.1 and starts serving `data` as `spec`'s API. Returns the server and the config a run
    /// against it uses: the sandbox's values with `{origin}` filled in, and its made-up secrets.
    pub async fn start(
        spec: &Spec,
        data: &SandboxData,
        options: SandboxOptions,
    ) -> Result<(Sandbox, RunConfig), String> {
        if let Some(id) = &data.spec
            && id != &spec.id
        {
            return Err(format!("the sandbox in {} is for spec `{id}`, not `{}`", data.dir.display(), spec.id));
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let origin = format!("http://{address}");
        let config = sandbox_config(spec, data, &origin)?;
        let base = crate::run::base_url(spec, &config, options.now_ms)?;
        let expected = match crate::run::credential(spec, &config, options.now_ms)? {
            Credential::None => server::Expected::None,
            Credential::Header { name, value } => server::Expected::Header { name, value },
            Credential::Query { name, value } => server::Expected::Query { name, value },
            Credential::ClientCredentials { token_url, client_id, client_secret, basic } => {
                // Basic credentials are form-encoded before they are joined (RFC 6749 §2.3.1).
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let basic = basic.then(|| {
                    SecretString::from(crate::http::basic(&encode(&client_id), &encode(client_secret.expose_secret())))
                });
                server::Expected::ClientCredentials {
                    token_path: token_url.path().to_string(),
                    client_id,
                    client_secret,
                    basic,
                }
            }
        };
        let shift_ms = match (options.shift_to_now, data.anchor_ms) {
            // Whole days: runs on the same day see the same records, so a second run is incremental and
            // rewrites nothing; records recorded after the anchor appear as the day goes on.
            (true, Some(anchor)) => (options.now_ms - anchor).div_euclid(DAY_MS) * DAY_MS,
            _ => 0,
        };
        let routes = routes::routes(spec, base.path())?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(server::State::new(
            origin.clone(),
            expected,
            routes,
            data,
            options.now_ms,
            shift_ms,
            log.clone(),
            options.on_request.clone(),
        )?);
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: bytes::Bytes| { server::handle(state.clone(), method, uri, headers, body) },
        );
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let served = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        Ok((Sandbox { origin, log, stop, served: Some(served) }, config))
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops serving and waits until the server is down.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }

    /// Serves until `cancel` fires.
    pub async fn serve_until(self, cancel: CancellationToken) {
        cancel.cancelled().await;
        self.stop().await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The sandbox's config values and made-up secrets, checked against the spec like any config.
fn sandbox_config(spec: &Spec, data: &SandboxData, origin: &str) -> Result<RunConfig, String> {
    let mut values = data.config.clone();
    for value in values.values_mut() {
        fill_origin(value, origin);
    }
    let secrets = data.secrets.iter().map(|(name, value)| (name.clone(), SecretString::from(value.clone()))).collect();
    crate::config::from_values(spec, &data.instance, values, secrets)
        .map_err(|errors| format!("the sandbox config in {} is not valid: {}", data.dir.display(), errors.join("; ")))
}

fn fill_origin(value: &mut Value, origin: &str) {
    match value {
        Value::String(text) => *text = text.replace("{origin}", origin),
        Value::Array(items) => items.iter_mut().for_each(|v| fill_origin(v, origin)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_origin(v, origin)),
        _ => {}
    }
}

/// Shows where the sandbox listens; the server state stays out of debug output.
impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("origin", &self.origin).finish_non_exhaustive()
    }
}
