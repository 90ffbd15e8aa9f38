//! Selection: every candidate scored on the selection split (all in one batched pass); the best one, if it beats the
//! continuous prompt, is what the round may restart from.

use burn::tensor::backend::AutodiffBackend;

use super::restart::{Choice, OptimStart};
use super::score::score_texts;
use crate::engine::components::Components;
use crate::engine::records::RoundRecord;
use crate::engine::state::{RunState, Score};
use crate::readout::PromptModel;

/// A candidate prompt that beat the continuous prompt on selection.
pub struct Candidate<B: AutodiffBackend> {
    /// Its score.
    pub score: Score,
    /// Its prompt model (token embeddings of the text, the current head).
    pub model: PromptModel<B>,
    /// The text.
    pub text: String,
}

/// Scores `candidates` and returns the best one that beats `continuous`.
pub fn select<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    record: &mut RoundRecord,
    candidates: Vec<String>,
    continuous: Score,
) -> Option<Candidate<B>> {
    let mut best: Option<Candidate<B>> = None;
    let scored = score_texts(state, c, record, "candidate", &candidates);
    for (text, scored) in candidates.into_iter().zip(scored) {
        let Some((score, model)) = scored else {
            continue;
        };
        state.selection_evals += 1;
        state.consider(score, &model);
        let to_beat = best.as_ref().map_or(continuous, |b| b.score);
        if score.beats(&to_beat) {
            best = Some(Candidate { score, model, text });
        }
    }
    best
}

impl<B: AutodiffBackend> From<Candidate<B>> for Choice<B> {
    fn from(c: Candidate<B>) -> Self {
        Choice {
            model: c.model,
            optim: OptimStart::Fresh,
            from: format!("candidate: {}", c.text),
        }
    }
}
