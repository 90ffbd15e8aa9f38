//! Schedules and the alternating engine that executes them: the run's one state
//! ([`state`]), its read-only parts ([`components`]), the setup shared with `tandem tune`
//! ([`setup`]), the named stages of a round ([`stage`]), checkpoints ([`checkpoint`]) and the
//! loop over them ([`run`]).

pub mod checkpoint;
pub mod components;
pub mod estimate;
mod overrides;
pub mod records;
pub mod run;
mod schedule;
pub mod setup;
pub mod stage;
pub mod state;

pub use checkpoint::{CheckpointState, Checkpointer, Phase};
pub use components::{Components, RunIo};
pub use overrides::apply_overrides;
pub use records::{MentorExchange, RoundRecord, RunResult, Scored};
pub use run::{run_schedule, RunConfig, RunControl};
pub use schedule::{
    ArmSource, Budget, MentorStage, Probe, Restart, Rung, Schedule, Screen, BUILTIN_FAMILIES,
    BUILTIN_SCHEDULES, MAX_CANDIDATES,
};
pub use setup::{AnyReadout, PromptSpace, TaskSetup};
pub use state::{Best, Position, RunState, Score};
