//! Where the next round starts: the best candidate, the continuous prompt, or a random prompt
//! (and, before the final stage of random restarts, the best prompt so far).

use burn::tensor::backend::AutodiffBackend;

use super::select::Candidate;
use crate::engine::components::Components;
use crate::engine::records::RoundRecord;
use crate::engine::schedule::Restart;
use crate::engine::state::RunState;
use crate::error::Result;
use crate::prompt::{PromptInit, SoftPrompt};
use crate::readout::PromptModel;

impl Restart {
    /// Sets the prompt the next round starts from and records it.
    pub fn apply<B: AutodiffBackend>(
        self,
        state: &mut RunState<B>,
        c: &Components<'_, B>,
        best: Option<Candidate<B>>,
        record: &mut RoundRecord,
    ) -> Result<()> {
        match self {
            Restart::Continue => {}
            Restart::Best => {
                if let Some(candidate) = best {
                    state.model = candidate.model;
                    record.restart_from = format!("candidate: {}", candidate.text);
                    state.optim = c.fresh_optimizer();
                }
            }
            Restart::Random => {
                let prompt = SoftPrompt::init(
                    &PromptInit::RandomVocab,
                    c.config.task.prompt_len,
                    &c.space.table,
                    c.space.vocab.as_ref(),
                    &mut state.rng,
                )?;
                state.model = PromptModel {
                    prompt,
                    head: state.model.head.clone(),
                };
                record.restart_from = "random vocabulary".into();
                if state.position.round + 1 == c.config.schedule.rounds {
                    // The final stage continues from the best prompt of all rounds.
                    if let Some(kept) = &state.best {
                        state.model = PromptModel {
                            prompt: SoftPrompt::from_tensor(kept.model.prompt.rows()),
                            head: kept.model.head.clone(),
                        };
                        record.restart_from = "best so far".into();
                    }
                }
                state.optim = c.fresh_optimizer();
            }
        }
        Ok(())
    }
}
