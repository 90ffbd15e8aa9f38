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
    let mut unseen: Vec<String> = Vec::new();
    for t in texts {
        if !state.pool.iter().any(|p| p.text == t) && !unseen.contains(&t) {
            unseen.push(t);
        }
    }
    score_texts(state, c, record, "projected", &unseen);
}

/// Scores text prompts (each one's token embeddings, cycled or cut to the prompt length, with
/// the current head) in one batched pass and records them, in order; `None` for a text with
/// no tokens.
pub fn score_texts<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    record: &mut RoundRecord,
    kind: &str,
    texts: &[String],
) -> Vec<Option<(Score, PromptModel<B>)>> {
    let len = c.config.task.prompt_len;
    let models: Vec<Option<PromptModel<B>>> = texts
        .iter()
        .map(|t| c.space.text_model(t, len, state.model.head.clone()))
        .collect();
    let present: Vec<PromptModel<B>> = models.iter().flatten().cloned().collect();
    let mut scores = c.select_scores(&present).into_iter();
    texts
        .iter()
        .zip(models)
        .map(|(text, model)| {
            let model = model?;
            let (m, score) = scores.next()?;
            record.scored.push(Scored {
                kind: kind.into(),
                text: text.clone(),
                selection: m,
            });
            state.pool.push(ScoredPrompt {
                text: text.clone(),
                loss: m.loss,
                accuracy: m.accuracy,
            });
            Some((score, model))
        })
        .collect()
}
