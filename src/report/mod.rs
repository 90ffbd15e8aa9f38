//! Reporting of finished runs: plots and the one-screen summary.

mod plots;
mod summary;

pub use plots::{loss_svg, plot_run, selection_svg, svg_to_png};
pub use summary::run_summary;
