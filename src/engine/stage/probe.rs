//! The probe: proposals judged as starting points. Every arm takes the rung's gradient steps
//! from its own start — all arms of a rung on the same batches — and is scored on the
//! selection split; successive halving keeps the best arms for the next, longer rung. The
//! winner (a proposal only when it beats the continuous arm by the probe's margin) is what the
//! round restarts from, with its own optimizer state. Every step and scoring is counted.
//! A probe under way lives in the run state ([`PendingProbe`]): the run checkpoints it when
//! it starts (the mentor's reply in hand) and after each rung but the last.

use std::cmp::Ordering;

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::arms::Arm;
use super::restart::{Choice, OptimStart};
use crate::engine::components::Components;
use crate::engine::records::{ArmRecord, ProbeProgress, ProbeRecord, RoundRecord};
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

/// A probe under way: how far it got and its arms as trained so far (index-aligned). Kept in
/// the run state between rungs, so that a checkpoint inside a probe holds it.
pub struct PendingProbe<B: AutodiffBackend> {
    /// The record and standings.
    pub progress: ProbeProgress,
    /// The arms.
    pub arms: Vec<Arm<B>>,
}

/// A probe over `arms` (the continuous arm first), continuing the round's `record`.
pub fn start<B: AutodiffBackend>(
    state: &RunState<B>,
    record: RoundRecord,
    arms: Vec<Arm<B>>,
) -> PendingProbe<B> {
    let progress = ProbeProgress {
        record,
        arms: arms
            .iter()
            .map(|a| ArmRecord {
                origin: a.origin.into(),
                text: a.text.clone(),
                tokens: a.tokens,
                rungs: Vec::new(),
            })
            .collect(),
        alive: (0..arms.len()).collect(),
        rungs_done: 0,
        before: (state.step, state.selection_evals),
    };
    PendingProbe { progress, arms }
}

/// Runs the probe's next rung: the arms still in the running train on the rung's batches and
/// are scored, best first.
pub fn rung<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    probe: &Probe,
    pending: &mut PendingProbe<B>,
    progress: &ProgressBar,
) -> Result<()> {
    let r = pending.progress.rungs_done;
    let Some(rung) = probe.rungs().get(r).copied() else {
        return Ok(());
    };
    let p = &mut pending.progress;
    p.alive.truncate(rung.arms);
    let batches = stream(c, state.position.round, r as u64);
    for &i in &p.alive {
        let arm = &mut pending.arms[i];
        train(
            state,
            c,
            arm,
            rung.steps,
            batches.clone(),
            &mut p.record,
            progress,
        )?;
        let (m, _) = state.contend(c, &arm.model);
        p.arms[i].rungs.push(m);
    }
    // Stable: among equal scores the earlier arm (the continuous prompt first) stays ahead.
    let arms = &p.arms;
    p.alive
        .sort_by(|&x, &y| rank(last(c, &arms[x]), last(c, &arms[y])));
    p.rungs_done += 1;
    Ok(())
}

/// The finished probe's winner as the round's choice, and the round's record with the probe.
pub fn finish<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    probe: &Probe,
    pending: PendingProbe<B>,
) -> (RoundRecord, Choice<B>) {
    let PendingProbe { progress, mut arms } = pending;
    remember_texts(state, &progress.arms);
    let best = progress.alive.first().copied().unwrap_or(0);
    let score = |i: usize| last(c, &progress.arms[i]);
    let winner = if best != 0 && !clears(probe, score(best), score(0)) {
        0
    } else {
        best
    };
    let mut record = progress.record;
    record.probe = Some(ProbeRecord {
        arms: progress.arms,
        winner,
        within_margin: (winner != best).then_some(best),
        gradient_steps: state.step - progress.before.0,
        selection_evals: state.selection_evals - progress.before.1,
    });
    let won = arms.swap_remove(winner);
    let from = match won.origin {
        "continuous" => "continuous (probe)".to_string(),
        origin if won.text.is_empty() => format!("{origin} (probe)"),
        origin => format!("{origin}: {}", won.text),
    };
    let choice = Choice {
        model: won.model,
        optim: OptimStart::Own(won.optim),
        from,
    };
    (record, choice)
}

/// An arm's score after the last rung it ran (every arm runs the first).
fn last<B: AutodiffBackend>(c: &Components<'_, B>, arm: &ArmRecord) -> Score {
    arm.rungs.last().map_or(
        Score {
            value: f64::NEG_INFINITY,
            loss: f64::INFINITY,
        },
        |m| Score::of(c.metric, m),
    )
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
fn remember_texts<B: AutodiffBackend>(state: &mut RunState<B>, arms: &[ArmRecord]) {
    for a in arms.iter().filter(|a| !a.text.is_empty()) {
        let Some(m) = a.rungs.first() else { continue };
        if state.pool.iter().any(|p| p.text == a.text) {
            continue;
        }
        state.pool.push(ScoredPrompt {
            text: a.text.clone(),
            loss: m.loss,
            accuracy: m.accuracy,
        });
    }
}
