//! The sandbox server on its own: credentials, bad data, and the README's first command.

use engine::model::Spec;
use engine::sandbox::{Sandbox, SandboxData, SandboxOptions};
use engine::source::Source;

fn spec(name: &str) -> Spec {
    let path = crate::repo_path(&format!("specs/{name}.yaml"));
    engine::validate::validate(&Source::read(&path).expect("spec readable")).spec.expect("spec valid")
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn anchor() -> i64 {
    "2026-11-20T12:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[tokio::test]
async fn calls_without_the_spec_credentials_are_refused() {
    let okta = spec("okta");
    let data = SandboxData::load(&crate::repo_path("examples/sandbox/okta")).unwrap();
    let (sandbox, _) =
        Sandbox::start(&okta, &data, SandboxOptions { now_ms: anchor(), ..Default::default() }).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/users", sandbox.origin);
    let refused = client.get(&url).header("Authorization", "SSWS wrong").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(json(refused).await["errorCode"], "E0000011");
    let served = client.get(&url).header("Authorization", "SSWS sandbox-okta-api-token").send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert!(served.headers()["link"].to_str().unwrap().contains("rel=\"next\""));
    let log = sandbox.requests();
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), vec![401, 200]);
    assert!(log.iter().all(|r| !r.to_string().contains("sandbox-okta-api-token")), "no credential in the log");
}

#[tokio::test]
async fn the_token_endpoint_checks_the_client_secret() {
    let entra = spec("entra-id");
    let data = SandboxData::load(&crate::repo_path("examples/sandbox/entra-id")).unwrap();
    let (sandbox, _) =
        Sandbox::start(&entra, &data, SandboxOptions { now_ms: anchor(), ..Default::default() }).await.unwrap();
    let client = reqwest::Client::new();
    let token_url = format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/token", sandbox.origin);
    let form = |secret: &str| {
        format!(
            "grant_type=client_credentials&client_id=11111111-2222-3333-4444-555555555555&client_secret={secret}&scope=x"
        )
    };
    let post = |body: String| {
        client.post(&token_url).header("Content-Type", "application/x-www-form-urlencoded").body(body).send()
    };
    let refused = post(form("wrong")).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(json(refused).await["error_codes"][0], 7000215);
    let issued = json(post(form("sandbox-client-secret")).await.unwrap()).await;
    let token = issued["access_token"].as_str().unwrap();
    let users =
        json(client.get(format!("{}/v1.0/users", sandbox.origin)).bearer_auth(token).send().await.unwrap()).await;
    assert_eq!(users["value"].as_array().unwrap().len(), 100);
    assert!(users["@odata.nextLink"].as_str().unwrap().contains("skiptoken="));
}

