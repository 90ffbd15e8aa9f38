//! Schedules and the alternating engine that executes them.

mod checkpoint;
mod run;
mod schedule;

pub use checkpoint::{CheckpointState, Phase};
pub use run::{
    run_schedule, MentorExchange, RoundRecord, RunConfig, RunControl, RunResult, Scored,
};
pub use schedule::{MentorStage, Restart, Schedule, BUILTIN_SCHEDULES};
