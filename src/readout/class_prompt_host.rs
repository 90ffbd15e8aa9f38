//! The class-prompt readout's loss and prompt gradient on the host encoder
//! ([`FrozenEncoder`]), for CPU backends: the class sequences through the taped host pass,
//! mean pooling, normalisation, the scaled cosine against the cached samples and the
//! cross-entropy forward, then each of them backward by hand down to the prompt rows.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::backbone::{EncoderTape, FrozenEncoder};

/// One host pass over the class sequences: their hidden states' pooled and normalised rows,
/// and what the backward needs.
pub struct ClassPass {
    tape: EncoderTape,
    /// Padded length of the class sequences.
    t: usize,
    lens: Vec<usize>,
    /// Normalised class embeddings `[C, d]`.
    classes: Vec<f32>,
    /// Each class embedding's norm before normalising (clamped as the backend's).
    norms: Vec<f32>,
}

/// The host rows of a tensor.
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

impl ClassPass {
    /// The taped pass over `inputs: [C, t, d]` (the class sequences' input embeddings, the
    /// first `lens[c]` rows of sequence `c` real).
    pub fn forward(frozen: &FrozenEncoder, inputs: &[f32], t: usize, lens: Vec<usize>) -> Self {
        let d = frozen.hidden_size();
        let (hidden, tape) = frozen.forward_taped(inputs, t, &lens);
        let mut classes = vec![0f32; lens.len() * d];
        let mut norms = Vec::with_capacity(lens.len());
        for (c, &n) in lens.iter().enumerate() {
            let pooled = &mut classes[c * d..][..d];
            for row in hidden[c * t * d..][..n * d].chunks(d) {
                pooled.iter_mut().zip(row).for_each(|(p, h)| *p += h);
            }
            pooled.iter_mut().for_each(|p| *p /= n.max(1) as f32);
            let norm = pooled.iter().map(|p| p * p).sum::<f32>().sqrt().max(1e-12);
            pooled.iter_mut().for_each(|p| *p /= norm);
            norms.push(norm);
        }
        Self {
            tape,
            t,
            lens,
            classes,
            norms,
        }
    }

    /// Mean cross-entropy of `scale · samples · classesᵀ` (`samples: [n, d]`, normalised)
    /// against `labels`, and its gradient with respect to the class embeddings before
    /// normalising, `[C, d]`.
    fn loss_and_class_gradient(
        &self,
        samples: &[f32],
        labels: &[usize],
        scale: f32,
    ) -> (f64, Vec<f32>) {
        let (k, n) = (self.lens.len(), labels.len());
        let d = self.classes.len() / k.max(1);
        let mut d_classes = vec![0f32; k * d];
        let mut loss = 0f64;
        for (s, &y) in samples.chunks(d).zip(labels) {
            let z: Vec<f32> = (self.classes.chunks(d))
                .map(|c| scale * c.iter().zip(s).map(|(a, b)| a * b).sum::<f32>())
                .collect();
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
            loss += (max + sum.ln() - z[y.min(k - 1)]) as f64;
            for (c, &zc) in z.iter().enumerate() {
                let dz = ((zc - max).exp() / sum - f32::from(c == y)) / n as f32;
                let row = &mut d_classes[c * d..][..d];
                row.iter_mut()
                    .zip(s)
                    .for_each(|(g, s)| *g += scale * dz * s);
            }
        }
        // Through the normalisation: d e = (d ĉ − ĉ (ĉ · d ĉ)) / |e|.
        for ((g, c), &norm) in d_classes
            .chunks_mut(d)
            .zip(self.classes.chunks(d))
            .zip(&self.norms)
        {
            let along: f32 = g.iter().zip(c).map(|(a, b)| a * b).sum();
            g.iter_mut()
                .zip(c)
                .for_each(|(g, c)| *g = (*g - c * along) / norm);
        }
        (loss / n.max(1) as f64, d_classes)
    }

    /// The loss and its gradient with respect to the `l` prompt rows after `[CLS]`, `[l, d]`.
    pub fn prompt_gradient(
        &self,
        frozen: &FrozenEncoder,
        samples: &[f32],
        labels: &[usize],
        scale: f32,
        l: usize,
    ) -> (f64, Vec<f32>) {
        let (d, t) = (frozen.hidden_size(), self.t);
        let (loss, d_classes) = self.loss_and_class_gradient(samples, labels, scale);
        // Through the mean pool: every real row of class c gets d e_c / len_c.
        let mut d_hidden = vec![0f32; self.lens.len() * t * d];
        for (c, &n) in self.lens.iter().enumerate() {
            let g = &d_classes[c * d..][..d];
            for row in d_hidden[c * t * d..][..n * d].chunks_mut(d) {
                row.iter_mut().zip(g).for_each(|(r, g)| *r = g / n as f32);
            }
        }
        let d_inputs = frozen.input_gradient(&self.tape, t, &d_hidden);
        let mut grad = vec![0f32; l * d];
        for c in 0..self.lens.len() {
            let rows = &d_inputs[(c * t + 1) * d..][..l * d];
            grad.iter_mut().zip(rows).for_each(|(g, r)| *g += r);
        }
        (loss, grad)
    }
}
