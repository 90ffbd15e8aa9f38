//! A batch's loss computed on the host, outside the backend's autodiff (CPU backends run the
//! frozen model there several times faster), and the surrogate that hands its gradients to
//! the optimizer: a scalar on the backend whose gradient with respect to the model's
//! trainable tensors is the loss's.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// A batch's loss from the host, with its surrogate.
pub struct HostLoss<B: Backend> {
    /// The batch's mean cross-entropy.
    pub value: f64,
    /// A scalar with the loss's gradient (not its value): differentiate it instead of the loss.
    pub surrogate: Tensor<B, 1>,
}

impl<B: Backend> HostLoss<B> {
    /// The loss `value` whose gradient at the prompt rows `[L, d]` is `grad` (row-major):
    /// `Σ rows ⊙ grad` has that gradient.
    pub fn of_prompt(value: f64, rows: Tensor<B, 2>, grad: Vec<f32>) -> Self {
        Self {
            value,
            surrogate: linear(rows, grad),
        }
    }

    /// The surrogate plus `Σ tensor ⊙ grad`: the loss's gradient at another trainable tensor
    /// (a head after the host pass) is `grad`.
    pub fn plus<const D: usize>(mut self, tensor: Tensor<B, D>, grad: Vec<f32>) -> Self {
        self.surrogate = self.surrogate + linear(tensor, grad);
        self
    }
}

/// `Σ tensor ⊙ grad`, whose gradient with respect to `tensor` is exactly `grad`.
fn linear<B: Backend, const D: usize>(tensor: Tensor<B, D>, grad: Vec<f32>) -> Tensor<B, 1> {
    let grad = Tensor::from_data(TensorData::new(grad, tensor.dims()), &tensor.device());
    (tensor * grad).sum()
}

/// The host rows of a tensor (moved out without a copy when the backend holds `f32`).
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    let data = t.into_data().convert::<f32>();
    data.into_vec::<f32>().unwrap_or_default()
}

/// Mean cross-entropy of `logits: [n, C]` against `labels`, and its gradient.
pub fn cross_entropy_host(logits: &[f32], labels: &[usize], classes: usize) -> (f64, Vec<f32>) {
    let n = labels.len();
    let mut grad = vec![0f32; logits.len()];
    let mut loss = 0f64;
    for ((z, g), &y) in logits
        .chunks(classes)
        .zip(grad.chunks_mut(classes))
        .zip(labels)
    {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
        loss += (max + sum.ln() - z[y.min(classes - 1)]) as f64;
        for (c, (gc, &zc)) in g.iter_mut().zip(z).enumerate() {
            let p = (zc - max).exp() / sum;
            *gc = (p - f32::from(c == y)) / n as f32;
        }
    }
    (loss / n.max(1) as f64, grad)
}

/// `x·w + b` for `x: [n, k]`, `w: [k, m]`, `b: [m]` (small products: a head, the class
/// scores).
pub fn affine(x: &[f32], w: &[f32], b: Option<&[f32]>, k: usize, m: usize) -> Vec<f32> {
    let mut y = vec![0f32; x.len() / k.max(1) * m];
    for (row, out) in x.chunks(k).zip(y.chunks_mut(m)) {
        if let Some(b) = b {
            out.copy_from_slice(b);
        }
        for (xi, wi) in row.iter().zip(w.chunks(m)) {
            out.iter_mut().zip(wi).for_each(|(o, w)| *o += xi * w);
        }
    }
    y
}

/// `dy·wᵀ` for `dy: [n, m]`, `w: [k, m]`: the gradient at the input of [`affine`].
pub fn affine_input_gradient(dy: &[f32], w: &[f32], k: usize, m: usize) -> Vec<f32> {
    let mut dx = vec![0f32; dy.len() / m.max(1) * k];
    for (g, out) in dy.chunks(m).zip(dx.chunks_mut(k)) {
        for (o, wi) in out.iter_mut().zip(w.chunks(m)) {
            *o = wi.iter().zip(g).map(|(w, g)| w * g).sum();
        }
    }
    dx
}
