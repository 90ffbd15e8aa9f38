//! Schedules and the alternating engine that executes them.

mod checkpoint;
mod overrides;
mod run;
mod schedule;

pub use checkpoint::{CheckpointState, Phase};
pub use overrides::apply_overrides;
pub use run::{
    run_schedule, MentorExchange, RoundRecord, RunConfig, RunControl, RunResult, Scored,
};
pub use schedule::{MentorStage, Restart, Schedule, BUILTIN_SCHEDULES};
