//! The mean-pooled host pass of an encoder readout: `[CLS] prompt tokens [SEP]` sequences
//! through the taped [`FrozenEncoder`], their real rows averaged, and the backward from the
//! pooled rows down to the prompt rows every sequence shares.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::host_loss::host;
use crate::backbone::{Backbone, EncoderTape, FrozenEncoder};

/// The input embeddings `[b, t, d]` of `[CLS] prompt seq [SEP]` sequences on the host, and
/// each sequence's real length.
pub struct HostInputs {
    x: Vec<f32>,
    t: usize,
    lens: Vec<usize>,
}

impl HostInputs {
    /// `prompts[i]` (`[n, L, d]`, detached: the host forms the gradient) spliced into `seqs[i]`.
    pub fn new<B: Backend>(
        backbone: &Backbone<B>,
        prompts: Tensor<B, 3>,
        seqs: &[&[u32]],
        max_len: usize,
    ) -> Self {
        let (inputs, batch) = backbone.prompt_inputs(prompts.detach(), seqs, max_len);
        Self {
            x: host(inputs),
            t: batch.len,
            lens: batch.lens(),
        }
    }

    /// One prompt `[L, d]` spliced into every sequence.
    pub fn shared<B: Backend>(
        backbone: &Backbone<B>,
        prompt: Tensor<B, 2>,
        seqs: &[&[u32]],
        max_len: usize,
    ) -> Self {
        let [l, d] = prompt.dims();
        let prompts = prompt.unsqueeze::<3>().expand([seqs.len(), l, d]);
        Self::new(backbone, prompts, seqs, max_len)
    }
}

/// One taped pass and its pooled rows.
pub struct PooledPass {
    tape: EncoderTape,
    /// Padded length of the sequences.
    t: usize,
    lens: Vec<usize>,
    /// Mean of each sequence's real hidden rows, `[b, d]`.
    pooled: Vec<f32>,
}

impl PooledPass {
    /// The taped pass over `inputs`.
    pub fn forward(frozen: &FrozenEncoder, inputs: HostInputs) -> Self {
        let HostInputs { x, t, lens } = inputs;
        let (hidden, tape) = frozen.forward_taped(&x, t, &lens);
        let pooled = mean_pool(&hidden, t, &lens, frozen.hidden_size());
        Self {
            tape,
            t,
            lens,
            pooled,
        }
    }

    /// The pooled rows `[b, d]` of a pass without a tape (scoring).
    pub fn pooled_only(frozen: &FrozenEncoder, inputs: &HostInputs) -> Vec<f32> {
        let hidden = frozen.forward(&inputs.x, inputs.t, &inputs.lens);
        mean_pool(&hidden, inputs.t, &inputs.lens, frozen.hidden_size())
    }

    /// The pooled rows `[b, d]`.
    pub fn pooled(&self) -> &[f32] {
        &self.pooled
    }

    /// The gradient `[l, d]` at the `l` prompt rows after `[CLS]` (shared by every sequence,
    /// so summed over them), given the gradient `d_pooled: [b, d]` at the pooled rows.
    pub fn prompt_gradient(self, frozen: &FrozenEncoder, d_pooled: &[f32], l: usize) -> Vec<f32> {
        let (d, t) = (frozen.hidden_size(), self.t);
        // Through the mean: every real row of sequence i gets d_pooled_i / len_i.
        let mut d_hidden = vec![0f32; self.lens.len() * t * d];
        for ((i, &n), g) in self.lens.iter().enumerate().zip(d_pooled.chunks(d)) {
            for row in d_hidden[i * t * d..][..n * d].chunks_mut(d) {
                row.iter_mut().zip(g).for_each(|(r, g)| *r = g / n as f32);
            }
        }
        let d_inputs = frozen.input_gradient(self.tape, t, &d_hidden);
        let mut grad = vec![0f32; l * d];
        for i in 0..self.lens.len() {
            let rows = &d_inputs[(i * t + 1) * d..][..l * d];
            grad.iter_mut().zip(rows).for_each(|(g, r)| *g += r);
        }
        grad
    }
}

/// The mean of each sequence's real rows of `hidden: [b, t, d]`, `[b, d]`.
fn mean_pool(hidden: &[f32], t: usize, lens: &[usize], d: usize) -> Vec<f32> {
    let mut pooled = vec![0f32; lens.len() * d];
    for ((i, &n), out) in lens.iter().enumerate().zip(pooled.chunks_mut(d)) {
        for row in hidden[i * t * d..][..n * d].chunks(d) {
            out.iter_mut().zip(row).for_each(|(p, h)| *p += h);
        }
        out.iter_mut().for_each(|p| *p /= n.max(1) as f32);
    }
    pooled
}
