//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Learning rate as a function of the step within a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The peak rate throughout.
    Constant,
    /// Linear warm-up from 0, then linear decay to 0 at the end of the stage.
    Linear {
        /// Warm-up steps.
        warmup: usize,
    },
    /// Linear warm-up, then cosine decay to `min_factor`·peak.
    Cosine {
        /// Warm-up steps.
        warmup: usize,
        /// Final rate as a fraction of the peak.
        min_factor: f64,
    },
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule::Cosine {
            warmup: 0,
            min_factor: 0.1,
        }
    }
}

impl LrSchedule {
    /// The learning rate at `step` (0-based) of a stage of `total` steps with peak `lr`.
    pub fn lr(&self, lr: f64, step: usize, total: usize) -> f64 {
        let total = total.max(1);
        let warm = |w: usize| {
            if w > 0 && step < w {
                Some(lr * (step + 1) as f64 / w as f64)
            } else {
                None
            }
        };
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Linear { warmup } => warm(warmup).unwrap_or_else(|| {
                let span = (total - warmup.min(total)).max(1) as f64;
                lr * (1.0 - (step - warmup.min(step)) as f64 / span).max(0.0)
            }),
            LrSchedule::Cosine { warmup, min_factor } => warm(warmup).unwrap_or_else(|| {
                let span = (total - warmup.min(total)).max(1) as f64;
                let t = ((step - warmup.min(step)) as f64 / span).min(1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                lr * (min_factor + (1.0 - min_factor) * cos)
            }),
        }
    }

    /// Checks the schedule against the stage length.
    pub fn validate(&self, steps: usize) -> Result<()> {
        match *self {
            LrSchedule::Linear { warmup } | LrSchedule::Cosine { warmup, .. } if warmup > steps => {
                Err(Error::config(
                    "gradient.schedule.warmup",
                    format!("{warmup} warm-up steps exceed the stage's {steps} steps"),
                ))
            }
            LrSchedule::Cosine { min_factor, .. } if !(0.0..=1.0).contains(&min_factor) => {
                Err(Error::config(
                    "gradient.schedule.min_factor",
                    format!("{min_factor} is not in [0, 1]"),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values pinned from the closed form (`min + (1 - min)·(1 + cos πt)/2`, worked by hand):
    /// a quarter into the decay, where cosine and linear differ, and at the last step a stage
    /// runs (step `total - 1`), which sits just above the floor.
    #[test]
    fn cosine_warms_up_peaks_and_decays_to_floor() {
        let s = LrSchedule::Cosine {
            warmup: 10,
            min_factor: 0.1,
        };
        let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-7, "{got} != {want}");
        close(s.lr(1.0, 0, 100), 0.1);
        close(s.lr(1.0, 9, 100), 1.0);
        close(s.lr(1.0, 10, 100), 1.0);
        close(s.lr(1.0, 99, 100), 0.100_274_13);
        let no_warmup = LrSchedule::Cosine {
            warmup: 0,
            min_factor: 0.1,
        };
        close(no_warmup.lr(2.0, 0, 100), 2.0);
        close(no_warmup.lr(1.0, 25, 100), 0.868_198_05);
        close(no_warmup.lr(1.0, 50, 100), 0.55);
        close(no_warmup.lr(1.0, 99, 100), 0.100_222_05);
        let decay: Vec<f64> = (0..100).map(|i| no_warmup.lr(1.0, i, 100)).collect();
        assert!(
            decay.windows(2).all(|w| w[1] < w[0]),
            "not strictly decreasing"
        );
    }

    #[test]
    fn linear_decays_to_zero_and_constant_is_flat() {
        let s = LrSchedule::Linear { warmup: 0 };
        assert_eq!(s.lr(2.0, 0, 4), 2.0);
        assert_eq!(s.lr(2.0, 2, 4), 1.0);
        assert_eq!(s.lr(2.0, 3, 4), 0.5);
        let warm = LrSchedule::Linear { warmup: 2 };
        let lrs: Vec<f64> = (0..6).map(|i| warm.lr(1.0, i, 6)).collect();
        assert_eq!(lrs, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]);
        assert_eq!(LrSchedule::Constant.lr(3.0, 77, 4), 3.0);
    }

    /// A warm-up may fill the whole stage, not more; the floor is a fraction in [0, 1].
    #[test]
    fn validation_bounds_are_exact() {
        let cosine = |warmup, min_factor| LrSchedule::Cosine { warmup, min_factor };
        LrSchedule::Constant.validate(0).unwrap();
        LrSchedule::Linear { warmup: 0 }.validate(10).unwrap();
        LrSchedule::Linear { warmup: 10 }.validate(10).unwrap();
        assert!(LrSchedule::Linear { warmup: 11 }.validate(10).is_err());
        cosine(10, 0.1).validate(10).unwrap();
        assert!(cosine(11, 0.1).validate(10).is_err());
        for ok in [0.0, 0.5, 1.0] {
            cosine(0, ok).validate(10).unwrap();
        }
        for bad in [-0.1, 1.5, f64::NAN] {
            let err = cosine(0, bad).validate(10).unwrap_err().to_string();
            assert!(err.contains("min_factor"), "{bad}: {err}");
        }
    }

    #[test]
    fn warmup_longer_than_stage_is_rejected_by_name() {
        let err = LrSchedule::Linear { warmup: 50 }
            .validate(10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("warmup") && err.contains("50"), "{err}");
    }
}
