//! The gradient stage: AdamW on the trainable tensors, global-norm gradient clipping, a learning
//! rate schedule, and a trajectory of projected prompts recorded every few steps.

mod config;
mod schedule;
mod stage;
mod trajectory;

pub use config::GradientConfig;
pub use schedule::LrSchedule;
pub use stage::{GradientStage, PromptOptimizer, Rollback, StageOutcome};
pub use trajectory::TrajectoryPoint;
