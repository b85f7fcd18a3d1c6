//! The command line: parses arguments, calls the library, prints, and picks exit codes. This is the only
//! module that writes to stdout or stderr.
//!
//! Exit codes: 0 ok, 1 spec or config invalid, 2 run failed, 3 run completed but degraded.

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
    /// Print the JSON Schema of the spec format (what `schemas/spec.schema.json` holds).
    Schema,
    /// Write a connector's reference documentation as Markdown, from the spec alone.
    Doc {
        spec: PathBuf,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
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
        Command::Schema => {
            print!("{}", crate::spec::schema::spec_schema_json());
            ExitCode::SUCCESS
        }
        Command::Doc { spec, output } => validate::doc(&spec, output.as_deref()),
    }
}

/// Width used for rendered diagnostics, so output is identical on every terminal.
pub const RENDER_WIDTH: usize = 100;
