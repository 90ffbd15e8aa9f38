//! The one value a run mutates: the prompt, its optimizer, the RNG, where the run stands, the
//! best prompt so far and everything recorded. A checkpoint is this value serialized.

use burn::tensor::backend::AutodiffBackend;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{CheckpointState, Phase, RngState};
use super::records::RoundRecord;
use crate::gradient::{PromptOptimizer, Rollback, TrajectoryPoint};
use crate::mentor::{ScoredPrompt, Usage};
use crate::readout::{Metrics, PromptModel};
use crate::task::Metric;

/// A prompt's standing on the selection split: the task's metric, then the lower loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The task metric's value.
    pub value: f64,
    /// Mean cross-entropy.
    pub loss: f64,
}

impl Score {
    /// The score of `m` under `metric`.
    pub fn of(metric: Metric, m: &Metrics) -> Self {
        Self {
            value: metric.of(m),
            loss: m.loss,
        }
    }

    /// Whether `self` is strictly better than `other`.
    pub fn beats(&self, other: &Score) -> bool {
        (self.value, -self.loss) > (other.value, -other.loss)
    }
}

/// The best prompt seen on the selection split over the whole run.
#[derive(Debug)]
pub struct Best<B: AutodiffBackend> {
    /// Its score.
    pub score: Score,
    /// The prompt (detached).
    pub model: PromptModel<B>,
}

/// Where a run stands: the round it is in and whether that round's gradient stage is done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// The round (the final stage is round `rounds`).
    pub round: usize,
    /// The round's gradient stage finished (its mentor stage had not).
    pub gradient_done: bool,
}

/// Everything a run carries from stage to stage.
pub struct RunState<B: AutodiffBackend> {
    /// The prompt (and head) being tuned.
    pub model: PromptModel<B>,
    /// AdamW state of the current stretch (fresh after a restart).
    pub optim: PromptOptimizer<B>,
    /// The run's one generator: batches, random restarts.
    pub rng: ChaCha8Rng,
    /// Where the run stands.
    pub position: Position,
    /// Gradient steps taken (rolled-back ones and probes included).
    pub step: usize,
    /// Scorings of the selection split that could choose a prompt.
    pub selection_evals: usize,
    /// The best prompt so far on selection.
    pub best: Option<Best<B>>,
    /// The whole trajectory.
    pub trajectory: Vec<TrajectoryPoint>,
    /// The current round's trajectory (what the mentor stage samples).
    pub round_points: Vec<TrajectoryPoint>,
    /// Divergences the current round's gradient stage rolled back.
    pub round_rollbacks: Vec<Rollback>,
    /// Finished rounds.
    pub rounds: Vec<RoundRecord>,
    /// Every text prompt scored so far (what the mentor is shown).
    pub pool: Vec<ScoredPrompt>,
    /// Mentor calls and tokens this run spent.
    pub usage: Usage,
    /// Checkpoints written so far.
    pub checkpoints: usize,
    /// The probe under way, between its rungs (what a checkpoint inside a probe holds).
    pub probe: Option<super::stage::probe::PendingProbe<B>>,
}

impl<B: AutodiffBackend> RunState<B> {
    /// A run at its start.
    pub fn new(model: PromptModel<B>, optim: PromptOptimizer<B>, rng: ChaCha8Rng) -> Self {
        Self {
            model,
            optim,
            rng,
            position: Position::default(),
            step: 0,
            selection_evals: 0,
            best: None,
            trajectory: Vec::new(),
            round_points: Vec::new(),
            round_rollbacks: Vec::new(),
            rounds: Vec::new(),
            pool: Vec::new(),
            usage: Usage::default(),
            checkpoints: 0,
            probe: None,
        }
    }

    /// Keeps `model` as the best so far when its selection metrics beat the best.
    pub fn consider(&mut self, score: Score, model: &PromptModel<B>) {
        if self.best.as_ref().is_none_or(|b| score.beats(&b.score)) {
            self.best = Some(Best {
                score,
                model: model.detached(),
            });
        }
    }

    /// Scores `model` on the selection split as a contender (counted in `selection_evals`) and
    /// keeps it when it is the best so far.
    pub fn contend(
        &mut self,
        c: &super::components::Components<'_, B>,
        model: &PromptModel<B>,
    ) -> (Metrics, Score) {
        let (m, score) = c.select_score(model);
        self.selection_evals += 1;
        self.consider(score, model);
        (m, score)
    }

