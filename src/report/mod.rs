//! Reporting of finished runs: plots, the one-screen summary and the comparison table of a
//! sweep.

mod plots;
mod summary;
mod sweep;

pub use plots::{loss_svg, plot_run, selection_svg, svg_to_png};
pub use summary::run_summary;
pub use sweep::{MeanStd, SweepReport, SweepRow};
