//! Lester-style readout: the prompt is spliced after `[CLS]` before the input tokens, the
//! encoder's output is mean pooled and a trainable linear head gives the logits.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{EncodedData, PromptModel, Readout, SplitName};
use crate::backbone::Backbone;

/// The input-prompt + head readout.
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

    /// The backbone.
    pub fn backbone(&self) -> &Backbone<B> {
        &self.backbone
    }
}

impl<B: Backend> Readout<B> for InputHeadReadout<B> {
    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        let seqs = self.data.split(split).tokens_of(idx);
        let pooled = self
            .backbone
            .embed_with_prompt(model.prompt.rows(), &seqs, self.max_len);
        match &model.head {
            Some(head) => head.forward(pooled),
            // Without a head the readout is undefined; callers build the model with one. Fall
            // back to zero logits so evaluation of a mis-built model reports chance, not a panic.
            None => Tensor::zeros([idx.len(), self.data.num_classes()], &pooled.device()),
        }
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }
}
