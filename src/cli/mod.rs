//! Command-line interface: argument parsing and the commands.

mod args;
mod bench_cmd;
mod commands;
mod mentor_cmd;

use clap::Parser;

/// Parses arguments, runs the command, prints errors and maps them to an exit code.
pub fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
