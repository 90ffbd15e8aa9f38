//! Settings of a gradient stage.

use serde::{Deserialize, Serialize};

use super::LrSchedule;
use crate::error::{Error, Result};
use crate::prompt::Metric;

/// Settings of a gradient stage (defaults follow the reference scripts: AdamW (0.9, 0.999,
/// 1e-8, no weight decay), clip 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradientConfig {
    /// Optimizer steps in the stage.
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning-rate schedule over the stage.
    pub schedule: LrSchedule,
    /// AdamW β1.
    pub beta1: f32,
    /// AdamW β2.
    pub beta2: f32,
    /// AdamW ε.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub grad_clip: Option<f32>,
    /// Record a trajectory point every this many steps (and after the last).
    pub record_every: usize,
    /// Distance used to project prompts to tokens.
    pub metric: Metric,
    /// Nearest tokens kept per prompt vector in the trajectory.
    pub top_k: usize,
    /// Evaluate the prompt on the selection split at every trajectory point and end the stage
    /// with the best one (early stopping on held-out data; the test split is never used).
    pub keep_best: bool,
    /// When a step's loss or gradient is not finite, the stage rolls back to the last prompt
    /// with a finite loss, multiplies its learning rate by this factor and restarts the
    /// optimizer state; each rollback is recorded.
    pub rollback_lr_factor: f64,
    /// Rollbacks allowed per stage before the divergence is an error.
    pub max_rollbacks: usize,
}

impl Default for GradientConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 16,
            lr: 3e-3,
            schedule: LrSchedule::default(),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: Some(1.0),
            record_every: 5,
            metric: Metric::L2,
            top_k: 3,
            keep_best: true,
            rollback_lr_factor: 0.1,
            max_rollbacks: 8,
        }
    }
}

impl GradientConfig {
    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::config("gradient.batch_size", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "gradient.lr",
                format!("{} must be a positive number", self.lr),
            ));
        }
        if !(self.rollback_lr_factor > 0.0 && self.rollback_lr_factor < 1.0) {
            return Err(Error::config(
                "gradient.rollback_lr_factor",
                format!("{} is not in (0, 1)", self.rollback_lr_factor),
            ));
        }
        for (name, b) in [
            ("gradient.beta1", self.beta1),
            ("gradient.beta2", self.beta2),
        ] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(name, format!("{b} is not in [0, 1)")));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config("gradient.eps", "must be positive"));
        }
        if self.weight_decay < 0.0 || !self.weight_decay.is_finite() {
            return Err(Error::config("gradient.weight_decay", "must be ≥ 0"));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::config(
                    "gradient.grad_clip",
                    format!("{c} must be positive"),
                ));
            }
        }
        if self.record_every == 0 {
            return Err(Error::config("gradient.record_every", "must be at least 1"));
        }
        if self.top_k == 0 {
            return Err(Error::config("gradient.top_k", "must be at least 1"));
        }
        self.schedule.validate(self.steps)
    }
}
