//! Text prompts scored on the selection split: recorded in the round and in the pool the
//! mentor is shown.

use burn::tensor::backend::AutodiffBackend;

use crate::engine::components::Components;
use crate::engine::records::{RoundRecord, Scored};
use crate::engine::state::{RunState, Score};
use crate::mentor::ScoredPrompt;
use crate::readout::PromptModel;

/// Scores the projected texts the pool has not seen yet.
pub fn score<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    record: &mut RoundRecord,
    texts: Vec<String>,
) {
    for t in texts {
        if state.pool.iter().any(|p| p.text == t) {
            continue;
        }
        score_text(state, c, record, "projected", &t);
    }
}

/// Scores one text prompt (its token embeddings, cycled or cut to the prompt length, with the
/// current head) and records it; `None` when the text has no tokens.
pub fn score_text<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    record: &mut RoundRecord,
    kind: &str,
    text: &str,
) -> Option<(Score, PromptModel<B>)> {
    let len = c.config.task.prompt_len;
    let model = c.space.text_model(text, len, state.model.head.clone())?;
    let (m, score) = c.select_score(&model);
    record.scored.push(Scored {
        kind: kind.into(),
        text: text.into(),
        selection: m,
    });
    state.pool.push(ScoredPrompt {
        text: text.into(),
        loss: m.loss,
        accuracy: m.accuracy,
    });
    Some((score, model))
}
