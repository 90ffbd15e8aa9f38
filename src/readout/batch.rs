//! Several prompts scored in one pass: their rows stacked along the batch, model-major (the
//! rows of prompt 0 for every example, then prompt 1's, …), and the logits split back per
//! prompt; the tally of a prompt's scored chunks.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{loss_and_predictions, Metrics, PromptModel, Readout, SplitName};

/// Each model's [`Readout::logits`], one call per model: what a readout does when its prompts
/// cannot share a pass.
pub fn each_separately<B: Backend, R: Readout<B> + ?Sized>(
    readout: &R,
    models: &[PromptModel<B>],
    split: SplitName,
    idx: &[usize],
) -> Vec<Tensor<B, 2>> {
    models
        .iter()
        .map(|m| readout.logits(m, split, idx))
        .collect()
}

/// The prompts of `models` stacked `[K, L, d]`; `None` when there are none, or their shapes
/// differ (then they cannot share a pass).
pub fn stacked_prompts<B: Backend>(models: &[PromptModel<B>]) -> Option<Tensor<B, 3>> {
    let first = models.first()?.prompt.rows().dims();
    if models.iter().any(|m| m.prompt.rows().dims() != first) {
        return None;
    }
    Some(Tensor::stack(
        models.iter().map(|m| m.prompt.rows()).collect(),
        0,
    ))
}

/// `[K, L, d]` to `[K·n, L, d]`: prompt `k`'s rows for each of `n` sequences, model-major.
pub fn per_row<B: Backend>(prompts: Tensor<B, 3>, n: usize) -> Tensor<B, 3> {
    let [k, l, d] = prompts.dims();
    prompts
        .unsqueeze_dim::<4>(1)
        .expand([k, n, l, d])
        .reshape([k * n, l, d])
}

/// `[K·n, C]` logits of a model-major batch back to `K` tensors `[n, C]`.
pub fn split_rows<B: Backend>(logits: Tensor<B, 2>, k: usize) -> Vec<Tensor<B, 2>> {
    let [rows, c] = logits.dims();
    let n = rows / k.max(1);
    (0..k)
        .map(|i| logits.clone().slice([i * n..(i + 1) * n, 0..c]))
        .collect()
}

/// The confusion matrix and summed loss of the chunks scored under one prompt.
#[derive(Debug, Clone)]
pub struct Tally {
    /// `confusion[label][prediction]`.
    confusion: Vec<Vec<usize>>,
    loss_sum: f64,
}

impl Tally {
    /// An empty tally over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            confusion: vec![vec![0; classes]; classes],
            loss_sum: 0.0,
        }
    }

    /// Adds a chunk's logits `[n, C]` against its labels.
    pub fn add<B: Backend>(&mut self, logits: Tensor<B, 2>, labels: &[usize]) {
        let k = self.confusion.len();
        let (loss, predictions) = loss_and_predictions(logits, labels);
        self.loss_sum += loss * labels.len() as f64;
        for (&label, &p) in labels.iter().zip(&predictions) {
            self.confusion[label][p.min(k.saturating_sub(1))] += 1;
        }
    }

    /// The metrics of everything added.
    pub fn metrics(&self) -> Metrics {
        Metrics::from_confusion(&self.confusion, self.loss_sum)
    }
}
