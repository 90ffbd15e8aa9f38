//! The probe screen's scoring as a workload: 16 text prompts scored on 100 selection examples
//! of `mr` (the screen's defaults), in one batched pass ([`Readout::evaluate_each_on`]) or one
//! pass per prompt ([`Readout::evaluate_on`]), so that `tandem bench` and criterion time the
//! two side by side. Scoring runs on the inner backend, as the engine's does.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use super::workload::Prepared;
use crate::assets::Assets;
use crate::engine::TaskSetup;
use crate::error::Result;
use crate::readout::{PromptModel, Readout, ReadoutConfig, SplitName};

/// Prompts one screen scores (the probe's default `screen.candidates`).
pub const SCREEN_PROMPTS: usize = 16;
/// Examples each is scored on (the probe's default `screen.examples`).
pub const SCREEN_EXAMPLES: usize = 100;

/// The readout a scoring workload runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoringReadout {
    /// `mr`'s own: class prompts against MiniLM's cached sample embeddings.
    ClassPrompt,
    /// `mr` with the input prompt and a head on MiniLM.
    InputHead,
    /// `mr-decoder`: SmolLM2-135M's class-word logits, the prompt after the cached input
    /// (scored on the host decoder, as a CPU run does).
    Verbalizer,
}

impl ScoringReadout {
    /// Name used in bench ids (readout and backbone).
    pub fn name(self) -> &'static str {
        match self {
            ScoringReadout::ClassPrompt => "class_prompt/minilm",
            ScoringReadout::InputHead => "input_head/minilm",
            ScoringReadout::Verbalizer => "verbalizer/smollm2",
        }
    }
}

/// How a scoring workload scores its prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// All prompts in one batched pass per chunk of examples.
    Batched,
    /// One pass per prompt.
    Separate,
}

impl Scoring {
    /// Name used in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Scoring::Batched => "batched",
            Scoring::Separate => "separate",
        }
    }
}

/// Sets up `mr` for `readout` and scores [`SCREEN_PROMPTS`] text prompts on its first
/// [`SCREEN_EXAMPLES`] selection examples per iteration.
pub fn scoring<'a, B: AutodiffBackend>(
    readout: ScoringReadout,
    scoring: Scoring,
    assets: &'a Assets,
    device: &'a B::Device,
) -> Result<Prepared<'a>> {
    let mut config = crate::task::lookup("mr")?.tune_config();
    match readout {
        ScoringReadout::ClassPrompt => {}
        ScoringReadout::InputHead => config.readout = ReadoutConfig::InputHead,
        ScoringReadout::Verbalizer => {
            config = crate::task::lookup("mr-decoder")?.tune_config();
        }
    }
    config.split.max_selection = SCREEN_EXAMPLES;
    let setup = TaskSetup::<B>::new(&config, assets, device)?;
    let head = setup.model.head.clone();
    let models: Vec<PromptModel<B::InnerBackend>> = (0..SCREEN_PROMPTS)
        .filter_map(|i| {
            let text = format!("review {i} of a film, its sentiment is");
            setup
                .space
                .text_model(&text, config.prompt_len, head.clone())
        })
        .map(|m| m.valid())
        .collect();
    let readout = setup.readout.valid();
    let idx: Vec<usize> = (0..readout.data().selection.len()).collect();
    Ok(Prepared::new(move || {
        // The metrics are read back to the host: each iteration is synchronised.
        let metrics = match scoring {
            Scoring::Batched => readout.evaluate_each_on(&models, SplitName::Selection, &idx),
            Scoring::Separate => models
                .iter()
                .map(|m| readout.evaluate_on(m, SplitName::Selection, &idx))
                .collect(),
        };
        std::hint::black_box(metrics);
        Ok(None)
    }))
}
