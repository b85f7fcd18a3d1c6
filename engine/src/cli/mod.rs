//! The command line: parses arguments, calls the library, prints, and picks exit codes. This is the only
//! module that writes to stdout or stderr.
//!
//! Exit codes: 0 ok, 1 spec or config invalid, 2 run failed (`engine kri`: a KRI could not be computed), 3 run
//! completed but degraded (`engine kri`: a KRI is degraded or not applicable).

mod run;
mod sandbox;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "engine",
    version,
    about = "A declarative connector engine: REST APIs described as YAML specs, synced into shapes, with KRIs as expressions."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs for structural and semantic errors; prints every diagnostic with file:line:column.
    Validate {
        /// Spec files to check.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Sync a connector into the store, then print a summary (exit 0 ok, 2 failed, 3 degraded).
    Run {
        spec: PathBuf,
        /// The operator's config file (YAML with a `config:` map; secrets as `{ env: NAME }` or `{ file: PATH }`).
        #[arg(long, required_unless_present = "sandbox", conflicts_with = "sandbox")]
        config: Option<PathBuf>,
        /// Run against a sandbox directory instead of the real API: its server starts on 127.0.0.1 and
        /// the sandbox's own config (no credentials needed) points the spec at it.
        #[arg(long, value_name = "DIR")]
        sandbox: Option<PathBuf>,
        /// The SQLite store.
        #[arg(long, default_value = crate::store::DEFAULT_PATH)]
        store: PathBuf,
        /// Connector instance name (overrides the config file's `instance`).
        #[arg(long)]
        instance: Option<String>,
        /// Only these resources (comma-separated), plus the fan-out parents they need.
        #[arg(long, value_delimiter = ',')]
        resources: Option<Vec<String>>,
        /// Ignore saved cursors and resume positions: read everything from the start.
        #[arg(long)]
        full: bool,
        /// Pin the clock (RFC 3339), for reproducible windows and KRIs.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Keep syncing every DURATION (e.g. 15m, 6h) until stopped with Ctrl-C.
        #[arg(long, conflicts_with = "scheduled")]
        every: Option<String>,
        /// Keep syncing on the spec's default schedule until stopped with Ctrl-C.
        #[arg(long)]
        scheduled: bool,
    },
    /// Recompute the KRIs and metrics from the store, without any request (exit 0 ok, 2 error, 3 degraded).
    Kri {
        spec: PathBuf,
        /// The SQLite store.
        #[arg(long, default_value = crate::store::DEFAULT_PATH)]
        store: PathBuf,
        /// The operator's config file, for its KRI selection, band overrides and `config.*` values;
        /// without it every KRI is computed with the spec's bands.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Connector instance name; by default the config's, else the store's only instance.
        #[arg(long)]
        instance: Option<String>,
        /// Pin the clock (RFC 3339) that windows and `now()` use.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Exchange a token and probe each resource once: which ones these credentials can read.
    Check {
        spec: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Pin the clock (RFC 3339) used for incremental windows in the probes.
        #[arg(long)]
        now: Option<String>,
    },
    /// Print stored rows of one shape type, one per line (JSON lines or CSV).
    Export {
        #[arg(long, default_value = crate::store::DEFAULT_PATH)]
        store: PathBuf,
        /// entity, event, metric, edge or distribution.
        #[arg(long)]
        shape: String,
        /// The entity type, event/metric/distribution name or edge kind.
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Serve a sandbox directory as the spec's API on 127.0.0.1 until Ctrl-C, logging every request.
    Sandbox {
        spec: PathBuf,
        /// The sandbox directory (a `sandbox.yaml` and one `<resource>.jsonl` per resource).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Pin the sandbox's clock (RFC 3339) and serve the recorded times as they are; by default they
        /// are moved so the data looks recent.
        #[arg(long)]
        now: Option<String>,
    },
    /// Print the JSON Schema of the spec format (what `schemas/spec.schema.json` holds).
    Schema {
        /// The schema of a sandbox's `sandbox.yaml` instead (`schemas/sandbox.schema.json`).
        #[arg(long)]
        sandbox: bool,
    },
    /// Write a connector's reference documentation as Markdown, from the spec alone.
    Doc {
        spec: PathBuf,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { specs, format, deny_warnings } => {
            validate::run(&specs, format == Format::Json, deny_warnings)
        }
        Command::Run { spec, config, sandbox, store, instance, resources, full, now, format, every, scheduled } => {
            run::run(run::RunArgs {
                spec,
                config,
                sandbox,
                store,
                instance,
                resources,
                full,
                now,
                json: format == Format::Json,
                every,
                scheduled,
            })
        }
        Command::Kri { spec, store, config, instance, now, format } => {
            run::kri(run::KriArgs { spec, store, config, instance, now, json: format == Format::Json })
        }
        Command::Check { spec, config, now } => run::check(&spec, &config, now.as_deref()),
        Command::Export { store, shape, kind, instance, format } => {
            run::export(run::ExportArgs { store, shape, kind, instance, csv: format == ExportFormat::Csv })
        }
        Command::Sandbox { spec, data, port, now } => sandbox::serve(&spec, &data, port, now.as_deref()),
        Command::Schema { sandbox } => {
            if sandbox {
                print!("{}", crate::sandbox::sandbox_schema_json());
            } else {
                print!("{}", crate::spec::schema::spec_schema_json());
            }
            ExitCode::SUCCESS
        }
        Command::Doc { spec, output } => validate::doc(&spec, output.as_deref()),
    }
}

/// Width used for rendered diagnostics, so output is identical on every terminal.
pub const RENDER_WIDTH: usize = 100;