#[tokio::test]
async fn data_for_a_resource_the_spec_lacks_is_an_error() {
    let dir = std::env::temp_dir().join(format!("engine-sandbox-unknown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let extends = format!("extends: {}\n", crate::repo_path("examples/sandbox/okta").display());
    std::fs::write(dir.join("sandbox.yaml"), extends).unwrap();
    std::fs::write(dir.join("groups.jsonl"), "{\"id\": 1}\n").unwrap();
    let data = SandboxData::load(&dir).unwrap();
    let error = Sandbox::start(&spec("okta"), &data, SandboxOptions::default()).await.unwrap_err();
    assert!(error.contains("`groups`, which is not a resource of the spec"), "{error}");
    let error = Sandbox::start(&spec("entra-id"), &data, SandboxOptions::default()).await.unwrap_err();
    assert!(error.contains("is for spec `okta`, not `entra-id`"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's first command: a full Entra sync with KRIs against the bundled sandbox, no credentials.
#[test]
fn the_readme_main_job_prints_the_seven_kris() {
    let store = std::env::temp_dir().join(format!("engine-readme-{}.db", std::process::id()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(crate::repo_path(""))
        .args(["run", "specs/entra-id.yaml", "--sandbox", "examples/sandbox/entra-id", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let kris: Vec<&str> = stdout.lines().filter(|l| l.starts_with("entra_") && l.contains(" kri ")).collect();
    assert_eq!(kris.len(), 7, "{stdout}");
    assert!(kris.iter().all(|l| l.contains(" ok")), "{stdout}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
    }
}

/// Every pagination kind is served the way the spec reads it: each resource's 23 records arrive whole.
/// The API key travels in the query, and the request log never shows it.
#[tokio::test]
async fn every_pagination_kind_is_served_as_the_spec_reads_it() {
    let dir = std::env::temp_dir().join(format!("engine-sandbox-paging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let resource = |name: &str, records: &str, paginate: &str| {
        format!(
            "  {name}:\n    request: {{ path: /{name} }}\n    records: \"{records}\"\n    paginate: {paginate}\n    emit:\n      \
             - entity: {{ type: item_{name}, id: $.id, attributes: {{ n: $.n }} }}\n"
        )
    };
    let spec_text = format!(
        "spec_version: 1\nid: paging\ntitle: Paging\nconfig:\n  base: {{ type: url, required: true }}\n  \
         token: {{ type: secret, required: true }}\nhttp:\n  base_url: \"{{config.base}}\"\n  auth:\n    \
         api_key: {{ in: query, name: key, value: \"{{config.token}}\" }}\nresources:\n{}{}{}{}{}",
        resource(
            "cursor",
            "$.items[*]",
            "{ cursor: { token_path: $.meta.next, param: cursor, has_more_path: $.meta.more } }"
        ),
        resource(
            "offset",
            "$.items[*]",
            "{ offset: { param: offset, limit_param: limit, limit: 7, total_path: $.total } }"
        ),
        resource(
            "pages",
            "$.data.items[*]",
            "{ page_number: { param: page, start: 1, size_param: per_page, size: 5, total_pages_path: $.pages } }"
        ),
        resource("links", "$[*]", "{ link_header: { rel: next } }"),
        resource("single", "$.items[*]", "none"),
    );
    let spec = engine::validate::validate(&Source::new("paging.yaml", spec_text.clone()))
        .spec
        .unwrap_or_else(|| panic!("test spec invalid:\n{spec_text}"));
    std::fs::write(
        dir.join("sandbox.yaml"),
        "config: { base: \"{origin}/api\" }\nsecrets: { token: t0ken }\npage_size: 6\n",
    )
    .unwrap();
    let lines: String = (0..23).map(|n| format!("{{\"id\": \"r{n:02}\", \"n\": {n}}}\n")).collect();
    for name in ["cursor", "offset", "pages", "links", "single"] {
        std::fs::write(dir.join(format!("{name}.jsonl")), &lines).unwrap();
    }
    let data = SandboxData::load(&dir).unwrap();
    let (sandbox, config) = Sandbox::start(&spec, &data, SandboxOptions::default()).await.unwrap();
    let mut store = engine::store::Store::open(dir.join("store.db")).unwrap();
    let report = engine::run::run(&spec, &config, &mut store, engine::run::RunOptions::default()).await.unwrap();
    let pages: Vec<(String, u64, u64)> =
        report.resources.iter().map(|r| (r.resource.clone(), r.records, r.pages)).collect();
    assert_eq!(
        pages,
        vec![
            ("cursor".to_string(), 23, 4),
            ("offset".to_string(), 23, 4),
            ("pages".to_string(), 23, 5),
            ("links".to_string(), 23, 4),
            ("single".to_string(), 23, 1),
        ],
        "{:#?}",
        sandbox.requests()
    );
    let log: Vec<String> = sandbox.requests().iter().map(ToString::to_string).collect();
    assert!(log.iter().all(|line| line.contains("key=[redacted]") && !line.contains("t0ken")), "{log:#?}");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// OAuth2 client credentials sent as basic auth reach the sandbox's token endpoint, and a run uses the
/// minted token; with a wrong secret the token is refused and the run fails.
#[tokio::test]
async fn client_credentials_in_basic_auth_are_checked() {
    let spec_text = "spec_version: 1\nid: basic\ntitle: Basic\nconfig:\n  base: { type: url, required: true }\n  \
                     id: { type: string, required: true }\n  secret: { type: secret, required: true }\nhttp:\n  \
                     base_url: \"{config.base}\"\n  auth:\n    oauth2_client_credentials:\n      \
                     token_url: \"{config.base}/token\"\n      client_id: \"{config.id}\"\n      \
                     client_secret: \"{config.secret}\"\n      credentials_in: basic_auth\nresources:\n  things:\n    \
                     request: { path: /things }\n    records: \"$[*]\"\n    emit:\n      - entity: { type: thing, id: $.id }\n";
    let spec = engine::validate::validate(&Source::new("basic.yaml", spec_text.to_string())).spec.expect("valid");
    let dir = std::env::temp_dir().join(format!("engine-sandbox-basic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("things.jsonl"), "{\"id\": \"a\"}\n{\"id\": \"b\"}\n").unwrap();
    for (secret, records, status) in [("s3cret:%", 2, "ok"), ("wrong", 0, "failed")] {
        // The server's expected secret is the sandbox's; the run's config is checked against it.
        std::fs::write(
            dir.join("sandbox.yaml"),
            "config: { base: \"{origin}\", id: app }\nsecrets: { secret: \"s3cret:%\" }\n",
        )
        .unwrap();
        let data = SandboxData::load(&dir).unwrap();
        let (sandbox, _) = Sandbox::start(&spec, &data, SandboxOptions::default()).await.unwrap();
        let values = serde_json::json!({"base": sandbox.origin, "id": "app"}).as_object().unwrap().clone();
        let secrets = [("secret".to_string(), secrecy::SecretString::from(secret))].into_iter().collect();
        let config = engine::config::from_values(&spec, "test", values, secrets).unwrap();
        let mut store = engine::store::Store::open(dir.join(format!("{secret}.db"))).unwrap();
        let report = engine::run::run(&spec, &config, &mut store, engine::run::RunOptions::default()).await.unwrap();
        let things = report.resource("things").unwrap();
        assert_eq!((things.records, report.status.as_str()), (records, status), "{report:#?}");
        assert_eq!(sandbox.requests()[0].status, if records > 0 { 200 } else { 401 });
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `engine export` after a sandbox sync: one line per stored row, key fields and attributes, as JSON lines
/// and as CSV; on Linux, a pipe it writes into is widened to 1 MiB.
#[test]
fn export_prints_every_stored_row() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = crate::TempDir::new("export");
    let store = dir.store();
    let engine = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_engine"));
        command.current_dir(crate::repo_path(""));
        command
    };
    let run = engine()
        .args(["run", "specs/entra-id.yaml", "--sandbox", "examples/sandbox/entra-id", "--format", "json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let written = |resource: &str| summary["resources"][resource]["written"].as_u64().unwrap() as usize;

    let export = |args: &[&str]| {
        let output = engine().arg("export").arg("--store").arg(&store).args(args).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let signins = export(&["--shape", "event", "--type", "entra_signin_event"]);
    assert_eq!(signins.lines().count(), written("signins"));
    for line in signins.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["name"], "entra_signin_event");
        assert!(row["key"].as_str().is_some_and(|k| !k.is_empty()), "{line}");
        assert!(row["start"].as_i64().is_some(), "{line}");
        assert!(row["attributes"]["userId"].is_string(), "{line}");
    }
    let users = export(&["--shape", "entity", "--type", "entra_user", "--format", "csv"]);
    let mut lines = users.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("type,id,updated_at,"), "{header}");
    assert!(header.contains("userPrincipalName"), "{header}");
    assert_eq!(lines.count(), written("users"));

    // The pipe keeps its size while this end is open, whether or not the export has finished.
    let mut child = engine()
        .args(["export", "--shape", "event", "--type", "entra_signin_event", "--store"])
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    #[cfg(target_os = "linux")]
    {
        let limit: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        if limit >= 1 << 20 {
            assert_eq!(rustix::pipe::fcntl_getpipe_size(&stdout).unwrap(), 1 << 20);
        }
    }
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // A damaged row (beyond the first chunk of output): the rows before it are printed, then the export
    // fails naming the column.
    let lines: Vec<&str> = signins.lines().collect();
    let damaged: serde_json::Value = serde_json::from_str(lines[600]).unwrap();
    let raw = rusqlite::Connection::open(&store).unwrap();
    let changed = raw
        .execute("UPDATE events SET attributes = '{\"a\":' WHERE key = ?1", [damaged["key"].as_str().unwrap()])
        .unwrap();
    assert_eq!(changed, 1);
    drop(raw);
    let output =
        engine().args(["export", "--shape", "event", "--type", "entra_signin_event", "--store"]).arg(&store).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("events.attributes"));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.lines().collect::<Vec<_>>(), lines[..600]);
}
