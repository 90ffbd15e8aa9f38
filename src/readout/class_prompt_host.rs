//! The class-prompt readout's loss and prompt gradient on the host encoder
//! ([`FrozenEncoder`]), for CPU backends: the class sequences through the pooled host pass,
//! normalisation, the scaled cosine against the cached samples and the cross-entropy forward,
//! then each of them backward by hand down to the prompt rows.

use super::host_loss::{affine, cross_entropy_host};
use super::pooled_pass::{HostInputs, PooledPass};
use crate::backbone::FrozenEncoder;

/// One host pass over the class sequences: their pooled and normalised rows, and what the
/// backward needs.
pub struct ClassPass {
    pass: PooledPass,
    /// Normalised class embeddings `[C, d]`.
    classes: Vec<f32>,
    /// Each class embedding's norm before normalising (clamped as the backend's).
    norms: Vec<f32>,
}

impl ClassPass {
    /// The taped pass over the class sequences' input embeddings.
    pub fn forward(frozen: &FrozenEncoder, inputs: HostInputs) -> Self {
        let d = frozen.hidden_size();
        let pass = PooledPass::forward(frozen, inputs);
        let mut classes = pass.pooled().to_vec();
        let mut norms = Vec::with_capacity(classes.len() / d);
        for row in classes.chunks_mut(d) {
            let norm = row.iter().map(|p| p * p).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|p| *p /= norm);
            norms.push(norm);
        }
        Self {
            pass,
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
        let k = self.norms.len();
        let d = self.classes.len() / k.max(1);
        let transposed: Vec<f32> = (0..d * k)
            .map(|i| scale * self.classes[(i % k) * d + i / k])
            .collect();
        let z = affine(samples, &transposed, None, d, k);
        let (loss, dz) = cross_entropy_host(&z, labels, k);
        // d ĉ_c = scale · Σ_i dz_ic s_i.
        let mut d_classes = vec![0f32; k * d];
        for (s, dz) in samples.chunks(d).zip(dz.chunks(k)) {
            for (row, &g) in d_classes.chunks_mut(d).zip(dz) {
                row.iter_mut().zip(s).for_each(|(r, s)| *r += scale * g * s);
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
        (loss, d_classes)
    }

    /// The loss and its gradient with respect to the `l` prompt rows after `[CLS]`, `[l, d]`.
    pub fn prompt_gradient(
        self,
        frozen: &FrozenEncoder,
        samples: &[f32],
        labels: &[usize],
        scale: f32,
        l: usize,
    ) -> (f64, Vec<f32>) {
        let (loss, d_classes) = self.loss_and_class_gradient(samples, labels, scale);
        (loss, self.pass.prompt_gradient(frozen, &d_classes, l))
    }
}
