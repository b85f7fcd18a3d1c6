//! Embedding the engine in a host application: load a spec, give config and secrets, open a store, run
//! with cancellation, and read the report and the stored rows.
//!
//! The API here is a tiny local stand-in for a real service (on 127.0.0.1), so the example runs anywhere:
//!
//! ```sh
//! cargo run --example embedded_runner
//! ```

use engine::config;
use engine::model::Shape;
use engine::run::{RunOptions, run};
use engine::source::Source;
use engine::store::Store;
use engine::validate::validate;
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The spec: any connector spec; `examples/acme.yaml` is the one from the README.
    let source = Source::read(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.yaml")))
        .map_err(|d| d.message)?;
    let validated = validate(&source);
    let spec = validated.spec.ok_or("the spec has errors; run `engine validate examples/acme.yaml`")?;

    // 2. A stand-in for the API the spec describes.
    let base = serve_stand_in().await?;

    // 3. Config values the host already holds; secrets are passed apart and never stored or printed.
    let mut values = serde_json::Map::new();
    values.insert("api_base_url".into(), json!(base));
    let mut secrets = BTreeMap::new();
    secrets.insert("api_token".to_string(), SecretString::from("example-token"));
    let config = config::from_values(&spec, "example", values, secrets).map_err(|problems| problems.join("; "))?;

    // 4. A store (a SQLite file) and a run that the host can cancel at any time.
    let path = std::env::temp_dir().join(format!("engine-embedded-example-{}.db", std::process::id()));
    let mut store = Store::open(&path)?;
    let cancel = CancellationToken::new();
    let options =
        RunOptions { now_ms: jiff::Timestamp::now().as_millisecond(), cancel: cancel.clone(), ..RunOptions::default() };
    let report = run(&spec, &config, &mut store, options).await?;

    // 5. The report, and the rows as stored.
    println!("run {} ended {}", report.run_id, report.status.as_str());
    for resource in &report.resources {
        println!(
            "  {}: {} pages, {} records, {} written",
            resource.resource, resource.pages, resource.records, resource.written
        );
    }
    store.for_each_row("example", Shape::Entity, "acme_user", |row| {
        let id = row.field("id").unwrap_or_default();
        println!("  {} {}", id.as_str().unwrap_or_default(), serde_json::Value::Object(row.attributes));
        Ok::<(), engine::store::StoreError>(())
    })?;
    drop(store);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Serves two pages of users on 127.0.0.1 the way the spec expects (`$.items[*]`, `$.links.next`).
async fn serve_stand_in() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let next = format!("{base}/users?limit=200&page=2");
    let app = axum::Router::new().route(
        "/users",
        axum::routing::get(move |query: axum::extract::Query<BTreeMap<String, String>>| {
            let next = next.clone();
            async move {
                if query.get("page").map(String::as_str) == Some("2") {
                    axum::Json(json!({"items": [{"id": "u3", "email": "Cy@Acme.example", "active": false, "last_login": null}]}))
                } else {
                    axum::Json(json!({
                        "items": [
                            {"id": "u1", "email": "Ada@Acme.example", "active": true, "last_login": "2025-06-01T08:00:00Z"},
                            {"id": "u2", "email": "bo@acme.example", "active": true, "last_login": "2024-01-01T08:00:00Z"}
                        ],
                        "links": {"next": next}
                    }))
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}
