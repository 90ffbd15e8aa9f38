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
            eprintln!("error: {}", message(&e));
            std::process::ExitCode::from(1)
        }
    }
}

/// The error and its causes, as `{:#}` prints them but each once: a library error's message
/// already ends with its I/O cause (`reading X: No such file or directory`), which `{:#}` would
/// print a second time.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use super::message;
    use anyhow::Context;

    #[test]
    fn each_cause_is_printed_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::from(tandem::Error::io("reading", "/x/config.yaml", io()));
        assert_eq!(message(&e), "reading /x/config.yaml: no such file");
        let e = Err::<(), _>(io()).context("reading /x").unwrap_err();
        assert_eq!(message(&e), format!("{e:#}"));
        assert_eq!(message(&e), "reading /x: no such file");
        let e = e.context("outer");
        assert_eq!(message(&e), "outer: reading /x: no such file");
    }
}
