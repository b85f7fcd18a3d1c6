//! `engine run`, `engine kri`, `engine check` and `engine export`.

use super::validate::load_valid;
use crate::config::{self, RunConfig};
use crate::diag::render_text;
use crate::kri::{KriOptions, KriResult};
use crate::model::{Shape, Spec};
use crate::run::{Observer, RunOptions, RunReport};
use crate::source::Source;
use crate::store::{Fields, KriStatus, ResourceReport, RunStatus, Scan, Store};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct RunArgs {
    pub spec: PathBuf,
    /// Exactly one of `config` and `sandbox`.
    pub config: Option<PathBuf>,
    pub sandbox: Option<PathBuf>,
    pub store: PathBuf,
    pub instance: Option<String>,
    pub resources: Option<Vec<String>>,
    pub full: bool,
    pub now: Option<String>,
    pub json: bool,
    pub every: Option<String>,
    pub scheduled: bool,
}

pub fn run(args: RunArgs) -> ExitCode {
    let pinned_now = match args.now.as_deref().map(parse_now).transpose() {
        Ok(now) => now,
        Err(message) => {
            eprintln!("--now: {message}");
            return ExitCode::from(1);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    // The sandbox, when there is one, serves until this function returns.
    let (spec, mut config, _sandbox) = match (&args.config, &args.sandbox) {
        (Some(config), _) => match load_spec_and_config(&args.spec, config) {
            Ok((spec, config)) => (spec, config, None),
            Err(code) => return code,
        },
        (None, Some(dir)) => {
            let now_ms = pinned_now.unwrap_or_else(wall_clock_ms);
            match runtime.block_on(super::sandbox::start(&args.spec, dir, now_ms, pinned_now.is_none())) {
                Ok((spec, sandbox, config)) => (spec, config, Some(sandbox)),
                Err(code) => return code,
            }
        }
        (None, None) => {
            eprintln!("give --config CFG, or --sandbox DIR to run against a sandbox");
            return ExitCode::from(1);
        }
    };
    if let Some(instance) = &args.instance {
        if let Err(why) = config::check_instance(instance) {
            eprintln!("--instance: {why}");
            return ExitCode::from(1);
        }
        config.instance = instance.clone();
    }
    let period = match (&args.every, args.scheduled) {
        (Some(every), _) => match crate::validate::parse_duration(every) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                eprintln!("--every must be longer than zero");
                return ExitCode::from(1);
            }
            Err(message) => {
                eprintln!("--every: {message}");
                return ExitCode::from(1);
            }
        },
        (None, true) => match spec.schedule {
            Some(schedule) => Some(schedule.period()),
            None => {
                eprintln!("{} has no default schedule; use --every DURATION", spec.id);
                return ExitCode::from(1);
            }
        },
        (None, false) => None,
    };
    let mut store = match Store::open(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the page in flight is committed (Ctrl-C again to quit at once)");
            stop.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let mut last;
    loop {
        let now_ms = pinned_now.unwrap_or_else(wall_clock_ms);
        let progress = Progress::new(args.json);
        let options = RunOptions {
            now_ms,
            full: args.full,
            only: args.resources.clone(),
            cancel: cancel.clone(),
            observer: Some(progress.clone()),
        };
        let started = std::time::Instant::now();
        let result = runtime.block_on(crate::run::run(&spec, &config, &mut store, options));
        progress.clear();
        last = match result {
            Ok(report) => {
                print_report(&report, started.elapsed(), args.json);
                exit_code(report.status, cancel.is_cancelled())
            }
            Err(e) => {
                eprintln!("run failed: {e}");
                ExitCode::from(2)
            }
        };
        let Some(period) = period else { break };
        if cancel.is_cancelled() {
            break;
        }
        if !args.json {
            eprintln!("next run in {}", humanize(period));
        }
        let stopped = runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(period) => false,
                _ = cancel.cancelled() => true,
            }
        });
        if stopped {
            break;
        }
    }
    last
}

fn exit_code(status: RunStatus, cancelled: bool) -> ExitCode {
    match status {
        RunStatus::Ok => ExitCode::SUCCESS,
        RunStatus::Degraded => ExitCode::from(3),
        // A stop the operator asked for is a clean exit; everything read so far is committed.
        RunStatus::Interrupted if cancelled => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    }
}

