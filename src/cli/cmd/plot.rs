//! `tandem plot`: (re)draws the plots of finished run folders and prints their summaries.

use anyhow::{Context, Result};

use crate::cli::args::PlotArgs;
use tandem::engine::{RoundRecord, RunResult};
use tandem::gradient::TrajectoryPoint;
use tandem::run::RunDir;

impl PlotArgs {
    /// `tandem plot DIR ...`.
    pub fn exec(self) -> Result<()> {
        for dir in &self.dirs {
            let path = dir.join("results.json");
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading {} (is {} a finished run folder?)",
                    path.display(),
                    dir.display()
                )
            })?;
            let result: RunResult = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a run result", path.display()))?;
            let run = RunDir::open(dir);
            let trajectory: Vec<TrajectoryPoint> = run.read_jsonl("trajectory.jsonl")?;
            let rounds: Vec<RoundRecord> = run.read_jsonl("rounds.jsonl")?;
            let title = format!(
                "{} · {} · seed {}",
                result.task, result.schedule, result.seed
            );
            tandem::report::plot_run(dir, &title, &trajectory, &rounds)?;
            print!("{}", tandem::report::run_summary(dir, &result, &rounds));
        }
        Ok(())
    }
}
