//! One file per command, named for what it runs; each holds `impl <Command>Args { fn exec }`
//! and the backend job it dispatches. `jobs.rs` holds what several commands share.

mod bench;
mod eval;
mod fetch;
mod jobs;
mod mentor;
mod plot;
mod report;
mod run;
mod serve;
mod sweep;
mod tasks;
mod tune;
mod workers;
