//! `tandem report`: the comparison table of a sweep folder (`tandem::report::SweepReport`),
//! Markdown on stdout and `report.csv` in the folder, then each schedule against a baseline,
//! paired by task and seed.

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
        println!(
            "\nThe smallest difference each task's selection split tells from chance (two \
             prompts' accuracies, 95%; a restart that wins by less may be noise):\n"
        );
        print!("{}", report.resolution_markdown());
        let paired: Vec<_> = self
            .baseline
            .iter()
            .flat_map(|b| report.paired(b))
            .collect();
        if paired.is_empty() {
            println!(
                "\n(no schedule shares a seed with a baseline ({}) on any task: no paired \
                 comparison)",
                self.baseline.join(", ")
            );
        } else {
            println!(
                "\nEach schedule against {}, paired by task and seed (test metric; the \
                 interval resamples the pairs, p tests the mean difference against sign flips):\n",
                self.baseline.join(" and ")
            );
            print!("{}", tandem::report::paired_markdown(&paired));
            let svg = dir.join("paired.svg");
            tandem::report::paired_svg(&svg, &paired)?;
            let png = tandem::report::svg_to_png(&svg)?;
            println!("\nplot: {} ({})", svg.display(), png.display());
        }
        let proposals = tandem::report::ProposalReport::load(dir)?;
        if proposals.rows().iter().any(|r| r.calls > 0 || r.probes > 0) {
            println!(
                "\nWhat the proposals did (lines the mentor wrote, candidates kept, kept within \
                 the word limit, lines that were not prompts; every probe arm by origin):\n"
            );
            print!("{}", proposals.markdown());
        }
        let path = dir.join("report.csv");
        std::fs::write(&path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
