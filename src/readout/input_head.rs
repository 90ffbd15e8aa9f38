//! Lester-style readout: the prompt is spliced after `[CLS]` before the input tokens, the
//! encoder's output is mean pooled and a trainable linear head gives the logits.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::batch::{per_row, split_rows};
use super::{EncodedData, Head, PromptModel, Readout, SplitName};
use crate::backbone::Backbone;

/// The input-prompt + head readout. Its models must carry a head ([`InputHeadReadout::init_head`]);
/// `logits` panics on a model without one (a programming error, not a user input).
#[derive(Module, Debug)]
pub struct InputHeadReadout<B: Backend> {
    backbone: Backbone<B>,
    #[module(skip)]
    data: EncodedData,
    max_len: usize,
}

impl<B: Backend> InputHeadReadout<B> {
    /// Builds the readout.
    pub fn new(backbone: Backbone<B>, data: EncodedData, max_len: usize) -> Self {
        Self {
            backbone,
            data,
            max_len,
        }
    }

    /// A freshly initialised head for this readout's classes.
    pub fn init_head(&self, rng: &mut impl rand::Rng) -> Head<B> {
        Head::init(
            self.backbone.encoder.hidden_size(),
            self.data.num_classes(),
            rng,
            &self.backbone.device(),
        )
    }

    /// The backbone.
    pub fn backbone(&self) -> &Backbone<B> {
        &self.backbone
    }
}

/// The head of a model of this readout.
fn head<B: Backend>(model: &PromptModel<B>) -> &Head<B> {
    model
        .head
        .as_ref()
        .expect("the input-head readout needs a model with a head (InputHeadReadout::init_head)")
}

impl<B: Backend> Readout<B> for InputHeadReadout<B> {
    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        let seqs = self.data.split(split).tokens_of(idx);
        let pooled = self
            .backbone
            .embed_with_prompt(model.prompt.rows(), &seqs, self.max_len);
        head(model).forward(pooled)
    }

    /// The examples under every prompt in one encoder pass (`K·n` rows), each prompt's rows
    /// through its own head.
    fn logits_stacked(
        &self,
        prompts: Tensor<B, 3>,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Option<Vec<Tensor<B, 2>>> {
        let seqs = self.data.split(split).tokens_of(idx).repeat(models.len());
        let pooled =
            self.backbone
                .embed_with_prompts(per_row(prompts, idx.len()), &seqs, self.max_len);
        let each = split_rows(pooled, models.len())
            .into_iter()
            .zip(models)
            .map(|(pooled, m)| head(m).forward(pooled))
            .collect();
        Some(each)
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }
}