/// Loads and checks the spec and the config file; prints diagnostics and returns exit code 1 on problems.
pub fn load_spec_and_config(spec_path: &Path, config_path: &Path) -> Result<(Spec, RunConfig), ExitCode> {
    load_spec_and_config_with(spec_path, config_path, None, &config::process_env)
}

fn load_spec_and_config_with(
    spec_path: &Path,
    config_path: &Path,
    instance: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Spec, RunConfig), ExitCode> {
    let (_, spec) = load_valid(spec_path)?;
    let source = Source::read(config_path).map_err(|d| {
        eprint!("{}", render_text(&[d], &config_path.display().to_string(), "", super::RENDER_WIDTH));
        ExitCode::from(1)
    })?;
    let mut config = config::load(&source, &spec, env).map_err(|diagnostics| {
        // The text may hold a secret written inline by mistake; the rendering shows it masked.
        let shown = config::mask_inline_secrets(&source, &spec);
        eprint!("{}", render_text(&diagnostics, &shown.name, &shown.text, super::RENDER_WIDTH));
        eprintln!("{} is not a valid config for {}", source.name, spec.id);
        ExitCode::from(1)
    })?;
    if let Some(instance) = instance {
        if let Err(why) = config::check_instance(instance) {
            eprintln!("--instance: {why}");
            return Err(ExitCode::from(1));
        }
        config.instance = instance.to_string();
    }
    Ok((spec, config))
}

/// The async runtime every command that talks HTTP uses: two workers, as the target machines have cores.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| {
        eprintln!("cannot start the runtime: {e}");
        ExitCode::from(2)
    })
}

pub(super) fn parse_now(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2025-06-30T12:00:00Z ({e})"))
}

fn wall_clock_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn print_report(report: &RunReport, elapsed: Duration, json: bool) {
    if json {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            let resources: serde_json::Map<String, serde_json::Value> = report
                .resources
                .iter()
                .map(|r| (r.resource.clone(), serde_json::to_value(r).unwrap_or_default()))
                .collect();
            object.insert("resources".into(), resources.into());
            object.insert("duration_ms".into(), (elapsed.as_millis() as u64).into());
        }
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return;
    }
    println!("run {} of {} for instance {}: {}", report.run_id, report.spec, report.instance, report.status.as_str());
    let width = report.resources.iter().map(|r| r.resource.len()).max().unwrap_or(8).max(8);
    println!("{:<width$}  {:>6}  {:>9}  {:>9}  {:>8}  status", "resource", "pages", "records", "written", "skipped");
    for r in &report.resources {
        println!(
            "{:<width$}  {:>6}  {:>9}  {:>9}  {:>8}  {}",
            r.resource,
            r.pages,
            r.records,
            r.written,
            r.skipped,
            r.status.as_str()
        );
    }
    let warnings: Vec<String> = report
        .resources
        .iter()
        .flat_map(|r| r.warnings.iter().map(move |w| format!("{}: {w}", r.resource)))
        .chain(report.warnings.iter().cloned())
        .collect();
    if !warnings.is_empty() {
        println!("warnings:");
        for warning in warnings {
            println!("  - {warning}");
        }
    }
    if !report.kris.is_empty() {
        print_kris(&report.kris);
    }
    println!(
        "{} HTTP requests, {} token requests, {:.1}s",
        report.http_requests,
        report.token_requests,
        elapsed.as_secs_f64()
    );
}

/// KRIs and metrics as a table: one line each, the reason (when there is one) at the end of the line.
fn print_kris(kris: &[KriResult]) {
    let value = |k: &KriResult| match (k.value, k.unit) {
        (None, _) => "-".to_string(),
        (Some(v), Some("percent")) => format!("{v}%"),
        (Some(v), _) => v.to_string(),
    };
    let width = kris.iter().map(|k| k.slug.len()).max().unwrap_or(9).max(9);
    let value_width = kris.iter().map(|k| value(k).len()).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:<6}  {:>value_width$}  {:<5}  {:<14}  {:>8}  reason",
        "indicator", "kind", "value", "band", "status", "evidence"
    );
    for k in kris {
        let kind = match k.kind {
            crate::kri::IndicatorKind::Kri => "kri",
            crate::kri::IndicatorKind::Metric => "metric",
        };
        let line = format!(
            "{:<width$}  {:<6}  {:>value_width$}  {:<5}  {:<14}  {:>8}  {}",
            k.slug,
            kind,
            value(k),
            k.band.map_or("-", |b| b.as_str()),
            k.status.as_str(),
            k.evidence_count,
            k.reason.as_deref().unwrap_or("")
        );
        println!("{}", line.trim_end());
    }
}

