//! Sync benchmark: a synthetic Entra tenant written by `examples/generate_tenant.rs` (users and sign-ins,
//! pages of 500 users and 1,000 sign-ins), served by the sandbox on 127.0.0.1, synced by the `engine`
//! binary with `specs/entra-id.yaml` into a fresh SQLite store. Prints records per second and the engine
//! process's peak resident memory (the sandbox runs in this process, so its memory is not counted).
//!
//! ```sh
//! cargo bench --bench sync                                   # 100,000 users and 200,000 sign-ins
//! BENCH_USERS=1000000 BENCH_SIGNINS=2000000 cargo bench --bench sync
//! ```
//!
//! The tenant is written once per size into the temporary directory and reused.

#[allow(dead_code)]
#[path = "../examples/generate_tenant.rs"]
mod generate_tenant;

use engine::sandbox::{Sandbox, SandboxData, SandboxOptions};
use engine::source::Source;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn main() {
    let users = env_count("BENCH_USERS", 100_000);
    let signins = env_count("BENCH_SIGNINS", 200_000);
    let tenant = std::env::temp_dir().join(format!("engine-bench-tenant-{users}-{signins}"));
    if !tenant.join("sandbox.yaml").is_file() {
        let started = Instant::now();
        let args = generate_tenant::Args {
            users,
            signins,
            audits: Some(100),
            anchor_ms: generate_tenant::ANCHOR_MS,
            out: tenant.clone(),
            extends: Some(repo("examples/sandbox/entra-id")),
        };
        generate_tenant::write_tenant(&args).expect("tenant written");
        // Graph's page sizes: the client asks for 500 users ($top) and gets 1,000 sign-ins.
        let mut yaml = std::fs::read_to_string(tenant.join("sandbox.yaml")).expect("sandbox.yaml");
        yaml.push_str("page_size: 1000\nresources:\n  signins:\n    page_size: 1000\n");
        std::fs::write(tenant.join("sandbox.yaml"), yaml).expect("sandbox.yaml");
        eprintln!("wrote the tenant to {} in {:.1} s", tenant.display(), started.elapsed().as_secs_f64());
    }
    let spec_path = repo("specs/entra-id.yaml");
    let spec = engine::validate::validate(&Source::read(&spec_path).expect("spec")).spec.expect("valid spec");
    let data = SandboxData::load(&tenant).expect("sandbox data");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // A day after the anchor, with a 30-day backfill: every generated sign-in is in the window.
    let now = "2026-11-21T12:00:00Z";
    let now_ms = generate_tenant::ANCHOR_MS + 86_400_000;
    let options = SandboxOptions { now_ms, ..SandboxOptions::default() };
    let (sandbox, config) = runtime.block_on(Sandbox::start(&spec, &data, options)).expect("sandbox");
    let scratch = std::env::temp_dir().join(format!("engine-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let mut text =
        "instance: bench\nconfig:\n  client_secret: { env: BENCH_CLIENT_SECRET }\n  signins_lookback_days: 30\n"
            .to_string();
    for (name, value) in config.values() {
        if name != "resources" && name != "signins_lookback_days" {
            text.push_str(&format!("  {name}: {value}\n"));
        }
    }
    std::fs::write(scratch.join("config.yaml"), text).expect("config");
    let secret = data.secrets.get("client_secret").expect("the sandbox's client secret").clone();
    let started = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["run", spec_path.to_str().unwrap(), "--resources", "users,signins", "--format", "json", "--now", now])
        .arg("--config")
        .arg(scratch.join("config.yaml"))
        .arg("--store")
        .arg(scratch.join("store.db"))
        .env("BENCH_CLIENT_SECRET", secret)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("engine runs");
    // The high-water mark only grows; the last reading before the process ends is its peak.
    let status_path = format!("/proc/{}/status", child.id());
    let watcher = std::thread::spawn(move || {
        let mut peak_kb = 0;
        while let Ok(status) = std::fs::read_to_string(&status_path) {
            let hwm = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
            peak_kb = hwm.unwrap_or(peak_kb).max(peak_kb);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak_kb
    });
    let output = child.wait_with_output().expect("engine ends");
    let elapsed = started.elapsed().as_secs_f64();
    let peak_mb = watcher.join().unwrap_or(0) / 1024;
    assert!(output.status.success(), "engine run failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let records: u64 =
        ["users", "signins"].iter().map(|r| report["resources"][r]["records"].as_u64().unwrap_or(0)).sum();
    println!(
        "synced {records} records ({users} users, {} sign-ins) in {elapsed:.2} s: {:.0} records/s, status {}, \
         engine peak RSS {} MB",
        report["resources"]["signins"]["records"],
        records as f64 / elapsed,
        report["status"].as_str().unwrap_or("?"),
        peak_mb
    );
    drop(sandbox);
    let _ = std::fs::remove_dir_all(&scratch);
}
