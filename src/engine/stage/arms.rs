//! The arms of a round's probe: the continuous prompt with its optimizer state, then the
//! proposals from the schedule's source — the mentor's candidates, random vocabulary, the
//! round's projected texts, or copies of the continuous prompt — each with a fresh optimizer.
//! A source that yields fewer distinct prompts than `proposals` is filled with random
//! vocabulary (recorded as `random-fill`), so every probe spends exactly its budget.

use burn::tensor::backend::AutodiffBackend;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::probe::stream;
use super::sample::sample;
use crate::engine::components::Components;
use crate::engine::schedule::{ArmSource, Probe};
use crate::engine::state::RunState;
use crate::gradient::PromptOptimizer;
use crate::prompt::SoftPrompt;
use crate::readout::PromptModel;

/// A starting point in a probe.
pub struct Arm<B: AutodiffBackend> {
    /// Where it came from (see [`crate::engine::records::ArmRecord::origin`]).
    pub origin: &'static str,
    /// Its starting text (empty for the continuous prompt and its copies).
    pub text: String,
    /// Tokens of the starting text in the backbone's vocabulary, before it was cycled or cut
    /// to the prompt's length (proposals from a text only).
    pub tokens: Option<usize>,
    /// The prompt, as trained so far.
    pub model: PromptModel<B>,
    /// Its own optimizer state.
    pub optim: PromptOptimizer<B>,
}

/// Every arm origin ([`crate::engine::records::ArmRecord::origin`]).
const ORIGINS: &[&str] = &[
    "continuous",
    "mentor",
    "random",
    "random-fill",
    "projected",
    "restart",
];

/// The origin named `name`, as arms carry it; `None` for a name no arm has.
pub fn origin(name: &str) -> Option<&'static str> {
    ORIGINS.iter().copied().find(|o| *o == name)
}

/// Stream of the generator that draws random arms (the batch streams are the rungs').
const ARM_STREAM: u64 = u64::MAX;

/// The round's arms: the continuous prompt first (it takes the run's optimizer state), then
/// `probe.drawn()` proposals (`proposals`, or as many as its screen scores).
pub fn arms<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    probe: &Probe,
    candidates: &[String],
) -> Vec<Arm<B>> {
    let optim = std::mem::replace(&mut state.optim, c.fresh_optimizer());
    let mut arms = vec![Arm {
        origin: "continuous",
        text: String::new(),
        tokens: None,
        model: state.model.clone(),
        optim,
    }];
    let want = 1 + probe.drawn();
    let texts: Vec<String> = match probe.arms {
        ArmSource::Mentor => candidates.to_vec(),
        ArmSource::Projected => sample(&state.round_points, probe.drawn(), &c.config.task.init),
        ArmSource::Random => Vec::new(),
        ArmSource::Restart => {
            while arms.len() < want {
                arms.push(Arm {
                    origin: "restart",
                    text: String::new(),
                    tokens: None,
                    model: state.model.clone(),
                    optim: c.fresh_optimizer(),
                });
            }
            Vec::new()
        }
    };
    let origin = match probe.arms {
        ArmSource::Mentor => "mentor",
        _ => "projected",
    };
    for text in texts {
        if arms.len() == want || arms.iter().any(|a| a.text == text) {
            continue;
        }
        let head = state.model.head.clone();
        let ids = c.space.vocab.encode_text(&text);
        if let Some(model) = c.space.ids_model(&ids, c.config.task.prompt_len, head) {
            arms.push(Arm {
                origin,
                tokens: Some(ids.len()),
                text,
                model,
                optim: c.fresh_optimizer(),
            });
        }
    }
    let fill = match probe.arms {
        ArmSource::Random => "random",
        _ => "random-fill",
    };
    let mut rng = stream(c, state.position.round, ARM_STREAM);
    while arms.len() < want {
        arms.push(random_arm(state, c, &mut rng, fill));
    }
    arms
}

/// A prompt of random regular vocabulary tokens.
fn random_arm<B: AutodiffBackend>(
    state: &RunState<B>,
    c: &Components<'_, B>,
    rng: &mut ChaCha8Rng,
    origin: &'static str,
) -> Arm<B> {
    let regular = c.space.vocab.regular_token_ids();
    let ids: Vec<u32> = (0..c.config.task.prompt_len)
        .map(|_| regular[rng.random_range(0..regular.len())])
        .collect();
    Arm {
        origin,
        text: c.space.decode(&ids),
        tokens: None,
        model: PromptModel {
            prompt: SoftPrompt::from_tensor(SoftPrompt::token_rows(&c.space.table, &ids)),
            head: state.model.head.clone(),
        },
        optim: c.fresh_optimizer(),
    }
}