pub struct KriArgs {
    pub spec: PathBuf,
    pub store: PathBuf,
    pub config: Option<PathBuf>,
    pub instance: Option<String>,
    pub now: Option<String>,
    pub json: bool,
}

/// `engine kri`: recomputes and stores every selected indicator from the store alone. Exit 0 when all
/// are ok, 3 when one is degraded or not applicable, 2 when one could not be computed.
pub fn kri(args: KriArgs) -> ExitCode {
    let (spec, config) = match &args.config {
        Some(path) => {
            // No request is made, so secrets are not needed: an unset variable reads as a placeholder
            // instead of stopping the recomputation.
            let env = |name: &str| config::process_env(name).or_else(|| Some("(not needed by engine kri)".into()));
            match load_spec_and_config_with(&args.spec, path, args.instance.as_deref(), &env) {
                Ok((spec, config)) => (spec, Some(config)),
                Err(code) => return code,
            }
        }
        None => match load_valid(&args.spec) {
            Ok((_, spec)) => (spec, None),
            Err(code) => return code,
        },
    };
    let now_ms = match args.now.as_deref().map(parse_now).transpose() {
        Ok(now) => now.unwrap_or_else(wall_clock_ms),
        Err(message) => {
            eprintln!("--now: {message}");
            return ExitCode::from(1);
        }
    };
    // Opening creates a missing file, which would only hide a mistyped path behind empty results.
    if !args.store.exists() {
        eprintln!("there is no store at {}", args.store.display());
        return ExitCode::from(2);
    }
    let mut store = match Store::open(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let instance = match (&args.instance, &config) {
        (Some(instance), _) => instance.clone(),
        (None, Some(config)) => config.instance.clone(),
        (None, None) => match only_instance(&store, &args.store) {
            Ok(instance) => instance,
            Err(code) => return code,
        },
    };
    if let Err(why) = config::check_instance(&instance) {
        eprintln!("--instance: {why}");
        return ExitCode::from(1);
    }
    let last_run = match store.last_run(&instance) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut options = KriOptions::new(&instance, now_ms);
    if let Some(config) = &config {
        options = options.with_config(config);
    }
    let last = last_run.as_ref().map(crate::kri::LastRun::from_record);
    let kris = match crate::kri::evaluate_with(&spec, &mut store, &options, last.as_ref()) {
        Ok(kris) => kris,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let at = crate::expr::format_iso_ms(now_ms).unwrap_or_else(|_| now_ms.to_string());
    let run_id = last_run.as_ref().map(|r| r.run_id.as_str());
    if args.json {
        #[derive(serde::Serialize)]
        struct Output<'a> {
            spec: &'a str,
            instance: &'a str,
            at: &'a str,
            run_id: Option<&'a str>,
            #[serde(serialize_with = "crate::kri::serialize_by_slug")]
            kris: &'a [KriResult],
        }
        let output = Output { spec: &spec.id, instance: &instance, at: &at, run_id, kris: &kris };
        println!("{}", serde_json::to_string_pretty(&output).unwrap_or_default());
    } else {
        match run_id {
            Some(run_id) => println!("KRIs of {} for instance {instance} at {at}, from run {run_id}", spec.id),
            None => println!("KRIs of {} for instance {instance} at {at} (no run recorded)", spec.id),
        }
        print_kris(&kris);
    }
    if kris.iter().any(|k| k.status == KriStatus::Error) {
        ExitCode::from(2)
    } else if kris.iter().any(|k| k.status != KriStatus::Ok) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// Progress bars on a terminal; nothing when stderr is not one, or for JSON output.
#[derive(Clone)]
struct Progress {
    inner: Option<Arc<ProgressInner>>,
}

struct ProgressInner {
    bars: MultiProgress,
    current: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Progress {
    fn new(quiet: bool) -> Arc<Progress> {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Arc::new(Progress {
            inner: (!quiet && terminal)
                .then(|| Arc::new(ProgressInner { bars: MultiProgress::new(), current: Mutex::new(BTreeMap::new()) })),
        })
    }

    fn clear(&self) {
        if let Some(inner) = &self.inner {
            let _ = inner.bars.clear();
        }
    }
}

impl Observer for Progress {
    fn resource_started(&self, resource: &str) {
        let Some(inner) = &self.inner else { return };
        let bar = inner.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<28} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(resource.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        inner.current.lock().expect("progress lock").insert(resource.to_string(), bar);
    }

    fn page_committed(&self, resource: &str, pages: u64, records: u64) {
        let Some(inner) = &self.inner else { return };
        if let Some(bar) = inner.current.lock().expect("progress lock").get(resource) {
            bar.set_message(format!("{pages} pages, {records} records"));
        }
    }

    fn resource_finished(&self, report: &ResourceReport) {
        let Some(inner) = &self.inner else { return };
        if let Some(bar) = inner.current.lock().expect("progress lock").remove(&report.resource) {
            bar.finish_with_message(format!(
                "{} pages, {} records — {}",
                report.pages,
                report.records,
                report.status.as_str()
            ));
        }
    }
}

pub struct ExportArgs {
    pub store: PathBuf,
    pub shape: String,
    pub kind: String,
    pub instance: Option<String>,
    pub csv: bool,
}

pub fn export(args: ExportArgs) -> ExitCode {
    let Some(shape) = Shape::parse(&args.shape) else {
        eprintln!("--shape `{}` is not one of entity, event, metric, edge, distribution", args.shape);
        return ExitCode::from(1);
    };
    let store = match Store::open(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let instance = match args.instance {
        Some(instance) => instance,
        None => match only_instance(&store, &args.store) {
            Ok(instance) => instance,
            Err(code) => return code,
        },
    };
    let result = if args.csv {
        export_csv(&store, &instance, shape, &args.kind)
    } else {
        export_jsonl(&store, &instance, shape, &args.kind)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// The key fields of a row as JSON, in the order they are written out.
fn key_fields(fields: &Fields<'_>) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    match fields {
        Fields::Entity { entity_type, id, updated_at } => {
            vec![("type", json!(entity_type)), ("id", json!(id)), ("updated_at", json!(updated_at))]
        }
        Fields::Event { name, key, start, end } => {
            vec![("name", json!(name)), ("key", json!(key)), ("start", json!(start)), ("end", json!(end))]
        }
        Fields::Metric { name, ts, value } => vec![("name", json!(name)), ("ts", json!(ts)), ("value", json!(value))],
        Fields::Edge { from_type, from_id, kind, to_type, to_id, updated_at } => vec![
            ("from_type", json!(from_type)),
            ("from_id", json!(from_id)),
            ("kind", json!(kind)),
            ("to_type", json!(to_type)),
            ("to_id", json!(to_id)),
            ("updated_at", json!(updated_at)),
        ],
        Fields::Distribution { name, ts, kind, count, sum, points } => vec![
            ("name", json!(name)),
            ("ts", json!(ts)),
            ("kind", json!(format!("{kind:?}").to_lowercase())),
            ("count", json!(count)),
            ("sum", json!(sum)),
            ("points", points.clone()),
        ],
    }
}

/// JSON lines, one per row, on two threads: this one reads rows and writes lines into chunks of about
/// [`EXPORT_BUFFER`] bytes; an output thread checks each row's attributes text (as a `text_only` scan
/// would have) and writes the chunk. Checking and writing were about half of an export's time, so a
/// large export takes about 40 % less (see ARCHITECTURE.md). Rows before a damaged one are written, then
/// the export fails, as it would on one thread.
fn export_jsonl(store: &Store, instance: &str, shape: Shape, kind: &str) -> Result<(), crate::store::StoreError> {
    let stdout = std::io::stdout();
    widen_pipe(&stdout);
    // Two chunks waiting at most, and spent chunks come back, so memory stays at a few chunks.
    let (full, chunks) = std::sync::mpsc::sync_channel::<Chunk>(2);
    let (spent, spare) = std::sync::mpsc::channel::<Chunk>();
    let (path, stdout) = (store.path(), &stdout);
    std::thread::scope(|scope| {
        let output = std::thread::Builder::new()
            .name("export-output".into())
            .spawn_scoped(scope, move || write_chunks(path, shape, stdout, chunks, &spent));
        let output = output.map_err(|e| crate::store::StoreError::Invalid {
            op: "starting the export's output thread".into(),
            problem: e.to_string(),
        })?;
        // The stored attributes text is written as it is (it is compact JSON with sorted keys), which is
        // what decoding and encoding it again would give, at a fraction of the cost.
        let scan = Scan { text_only: true, unchecked: true, ..Scan::default() };
        let mut chunk = Chunk::default();
        let mut stopped = false;
        let scanned = store.scan(instance, shape, kind, &scan, |row| {
            if stopped {
                return Ok::<(), crate::store::StoreError>(());
            }
            chunk.push(&row.fields, row.attributes_text);
            if chunk.bytes.len() >= EXPORT_BUFFER {
                let next = spare.try_recv().map(Chunk::cleared).unwrap_or_default();
                // The output thread is gone: the pipe was closed or a row was damaged.
                stopped = full.send(std::mem::replace(&mut chunk, next)).is_err();
            }
            Ok(())
        });
        if !stopped && !chunk.lines.is_empty() {
            let _ = full.send(chunk);
        }
        drop(full);
        let written = output.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        scanned?;
        written
    })
}

/// The output thread of [`export_jsonl`]: checks and writes chunks until there are no more, the pipe is
/// closed (which ends the export quietly) or a row's text is damaged.
fn write_chunks(
    path: &Path,
    shape: Shape,
    stdout: &std::io::Stdout,
    chunks: std::sync::mpsc::Receiver<Chunk>,
    spent: &std::sync::mpsc::Sender<Chunk>,
) -> Result<(), crate::store::StoreError> {
    use std::io::Write;
    let mut out = stdout.lock();
    for chunk in chunks {
        let mut checked = Ok(());
        let mut end = chunk.bytes.len();
        for &(line_start, text_start, text_end) in &chunk.lines {
            if let Err(e) = crate::store::check_attributes_text(path, shape, &chunk.bytes[text_start..text_end]) {
                (checked, end) = (Err(e), line_start);
                break;
            }
        }
        if out.write_all(&chunk.bytes[..end]).is_err() {
            return Ok(());
        }
        checked?;
        let _ = spent.send(chunk);
    }
    let _ = out.flush();
    Ok(())
}

/// Lines of an export: the bytes, and per line where it starts and where its attributes text is.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    lines: Vec<(usize, usize, usize)>,
}

impl Chunk {
    fn cleared(mut self) -> Chunk {
        self.bytes.clear();
        self.lines.clear();
        self
    }

    fn push(&mut self, fields: &Fields<'_>, attributes: &str) {
        let line_start = self.bytes.len();
        write_key_fields(&mut self.bytes, line_start, fields);
        self.bytes.extend_from_slice(b",\"attributes\":");
        let text_start = self.bytes.len();
        self.bytes.extend_from_slice(attributes.as_bytes());
        self.lines.push((line_start, text_start, self.bytes.len()));
        self.bytes.extend_from_slice(b"}\n");
    }
}

/// Bytes of output gathered before each write to stdout.
const EXPORT_BUFFER: usize = 256 * 1024;

/// The pipe buffer an export asks for: 1 MiB, what Linux lets any user ask for by default.
#[cfg(target_os = "linux")]
const PIPE_BUFFER: usize = 1024 * 1024;

/// When stdout is a pipe, enlarges its buffer from Linux's 64 KiB so each write of [`EXPORT_BUFFER`] fits
/// and the two processes stop waiting for each other at every write: piping 200,000 sign-ins (114 MB)
/// into `wc -l` took 0.59-0.65 s with 64 KiB and 0.28-0.37 s with 1 MiB. Best effort: a file, a terminal
/// or a system limit leave stdout as it is.
fn widen_pipe(stdout: &std::io::Stdout) {
    #[cfg(target_os = "linux")]
    let _ = rustix::pipe::fcntl_setpipe_size(stdout, PIPE_BUFFER);
    #[cfg(not(target_os = "linux"))]
    let _ = stdout;
}

/// Opens a JSON object with the key fields of a row, in the order [`key_fields`] gives them, written
/// straight into `out` as the line that starts at `line_start` (a map per row would cost more than the
/// rest of the line).
fn write_key_fields(out: &mut Vec<u8>, line_start: usize, fields: &Fields<'_>) {
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, name: &str, value: &dyn Fn(&mut Vec<u8>)| {
        out.push(if std::mem::take(&mut first) { b'{' } else { b',' });
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        value(out);
    };
    // Writing plain strings and numbers into a vector cannot fail.
    fn json(value: &impl serde::Serialize) -> impl Fn(&mut Vec<u8>) + '_ {
        move |out: &mut Vec<u8>| {
            let _ = serde_json::to_writer(out, value);
        }
    }
    debug_assert_eq!(out.len(), line_start, "a line starts where the output ends");
    match fields {
        Fields::Entity { entity_type, id, updated_at } => {
            field(out, "type", &json(entity_type));
            field(out, "id", &json(id));
            field(out, "updated_at", &json(updated_at));
        }
        Fields::Event { name, key, start, end } => {
            field(out, "name", &json(name));
            field(out, "key", &json(key));
            field(out, "start", &json(start));
            field(out, "end", &json(end));
        }
        other => {
            for (name, value) in key_fields(other) {
                field(out, name, &json(&value));
            }
        }
    }
}

/// CSV with the key fields, then one column per attribute (non-scalar values as JSON). Two passes over
/// the store keep memory flat: the first collects the attribute names.
fn export_csv(store: &Store, instance: &str, shape: Shape, kind: &str) -> Result<(), crate::store::StoreError> {
    use std::io::Write;
    let mut names: Vec<String> = Vec::new();
    store.for_each_row(instance, shape, kind, |row| {
        for name in row.attributes.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Ok::<(), crate::store::StoreError>(())
    })?;
    let stdout = std::io::stdout();
    widen_pipe(&stdout);
    let mut out = std::io::BufWriter::with_capacity(EXPORT_BUFFER, stdout.lock());
    let mut header_done = false;
    store.for_each_row(instance, shape, kind, |row| {
        let keys = key_fields(&row.fields);
        if !header_done {
            let header: Vec<String> =
                keys.iter().map(|(n, _)| csv_cell(n)).chain(names.iter().map(|n| csv_cell(n))).collect();
            let _ = writeln!(out, "{}", header.join(","));
            header_done = true;
        }
        let cells: Vec<String> = keys
            .iter()
            .map(|(_, v)| csv_value(v))
            .chain(names.iter().map(|n| row.attributes.get(n).map_or(String::new(), csv_value)))
            .collect();
        let _ = writeln!(out, "{}", cells.join(","));
        Ok::<(), crate::store::StoreError>(())
    })?;
    let _ = out.flush();
    Ok(())
}

fn csv_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => csv_cell(s),
        other => csv_cell(&other.to_string()),
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

pub fn check(spec_path: &Path, config_path: &Path, now: Option<&str>) -> ExitCode {
    let (spec, config) = match load_spec_and_config(spec_path, config_path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let now_ms = match now.map(parse_now).transpose() {
        Ok(now) => now.unwrap_or_else(wall_clock_ms),
        Err(message) => {
            eprintln!("--now: {message}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(crate::run::check(&spec, &config, now_ms)) {
        Ok(probes) => {
            let width = probes.iter().map(|p| p.resource.len()).max().unwrap_or(8).max(8);
            println!("{:<width$}  {:<14}  detail", "resource", "result");
            for probe in &probes {
                println!("{:<width$}  {:<14}  {}", probe.resource, probe.outcome.as_str(), probe.detail);
            }
            if probes.iter().any(|p| p.outcome == crate::run::ProbeOutcome::Error) {
                ExitCode::from(2)
            } else if probes.iter().any(|p| p.outcome != crate::run::ProbeOutcome::Ok) {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("check failed: {e}");
            ExitCode::from(2)
        }
    }
}

/// The store's one instance, when no `--instance` was given; several or none is an error said plainly.
fn only_instance(store: &Store, path: &Path) -> Result<String, ExitCode> {
    match store.list_instances() {
        Ok(instances) if instances.len() == 1 => Ok(instances[0].clone()),
        Ok(instances) if instances.is_empty() => {
            eprintln!("{} holds no run yet; run `engine run` first", path.display());
            Err(ExitCode::from(2))
        }
        Ok(instances) => {
            eprintln!("the store holds several instances ({}); choose one with --instance", instances.join(", "));
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}
