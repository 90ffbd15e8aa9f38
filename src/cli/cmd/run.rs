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
            (Some(dir), _) => resume(assets, dir, self.backend.as_deref(), self.mentor),
            (None, Some(task)) => {
                let kind: BackendKind = self.backend.as_deref().unwrap_or("ndarray").parse()?;
                let jobs = self.jobs.map_or(self.schedules.len(), usize::from);
                if !self.dry_run {
                    super::workers::share_cores(jobs);
                }
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
                    dry_run: self.dry_run,
                    assets,
                    jobs,
                };
                let results = dispatch(kind, job)?;
                if self.dry_run {
                    return Ok(());
                }
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

/// `tandem run --resume DIR`, on the backend the run was started on (recorded in its
/// `config.yaml`): `--backend`, when given, must name it.
fn resume(assets: Assets, dir: PathBuf, backend: Option<&str>, mentor: MentorOpts) -> Result<()> {
    let job = ResumeJob::open(dir.clone(), assets, mentor)?;
    let kind = job.config.task.backend;
    if let Some(asked) = backend {
        let asked: BackendKind = asked.parse()?;
        if asked != kind {
            anyhow::bail!(
                "--backend {asked}: the run in {} was started on {kind} and continues there \
                 (its numbers would change on another backend); leave out --backend",
                dir.display()
            );
        }
    }
    let r = dispatch(kind, job)?;
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
    println!("| schedule | gradient steps | selection evals | LLM calls | LLM tokens | selection acc | test acc | wall s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (r, _) in results {
        println!(
            "| {} | {} | {} | {} | {} | {:.4} | {:.4} | {:.1} |",
            r.schedule,
            r.gradient_steps,
            r.selection_evals,
            r.llm_calls,
            r.llm_tokens,
            r.selection.accuracy,
            r.test.accuracy,
            r.wall_seconds
        );
    }
}
