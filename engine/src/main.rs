//! The `engine` command. All printing and exit codes live in `cli`.

fn main() -> std::process::ExitCode {
    engine::cli::main()
}
