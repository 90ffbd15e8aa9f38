//! The gradient stage of a round: `steps` AdamW steps from the current prompt, its trajectory
//! recorded, divergences rolled back.

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;

use crate::engine::components::Components;
use crate::engine::state::RunState;
use crate::error::Result;

/// Runs the gradient stage of the current round; `false` when the round has no steps.
pub fn gradient<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    progress: &ProgressBar,
) -> Result<bool> {
    let round = state.position.round;
    let cfg = c.stage_config(round);
    if cfg.steps == 0 {
        return Ok(false);
    }
    progress.set_prefix(format!(
        "round {round}/{}: gradient",
        c.config.schedule.rounds
    ));
    let stage = c.gradient_stage(cfg);
    let model = state.model.clone();
    let outcome = stage.run(
        model,
        &mut state.optim,
        &mut state.rng,
        state.step,
        progress,
    )?;
    state.model = outcome.model;
    // Every attempted step counts against the budget, rolled-back ones included.
    state.step += cfg.steps;
    for r in &outcome.rollbacks {
        progress.println(format!(
            "step {}: {}; rolled back to step {}, learning rate ×{:.0e}",
            r.step, r.reason, r.back_to_step, r.lr_scale
        ));
    }
    state.round_rollbacks = outcome.rollbacks;
    if cfg.keep_best {
        // `keep_best` scored the selection split at every trajectory point.
        state.selection_evals += outcome.trajectory.len();
    }
    state.trajectory.extend(outcome.trajectory.iter().cloned());
    state.round_points = outcome.trajectory;
    state.position.gradient_done = true;
    Ok(true)
}
