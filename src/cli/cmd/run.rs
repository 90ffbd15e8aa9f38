//! `tandem run`: schedules on one task, each into a run folder, compared in one table; and
//! `tandem run --resume DIR`, which continues an interrupted run.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::jobs::{ResumeJob, RunJob};
use crate::cli::args::{MentorOpts, RunArgs};
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendKind};
use tandem::engine::RunResult;
use tandem::run::RunDir;

impl RunArgs {
    /// `tandem run TASK [options]` or `tandem run --resume DIR`.
    pub fn exec(self, assets: Assets) -> Result<()> {
        match (self.resume, self.task) {
            (Some(dir), _) => resume(assets, dir, &self.backend, self.mentor),
            (None, Some(task)) => {
                let kind: BackendKind = self.backend.parse()?;
                let runs = self
                    .schedules
                    .into_iter()
                    .map(|s| (task.clone(), s, self.seed))
                    .collect();
                let job = RunJob {
                    runs,
                    sets: self.sets,
                    out: self.out,
                    mentor: self.mentor,
                    sweep: false,
                    assets,
                };
                let results = dispatch(kind, job)?;
                for (r, dir) in &results {
                    print_summary(r, dir);
                }
                print_comparison(&results);
                Ok(())
            }
            (None, None) => anyhow::bail!("`tandem run` needs a TASK or --resume DIR"),
        }
    }
}

/// `tandem run --resume DIR`.
fn resume(assets: Assets, dir: PathBuf, backend: &str, mentor: MentorOpts) -> Result<()> {
    let kind: BackendKind = backend.parse()?;
    let r = dispatch(
        kind,
        ResumeJob {
            dir: dir.clone(),
            assets,
            mentor,
        },
    )?;
    print_summary(&r, &dir);
    Ok(())
}

/// Prints a finished run's one-screen summary, from its folder's records.
fn print_summary(result: &RunResult, dir: &Path) {
    let rounds = RunDir::open(dir)
        .read_jsonl("rounds.jsonl")
        .unwrap_or_default();
    print!("{}", tandem::report::run_summary(dir, result, &rounds));
}

/// The schedules' outcomes side by side, one Markdown row each.
fn print_comparison(results: &[(RunResult, PathBuf)]) {
    println!();
    println!("| schedule | gradient steps | LLM calls | LLM tokens | selection acc | test acc | wall s |");
    println!("|---|---|---|---|---|---|---|");
    for (r, _) in results {
        println!(
            "| {} | {} | {} | {} | {:.4} | {:.4} | {:.1} |",
            r.schedule,
            r.gradient_steps,
            r.llm_calls,
            r.llm_tokens,
            r.selection.accuracy,
            r.test.accuracy,
            r.wall_seconds
        );
    }
}
