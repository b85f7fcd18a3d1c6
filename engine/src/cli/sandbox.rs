//! `engine sandbox`, and starting a sandbox for `engine run --sandbox`.

use super::validate::load_valid;
use crate::config::RunConfig;
use crate::model::Spec;
use crate::sandbox::{Sandbox, SandboxData, SandboxOptions};
use std::path::Path;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Loads the spec and the sandbox directory and starts serving; prints what went wrong otherwise.
pub async fn start(
    spec_path: &Path,
    dir: &Path,
    now_ms: i64,
    shift_to_now: bool,
) -> Result<(Spec, Sandbox, RunConfig), ExitCode> {
    start_with(spec_path, dir, SandboxOptions { port: 0, now_ms, shift_to_now, on_request: None }).await
}

async fn start_with(
    spec_path: &Path,
    dir: &Path,
    options: SandboxOptions,
) -> Result<(Spec, Sandbox, RunConfig), ExitCode> {
    let (_, spec) = load_valid(spec_path)?;
    let data = SandboxData::load(dir).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })?;
    let (sandbox, config) = Sandbox::start(&spec, &data, options).await.map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })?;
    Ok((spec, sandbox, config))
}

pub fn serve(spec_path: &Path, dir: &Path, port: u16, now: Option<&str>) -> ExitCode {
    let pinned = match now.map(super::run::parse_now).transpose() {
        Ok(pinned) => pinned,
        Err(message) => {
            eprintln!("--now: {message}");
            return ExitCode::from(1);
        }
    };
    let runtime = match super::run::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let options = SandboxOptions {
            port,
            now_ms: pinned.unwrap_or_else(|| jiff::Timestamp::now().as_millisecond()),
            shift_to_now: pinned.is_none(),
            on_request: Some(std::sync::Arc::new(|request| eprintln!("{request}"))),
        };
        let (spec, sandbox, config) = match start_with(spec_path, dir, options).await {
            Ok(started) => started,
            Err(code) => return code,
        };
        println!("serving the {} sandbox from {} on {}", spec.id, dir.display(), sandbox.origin);
        println!("config values a run against it uses (secrets are the sandbox's own, in its sandbox.yaml):");
        println!("instance: {}", config.instance);
        println!("config:");
        for (name, value) in config.values() {
            println!("  {name}: {value}");
        }
        println!("press Ctrl-C to stop");
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        });
        sandbox.serve_until(cancel).await;
        ExitCode::SUCCESS
    })
}
