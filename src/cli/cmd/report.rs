//! `tandem report`: the comparison table of a sweep folder (`tandem::report::SweepReport`),
//! Markdown on stdout and `report.csv` in the folder.

use anyhow::{Context, Result};

use crate::cli::args::ReportArgs;
use tandem::report::SweepReport;

impl ReportArgs {
    /// `tandem report DIR`.
    pub fn exec(self) -> Result<()> {
        let dir = &self.dir;
        let report = SweepReport::load(dir)?;
        if report.is_empty() {
            anyhow::bail!(
                "{} holds no finished run (no */results.json)",
                dir.display()
            );
        }
        print!("{}", report.markdown());
        let path = dir.join("report.csv");
        std::fs::write(&path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
