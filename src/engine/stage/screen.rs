//! The probe's screen: when a round draws more proposals than its probe takes, each is scored
//! as it starts (no gradient step) on a subsample of the selection split drawn for the round,
//! all of them in one batched pass, and the best `proposals` enter the probe beside the continuous arm. Every scoring is
//! recorded in the round and counted in the run's `screen_evals`.

use std::cmp::Ordering;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use super::arms::Arm;
use super::probe::stream;
use crate::engine::components::Components;
use crate::engine::records::{RoundRecord, ScreenRecord};
use crate::engine::schedule::Probe;
use crate::engine::state::{RunState, Score};
use crate::readout::{Readout, SplitName};

/// Stream of the generator that draws the screen's subsample (the arms' is `u64::MAX`).
const SCREEN_STREAM: u64 = u64::MAX - 1;

/// The continuous arm and the best `probe.proposals` of the other `arms` on the round's
/// subsample, in the order they were drawn; `arms` unchanged without a screen.
pub fn screen<B: AutodiffBackend>(
    state: &RunState<B>,
    c: &Components<'_, B>,
    probe: &Probe,
    arms: Vec<Arm<B>>,
    record: &mut RoundRecord,
) -> Vec<Arm<B>> {
    let Some(screen) = probe.screen else {
        return arms;
    };
    let idx = subsample(c, state.position.round, screen.examples);
    // The frozen readout on the inner backend once, not once per proposal.
    let readout = c.readout.valid();
    // Every proposal in one batched pass over the subsample.
    let proposals = arms.get(1..).unwrap_or_default();
    let models: Vec<_> = proposals.iter().map(|arm| arm.model.valid()).collect();
    let metrics = readout.evaluate_each_on(&models, SplitName::Selection, &idx);
    let scored: Vec<(usize, Score)> = (proposals.iter().zip(metrics).enumerate())
        .map(|(i, (arm, m))| {
            record.screen.push(ScreenRecord {
                origin: arm.origin.into(),
                text: arm.text.clone(),
                metrics: m,
                kept: false,
            });
            (i + 1, Score::of(c.metric, &m))
        })
        .collect();
    let mut kept: Vec<usize> = best(&scored, probe.proposals);
    kept.sort_unstable();
    for &i in &kept {
        record.screen[i - 1].kept = true;
    }
    arms.into_iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || kept.contains(i))
        .map(|(_, arm)| arm)
        .collect()
}

/// The indices of the `n` best scores, best first; ties keep the earlier drawn.
fn best(scored: &[(usize, Score)], n: usize) -> Vec<usize> {
    let mut order = scored.to_vec();
    order.sort_by(|(_, a), (_, b)| match (a.beats(b), b.beats(a)) {
        (true, _) => Ordering::Less,
        (_, true) => Ordering::Greater,
        _ => Ordering::Equal,
    });
    order.into_iter().take(n).map(|(i, _)| i).collect()
}

/// `n` examples of the selection split drawn for `round` (the whole split when it has no
/// more), ascending: the same for every schedule of a sweep.
fn subsample<B: AutodiffBackend>(c: &Components<'_, B>, round: usize, n: usize) -> Vec<usize> {
    let total = c.readout.data().selection.len();
    let mut rng = stream(c, round, SCREEN_STREAM);
    let mut idx = rand::seq::index::sample(&mut rng, total, n.min(total)).into_vec();
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_come_first_and_ties_keep_the_draw_order() {
        let s = |value, loss| Score { value, loss };
        let scored = [
            (1, s(0.6, 0.7)),
            (2, s(0.7, 0.6)),
            (3, s(0.6, 0.7)),
            (4, s(0.7, 0.5)),
            (5, s(0.5, 0.4)),
        ];
        assert_eq!(best(&scored, 3), [4, 2, 1]);
        assert_eq!(best(&scored, 9), [4, 2, 1, 3, 5]);
        assert!(best(&scored, 0).is_empty());
    }
}
