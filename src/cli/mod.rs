//! Command-line interface: the arguments (`args.rs`, one struct per command) and the commands
//! (`cmd/<command>.rs`, each an `exec` on its arguments; the work itself is in the library).

mod args;
mod cmd;

use clap::Parser;

use args::{Cli, Command};
use tandem::assets::Assets;

/// Parses arguments, runs the command, prints errors and maps them to an exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command.exec() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

impl Command {
    /// Runs the command, with the asset cache named by the environment.
    fn exec(self) -> anyhow::Result<()> {
        let assets = Assets::from_env();
        match self {
            Command::Fetch(args) => args.exec(&assets),
            Command::Tasks(args) => args.exec(),
            Command::Tune(args) => args.exec(&assets),
            Command::Run(args) => args.exec(assets),
            Command::Sweep(args) => args.exec(assets),
            Command::Report(args) => args.exec(),
            Command::Bench(args) => args.exec(assets),
            Command::Plot(args) => args.exec(),
            Command::Mentor(args) => args.exec(assets),
            Command::Serve(args) => args.exec(assets),
            Command::Eval(args) => args.exec(assets),
        }
    }
}