    /// Adds the usage of one mentor call.
    pub fn spend(&mut self, before: Usage, after: Usage) {
        self.usage.calls += after.calls.saturating_sub(before.calls);
        self.usage.tokens += after.tokens.saturating_sub(before.tokens);
    }

    /// Closes the current round with its record; the next round starts.
    pub fn finish_round(&mut self, record: RoundRecord) {
        self.rounds.push(record);
        self.round_points.clear();
        self.round_rollbacks.clear();
        self.position = Position {
            round: self.position.round + 1,
            gradient_done: false,
        };
    }

    /// Everything but the tensors, as written to `state.json`; `phase` names the stage just
    /// finished.
    pub fn snapshot(&self, phase: Phase) -> CheckpointState {
        let round = match phase {
            Phase::GradientDone | Phase::Probe => self.position.round,
            // The round is closed: the record names the round that finished.
            Phase::RoundDone => self.position.round.saturating_sub(1),
        };
        CheckpointState {
            round,
            phase,
            step: self.step,
            selection_evals: self.selection_evals,
            trajectory: self.trajectory.clone(),
            round_points: self.round_points.clone(),
            round_rollbacks: self.round_rollbacks.clone(),
            rounds: self.rounds.clone(),
            pool: self.pool.clone(),
            overall: self.best.as_ref().map(|b| (b.score.value, b.score.loss)),
            rng: RngState::of(&self.rng),
            usage: self.usage,
            count: self.checkpoints,
            probe: self.probe.as_ref().map(|p| p.progress.clone()),
        }
    }

    /// The state a checkpoint holds, with its tensors.
    pub fn restore(
        cp: CheckpointState,
        model: PromptModel<B>,
        optim: PromptOptimizer<B>,
        best: Option<PromptModel<B>>,
        arms: Vec<super::stage::arms::Arm<B>>,
    ) -> Self {
        let position = match cp.phase {
            Phase::GradientDone | Phase::Probe => Position {
                round: cp.round,
                gradient_done: true,
            },
            Phase::RoundDone => Position {
                round: cp.round + 1,
                gradient_done: false,
            },
        };
        let best = match (cp.overall, best) {
            (Some((value, loss)), Some(model)) => Some(Best {
                score: Score { value, loss },
                model,
            }),
            _ => None,
        };
        Self {
            model,
            optim,
            rng: cp.rng.restore(),
            position,
            step: cp.step,
            selection_evals: cp.selection_evals,
            best,
            trajectory: cp.trajectory,
            round_points: cp.round_points,
            round_rollbacks: cp.round_rollbacks,
            rounds: cp.rounds,
            pool: cp.pool,
            usage: cp.usage,
            checkpoints: cp.count,
            probe: cp
                .probe
                .map(|progress| super::stage::probe::PendingProbe { progress, arms }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(accuracy: f64, macro_f1: f64, loss: f64) -> Metrics {
        Metrics {
            loss,
            accuracy,
            macro_f1,
            mcc: 0.0,
            count: 10,
        }
    }

    /// Where accuracy and macro-F1 disagree, the task's metric decides; on a tie of the metric
    /// the lower loss wins; equal scores beat neither way.
    #[test]
    fn scores_rank_by_the_tasks_metric_then_the_lower_loss() {
        // `a` is more accurate, `b` has the better macro-F1 (and the higher loss).
        let a = metrics(0.80, 0.50, 0.40);
        let b = metrics(0.70, 0.65, 0.60);
        let by = |metric, m: &Metrics| Score::of(metric, m);
        assert!(by(Metric::Accuracy, &a).beats(&by(Metric::Accuracy, &b)));
        assert!(!by(Metric::Accuracy, &b).beats(&by(Metric::Accuracy, &a)));
        assert!(by(Metric::MacroF1, &b).beats(&by(Metric::MacroF1, &a)));
        assert!(!by(Metric::MacroF1, &a).beats(&by(Metric::MacroF1, &b)));
        assert_eq!(by(Metric::MacroF1, &b).value, 0.65);
        // A tie on the metric: the lower loss wins.
        let c = metrics(0.80, 0.60, 0.30);
        assert!(by(Metric::Accuracy, &c).beats(&by(Metric::Accuracy, &a)));
        assert!(!by(Metric::Accuracy, &a).beats(&by(Metric::Accuracy, &c)));
        // Equal scores: neither beats the other.
        let s = by(Metric::Accuracy, &a);
        assert!(!s.beats(&s));
    }
}
