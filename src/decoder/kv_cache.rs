//! The key/value cache of incremental decoding.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Keys and values of every layer for the positions decoded so far, `[batch, kv_heads, len,
/// head_dim]` each.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![None; layers],
            len: 0,
        }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends new keys and values of `layer` and returns the whole sequence's.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let slot = &mut self.layers[layer];
        let (k, v) = match slot.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
        };
        *slot = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Keys and values of every layer on the host, position-major: `[len, kv_heads·head_dim]`
    /// (the layout of [`super::HostCache`]). Only for a batch of one.
    pub(crate) fn to_host(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        let flat = |t: &Tensor<B, 4>| -> Vec<f32> {
            let [_, h, s, hd] = t.dims();
            t.clone()
                .swap_dims(1, 2)
                .reshape([s, h * hd])
                .into_data()
                .iter::<f32>()
                .collect()
        };
        self.layers
            .iter()
            .map(|l| match l {
                Some((k, v)) => (flat(k), flat(v)),
                None => (Vec::new(), Vec::new()),
            })
            .collect()
    }

    /// Records that `t` more positions were appended to every layer.
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }
}
