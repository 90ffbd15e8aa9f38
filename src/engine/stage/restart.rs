//! Where the next round starts: what the round chose (the best candidate, the probe's winner,
//! the reference rule's first candidate), the continuous prompt, or a random prompt (and,
//! before the final stage of random restarts, the best prompt so far).

use burn::module::Param;
use burn::tensor::backend::AutodiffBackend;

use crate::engine::components::Components;
use crate::engine::records::RoundRecord;
use crate::engine::schedule::Restart;
use crate::engine::state::RunState;
use crate::error::Result;
use crate::gradient::PromptOptimizer;
use crate::prompt::{PromptInit, SoftPrompt};
use crate::readout::PromptModel;

/// The optimizer state a restart continues with.
pub enum OptimStart<B: AutodiffBackend> {
    /// A fresh AdamW state.
    Fresh,
    /// The run's current state (the prompt takes over the current prompt's parameter ids).
    Keep,
    /// The chosen arm's own state.
    Own(PromptOptimizer<B>),
}

/// What a round chose to restart from.
pub struct Choice<B: AutodiffBackend> {
    /// The prompt (and head).
    pub model: PromptModel<B>,
    /// Its optimizer state.
    pub optim: OptimStart<B>,
    /// Where it came from, as recorded.
    pub from: String,
}

impl Restart {
    /// Sets the prompt the next round starts from and records it.
    pub fn apply<B: AutodiffBackend>(
        self,
        state: &mut RunState<B>,
        c: &Components<'_, B>,
        choice: Option<Choice<B>>,
        record: &mut RoundRecord,
    ) -> Result<()> {
        match self {
            Restart::Continue => {}
            Restart::Best | Restart::Probe | Restart::Reference => {
                if let Some(choice) = choice {
                    take(state, c, choice, record);
                }
            }
            Restart::Random => random(state, c, record)?,
        }
        Ok(())
    }
}

/// Makes `choice` the run's prompt and optimizer.
fn take<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    choice: Choice<B>,
    record: &mut RoundRecord,
) {
    record.restart_from = choice.from;
    match choice.optim {
        OptimStart::Fresh => {
            state.model = choice.model;
            state.optim = c.fresh_optimizer();
        }
        OptimStart::Own(optim) => {
            state.model = choice.model;
            state.optim = optim;
        }
        OptimStart::Keep => {
            // AdamW's state is keyed by parameter id: the new values take the old ids.
            let old = &state.model;
            let prompt = SoftPrompt {
                vectors: Param::initialized(
                    old.prompt.vectors.id,
                    choice.model.prompt.rows().detach().require_grad(),
                ),
            };
            state.model = PromptModel {
                prompt,
                head: old.head.clone(),
            };
        }
    }
}

/// A fresh random-vocabulary prompt; before the final stage, the best prompt so far.
fn random<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    record: &mut RoundRecord,
) -> Result<()> {
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
    Ok(())
}
