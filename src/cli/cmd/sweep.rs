//! `tandem sweep`: schedules × seeds × tasks into one folder (finished runs skipped), then the
//! report.

use anyhow::Result;

use super::jobs::RunJob;
use crate::cli::args::{ReportArgs, SweepArgs};
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendKind};

impl SweepArgs {
    /// `tandem sweep --task T ... [options]`.
    pub fn exec(self, assets: Assets) -> Result<()> {
        let kind: BackendKind = self.backend.parse()?;
        let schedules = if self.schedules.is_empty() {
            tandem::engine::BUILTIN_SCHEDULES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            self.schedules
        };
        let mut runs = Vec::new();
        for t in &self.tasks {
            for seed in 0..self.seeds {
                for s in &schedules {
                    runs.push((t.clone(), s.clone(), seed));
                }
            }
        }
        if !self.dry_run {
            super::workers::share_cores(self.jobs.into());
        }
        let job = RunJob {
            runs,
            sets: self.sets,
            out: self.out.clone(),
            mentor: self.mentor,
            sweep: true,
            dry_run: self.dry_run,
            assets,
            jobs: self.jobs.into(),
        };
        dispatch(kind, job)?;
        if self.dry_run {
            return Ok(());
        }
        ReportArgs {
            dir: self.out,
            baseline: self.baseline,
        }
        .exec()
    }
}
