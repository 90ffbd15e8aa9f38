//! Lester-style readout: the prompt is spliced after `[CLS]` before the input tokens, the
//! encoder's output is mean pooled and a trainable linear head gives the logits.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::batch::{per_row, split_rows};
use super::host_loss::{affine, affine_input_gradient, cross_entropy_host, host, HostLoss};
use super::pooled_pass::PooledPass;
use super::{cross_entropy, EncodedData, Head, PromptModel, Readout, SplitName};
use crate::backbone::{Backbone, FrozenEncoder};

/// The input-prompt + head readout. Its models must carry a head ([`InputHeadReadout::init_head`]);
/// `logits` panics on a model without one (a programming error, not a user input).
#[derive(Module, Debug)]
pub struct InputHeadReadout<B: Backend> {
    backbone: Backbone<B>,
    #[module(skip)]
    data: EncodedData,
    max_len: usize,
    /// The encoder's layers on the host, for the training loss on a CPU backend.
    #[module(skip)]
    frozen: Option<Arc<FrozenEncoder>>,
}

impl<B: Backend> InputHeadReadout<B> {
    /// Builds the readout.
    pub fn new(backbone: Backbone<B>, data: EncodedData, max_len: usize) -> Self {
        Self {
            backbone,
            data,
            max_len,
            frozen: None,
        }
    }

    /// The readout computing its training loss and gradients on the host with `frozen` (the
    /// same encoder's layers): for CPU backends, where it is several times faster.
    pub fn with_frozen(mut self, frozen: Arc<FrozenEncoder>) -> Self {
        self.frozen = Some(frozen);
        self
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

    /// On the host encoder when it is attached: the taped pass and mean pool, the head's
    /// cross-entropy and its gradient at the pooled rows, backward to the prompt rows; the
    /// head's gradients come from the surrogate's term `CE(head(pooled))`, pooled constant.
    fn host_loss(
        &self,
        model: &PromptModel<B>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<HostLoss<B>> {
        let frozen = self.frozen.as_deref()?;
        let (prompt, head) = (model.prompt.rows(), head(model));
        let [l, d] = prompt.dims();
        let seqs = self.data.split(split).tokens_of(idx);
        let prompts = prompt
            .clone()
            .detach()
            .unsqueeze::<3>()
            .expand([seqs.len(), l, d]);
        let (inputs, batch) = self.backbone.prompt_inputs(prompts, &seqs, self.max_len);
        let pass = PooledPass::forward(frozen, &host(inputs), batch.len, batch.lens());
        let (w, b) = (host(head.weight.val()), host(head.bias.val()));
        let classes = b.len();
        let labels = self.data.split(split).labels_of(idx);
        let logits = affine(pass.pooled(), &w, Some(&b), d, classes);
        let (loss, dz) = cross_entropy_host(&logits, &labels, classes);
        let d_pooled = affine_input_gradient(&dz, &w, d, classes);
        let pooled = TensorData::new(pass.pooled().to_vec(), [idx.len(), d]);
        let grad = pass.prompt_gradient(frozen, &d_pooled, l);
        let pooled = Tensor::from_data(pooled, &prompt.device());
        let head_term = cross_entropy(head.forward(pooled), &labels);
        Some(HostLoss::of_prompt(loss, prompt, grad).plus(head_term))
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }
}
