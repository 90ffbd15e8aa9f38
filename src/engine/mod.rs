//! Schedules and the alternating engine that executes them.

mod run;
mod schedule;

pub use run::{run_schedule, RoundRecord, RunConfig, RunResult, Scored};
pub use schedule::{MentorStage, Restart, Schedule, BUILTIN_SCHEDULES};
