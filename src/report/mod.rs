//! Reporting of finished runs: plots, the one-screen summary, the comparison table of a sweep
//! and what its proposals did.

mod paired;
mod plots;
mod proposals;
mod summary;
mod sweep;

pub use paired::{
    bootstrap_ci95, paired_comparisons, paired_markdown, sign_flip_p, PairedComparison,
};
pub use plots::{loss_svg, paired_svg, plot_run, selection_svg, svg_to_png};
pub use proposals::{OriginStats, ProposalReport, ProposalRow};
pub use summary::run_summary;
pub use sweep::{resolvable_difference, MeanStd, SweepReport, SweepRow};
