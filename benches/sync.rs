//! Sync benchmark: a synthetic tenant (users and sign-ins, pages of 999 and 1,000) served on 127.0.0.1,
//! synced with `specs/entra-id.yaml` into a fresh SQLite store. Prints records per second and the peak
//! resident memory of the process (the in-process server included; it builds each page on the fly).
//!
//! ```sh
//! cargo bench --bench sync                                   # 100,000 users and 200,000 sign-ins
//! BENCH_USERS=1000000 BENCH_SIGNINS=2000000 cargo bench --bench sync
//! ```

use engine::config;
use engine::run::{RunOptions, run};
use engine::source::Source;
use engine::store::Store;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

const NOW: &str = "2025-06-30T23:59:59Z";

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn user(i: usize) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{i:012}"),
        "displayName": format!("User {i}"),
        "userPrincipalName": format!("user{i}@contoso.example"),
        "mail": if i.is_multiple_of(7) { Value::Null } else { json!(format!("user{i}@contoso.example")) },
        "accountEnabled": !i.is_multiple_of(10),
        "userType": if i.is_multiple_of(20) { "Guest" } else { "Member" },
        "createdDateTime": "2021-03-04T05:06:07Z",
        "signInActivity": { "lastSignInDateTime": if i.is_multiple_of(5) { Value::Null } else { json!("2025-06-20T10:11:12.1234567Z") } }
    })
}

fn signin(i: usize, users: usize) -> Value {
    let seconds = (i * 17) % (20 * 86_400);
    json!({
        "id": format!("s-{i:010}"),
        "createdDateTime": format!("2025-06-{:02}T{:02}:{:02}:{:02}.5Z", 10 + seconds / 86_400, (seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60),
        "userId": format!("00000000-0000-4000-8000-{:012}", i % users.max(1)),
        "userPrincipalName": format!("user{}@contoso.example", i % users.max(1)),
        "appId": "app-1", "appDisplayName": "Portal", "ipAddress": "10.1.2.3", "clientAppUsed": "Browser",
        "conditionalAccessStatus": "success", "riskLevelAggregated": "none", "riskState": "none",
        "status": { "errorCode": if i.is_multiple_of(7) { 50126 } else { 0 }, "failureReason": null, "additionalDetails": null },
        "location": { "city": "Oslo", "state": "Oslo", "countryOrRegion": "NO" }
    })
}

fn main() {
    let users = env_count("BENCH_USERS", 100_000);
    let signins = env_count("BENCH_SIGNINS", 200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server_base = base.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let base = server_base.clone();
            async move {
                let path = uri.path().to_string();
                let query: BTreeMap<String, String> =
                    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
                let page: usize = query.get("$skiptoken").and_then(|t| t.parse().ok()).unwrap_or(0);
                let body = if path.ends_with("/token") {
                    json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "bench-token"})
                } else if path == "/v1.0/users" || path == "/v1.0/auditLogs/signIns" {
                    let (size, total) = if path.ends_with("users") { (999, users) } else { (1000, signins) };
                    let start = page * size;
                    let items: Vec<Value> = (start..(start + size).min(total))
                        .map(|i| if path.ends_with("users") { user(i) } else { signin(i, users) })
                        .collect();
                    let mut body = json!({"@odata.context": "ctx", "value": items});
                    if start + size < total {
                        body["@odata.nextLink"] = json!(format!("{base}{path}?$skiptoken={}", page + 1));
                    }
                    body
                } else {
                    json!({"value": []})
                };
                axum::Json(body)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

        let spec_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/entra-id.yaml");
        let spec = engine::validate::validate(&Source::read(&spec_path).expect("spec")).spec.expect("valid spec");
        let text = format!(
            "config:\n  tenant_id: contoso.onmicrosoft.com\n  client_id: 11111111-2222-3333-4444-555555555555\n  \
             client_secret: {{ env: SECRET }}\n  graph_base_url: {base}/v1.0\n  login_base_url: {base}\n  \
             resources: [users, signins]\n  signins_lookback_days: 30\n"
        );
        let config = config::load(&Source::new("bench.yaml", text), &spec, &|_| Some("bench".into())).expect("config");
        let path = std::env::temp_dir().join(format!("engine-bench-{}.db", std::process::id()));
        let mut store = Store::open(&path).expect("store");
        let now_ms = NOW.parse::<jiff::Timestamp>().expect("time").as_millisecond();
        let started = Instant::now();
        let report = run(&spec, &config, &mut store, RunOptions { now_ms, full: true, ..RunOptions::default() }).await.expect("run");
        let elapsed = started.elapsed().as_secs_f64();
        let records: u64 = report.resources.iter().map(|r| r.records).sum();
        println!(
            "synced {records} records ({users} users, {signins} sign-ins) in {elapsed:.2} s: {:.0} records/s, status {}, peak RSS {} MB",
            records as f64 / elapsed,
            report.status.as_str(),
            peak_rss_mb().map_or("?".into(), |m| m.to_string())
        );
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    });
}

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb / 1024)
}
