//! The probe: proposals judged as starting points. Every arm takes the rung's gradient steps
//! from its own start — all arms of a rung on the same batches — and is scored on the
//! selection split; successive halving keeps the best arms for the next, longer rung. The
//! winner (a proposal only when it beats the continuous arm by the probe's margin) is what the
//! round restarts from, with its own optimizer state. Every step and scoring is counted.

use std::cmp::Ordering;

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::arms::Arm;
use super::restart::{Choice, OptimStart};
use crate::engine::components::Components;
use crate::engine::records::{ArmRecord, ProbeRecord, RoundRecord};
use crate::engine::schedule::Probe;
use crate::engine::state::{RunState, Score};
use crate::error::Result;
use crate::gradient::{GradientConfig, LrSchedule};
use crate::mentor::ScoredPrompt;

/// Seeds the probe's generators apart from the run's own (which the probe never draws from).
const PROBE_SEED: u64 = 0x7072_6f62_6521;

/// A generator of the probe of `round`: `stream` is the rung (its batches) or the arm draw.
/// It depends on the task's seed and the round only, so every schedule of a sweep probes on
/// the same batches.
pub fn stream<B: AutodiffBackend>(c: &Components<'_, B>, round: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(c.config.task.seed ^ PROBE_SEED);
    rng.set_stream(((round as u64) << 32) ^ stream);
    rng
}

/// An arm with the scores it got.
struct Running<B: AutodiffBackend> {
    arm: Arm<B>,
    scores: Vec<Score>,
    record: ArmRecord,
}

/// Runs the probe over `arms` (the continuous arm first) and returns the winner as the
/// round's choice; the probe is recorded in `record`.
pub fn probe<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    probe: &Probe,
    arms: Vec<Arm<B>>,
    record: &mut RoundRecord,
    progress: &ProgressBar,
) -> Result<Choice<B>> {
    let round = state.position.round;
    let mut arms: Vec<Running<B>> = arms.into_iter().map(Running::new).collect();
    let (steps_before, evals_before) = (state.step, state.selection_evals);
    let mut alive: Vec<usize> = (0..arms.len()).collect();
    let rungs = probe.rungs();
    for (r, rung) in rungs.iter().enumerate() {
        alive.truncate(rung.arms);
        let batches = stream(c, round, r as u64);
        for &i in &alive {
            let a = &mut arms[i];
            train(
                state,
                c,
                &mut a.arm,
                rung.steps,
                batches.clone(),
                record,
                progress,
            )?;
            let (m, score) = state.contend(c, &a.arm.model);
            a.scores.push(score);
            a.record.rungs.push(m);
        }
        // Stable: among equal scores the earlier arm (the continuous prompt first) stays ahead.
        alive.sort_by(|&x, &y| rank(arms[x].last(), arms[y].last()));
    }
    remember_texts(state, &arms);
    let best = alive[0];
    let winner = if best != 0 && !clears(probe, arms[best].last(), arms[0].last()) {
        0
    } else {
        best
    };
    record.probe = Some(ProbeRecord {
        arms: arms.iter().map(|a| a.record.clone()).collect(),
        winner,
        within_margin: (winner != best).then_some(best),
        gradient_steps: state.step - steps_before,
        selection_evals: state.selection_evals - evals_before,
    });
    let won = arms.swap_remove(winner).arm;
    let from = match won.origin {
        "continuous" => "continuous (probe)".to_string(),
        origin if won.text.is_empty() => format!("{origin} (probe)"),
        origin => format!("{origin}: {}", won.text),
    };
    Ok(Choice {
        model: won.model,
        optim: OptimStart::Own(won.optim),
        from,
    })
}

impl<B: AutodiffBackend> Running<B> {
    fn new(arm: Arm<B>) -> Self {
        let record = ArmRecord {
            origin: arm.origin.into(),
            text: arm.text.clone(),
            rungs: Vec::new(),
        };
        Self {
            arm,
            scores: Vec::new(),
            record,
        }
    }

    /// The score after the last rung it ran (every arm runs the first).
    fn last(&self) -> Score {
        self.scores.last().copied().unwrap_or(Score {
            value: f64::NEG_INFINITY,
            loss: f64::INFINITY,
        })
    }
}

/// Better scores first: the metric, then the lower loss.
fn rank(a: Score, b: Score) -> Ordering {
    (b.value, -b.loss)
        .partial_cmp(&(a.value, -a.loss))
        .unwrap_or(Ordering::Equal)
}

/// Whether `proposal` beats `continuous` by the probe's margin (any strict win when it is 0).
fn clears(probe: &Probe, proposal: Score, continuous: Score) -> bool {
    if probe.margin > 0.0 {
        proposal.value >= continuous.value + probe.margin
    } else {
        proposal.beats(&continuous)
    }
}

/// `steps` gradient steps of `arm` at the peak learning rate, on the batches `rng` draws.
fn train<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    arm: &mut Arm<B>,
    steps: usize,
    mut rng: ChaCha8Rng,
    record: &mut RoundRecord,
    progress: &ProgressBar,
) -> Result<()> {
    if steps == 0 {
        return Ok(());
    }
    let cfg = GradientConfig {
        steps,
        schedule: LrSchedule::Constant,
        keep_best: false,
        record_every: steps,
        ..c.config.task.gradient.clone()
    };
    let stage = c.gradient_stage(&cfg);
    let outcome = stage.run(
        arm.model.clone(),
        &mut arm.optim,
        &mut rng,
        state.step,
        progress,
    )?;
    arm.model = outcome.model;
    state.step += steps;
    record.rollbacks.extend(outcome.rollbacks);
    Ok(())
}

/// The texts of the proposal arms join the pool the mentor is shown, with their first-rung
/// scores (how good a start each was).
fn remember_texts<B: AutodiffBackend>(state: &mut RunState<B>, arms: &[Running<B>]) {
    for a in arms.iter().filter(|a| !a.arm.text.is_empty()) {
        if state.pool.iter().any(|p| p.text == a.arm.text) {
            continue;
        }
        let m = &a.record.rungs[0];
        state.pool.push(ScoredPrompt {
            text: a.arm.text.clone(),
            loss: m.loss,
            accuracy: m.accuracy,
        });
    }
}
