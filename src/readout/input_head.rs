//! Lester-style readout: the prompt is spliced after `[CLS]` before the input tokens, the
//! encoder's output is mean pooled and a trainable linear head gives the logits.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::batch::{per_row, split_rows};
use super::host_loss::{affine, affine_input_gradient, cross_entropy_host, host, HostLoss};
use super::pooled_pass::{HostInputs, PooledPass};
use super::{EncodedData, Head, PromptModel, Readout, SplitName};
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
    /// through its own head; on the host encoder when it is attached (scoring never
    /// differentiates these logits).
    fn logits_stacked(
        &self,
        prompts: Tensor<B, 3>,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Option<Vec<Tensor<B, 2>>> {
        let seqs = self.data.split(split).tokens_of(idx).repeat(models.len());
        let prompts = per_row(prompts, idx.len());
        if let Some(frozen) = self.frozen.as_deref() {
            let inputs = HostInputs::new(&self.backbone, prompts, &seqs, self.max_len);
            let pooled = PooledPass::pooled_only(frozen, &inputs);
            return Some(host_head_logits(
                &pooled,
                models,
                idx.len(),
                frozen.hidden_size(),
            ));
        }
        let pooled = self
            .backbone
            .embed_with_prompts(prompts, &seqs, self.max_len);
        let each = split_rows(pooled, models.len())
            .into_iter()
            .zip(models)
            .map(|(pooled, m)| head(m).forward(pooled))
            .collect();
        Some(each)
    }

    /// On the host encoder when it is attached: the taped pass and mean pool, the head's
    /// cross-entropy, its gradients at the head and at the pooled rows, backward to the prompt
    /// rows.
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
        let inputs = HostInputs::shared(&self.backbone, prompt.clone(), &seqs, self.max_len);
        let pass = PooledPass::forward(frozen, inputs);
        let (w, b) = (host(head.weight.val()), host(head.bias.val()));
        let classes = b.len();
        let labels = self.data.split(split).labels_of(idx);
        let logits = affine(pass.pooled(), &w, Some(&b), d, classes);
        let (loss, dz) = cross_entropy_host(&logits, &labels, classes);
        let d_pooled = affine_input_gradient(&dz, &w, d, classes);
        // The head's gradients: d W = pooledᵀ · dz, d b = Σ dz.
        let mut d_w = vec![0f32; d * classes];
        let mut d_b = vec![0f32; classes];
        for (x, g) in pass.pooled().chunks(d).zip(dz.chunks(classes)) {
            for (row, &xj) in d_w.chunks_mut(classes).zip(x) {
                row.iter_mut().zip(g).for_each(|(r, g)| *r += xj * g);
            }
            d_b.iter_mut().zip(g).for_each(|(b, g)| *b += g);
        }
        let grad = pass.prompt_gradient(frozen, &d_pooled, l);
        Some(
            HostLoss::of_prompt(loss, prompt, grad)
                .plus(head.weight.val(), d_w)
                .plus(head.bias.val(), d_b),
        )
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }
}

/// Each model's head on its `n` rows of `pooled: [K·n, d]` (model-major), on the host.
fn host_head_logits<B: Backend>(
    pooled: &[f32],
    models: &[PromptModel<B>],
    n: usize,
    d: usize,
) -> Vec<Tensor<B, 2>> {
    (models.iter().enumerate())
        .map(|(k, m)| {
            let rows = &pooled[k * n * d..][..n * d];
            let h = head(m);
            let (w, b) = (host(h.weight.val()), host(h.bias.val()));
            let logits = affine(rows, &w, Some(&b), d, b.len());
            let device = h.bias.val().device();
            Tensor::from_data(TensorData::new(logits, [n, b.len()]), &device)
        })
        .collect()
}
