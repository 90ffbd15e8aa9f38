//! The key/value cache of incremental decoding.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Keys and values of every layer for the positions decoded so far, `[batch, kv_heads, len,
/// head_dim]` each.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    len: usize,
    pad: Option<Padding>,
    /// Rotary position of the first held key (0 unless the sequence is placed later).
    offset: usize,
}

/// Which of the first `width` key positions of each sequence are padding, hidden from every
/// query (left-padded batches of sequences of different lengths).
#[derive(Debug, Clone, PartialEq)]
pub struct Padding {
    /// Sequences in the batch.
    pub batch: usize,
    /// Key positions covered.
    pub width: usize,
    /// `[batch, width]`, row-major; true = padding.
    pub mask: Vec<bool>,
}

impl Padding {
    /// Whether key `k` of sequence `b` is padding (positions past `width` never are).
    pub fn hides(&self, b: usize, k: usize) -> bool {
        k < self.width && self.mask[b * self.width + k]
    }
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![None; layers],
            len: 0,
            pad: None,
            offset: 0,
        }
    }

    /// An empty cache whose next pass's keys are partly padding.
    pub fn padded(layers: usize, pad: Padding) -> Self {
        Self {
            pad: Some(pad),
            ..Self::new(layers)
        }
    }

    /// A cache holding `len` positions: each layer's keys and values and their padding.
    pub fn from_parts(layers: Vec<(Tensor<B, 4>, Tensor<B, 4>)>, len: usize, pad: Padding) -> Self {
        Self {
            layers: layers.into_iter().map(Some).collect(),
            len,
            pad: Some(pad),
            offset: 0,
        }
    }

    /// The same empty cache, its sequences placed at rotary position `offset`: their keys are
    /// those of a cache whose first `offset` positions were hidden padding.
    pub fn at_position(self, offset: usize) -> Self {
        Self { offset, ..self }
    }

    /// Rotary position of the next appended key.
    pub fn next_position(&self) -> usize {
        self.offset + self.len
    }

    /// Each layer's keys and values, `[batch, kv_heads, len, head_dim]` (empty layers skipped).
    pub fn layers(&self) -> impl Iterator<Item = &(Tensor<B, 4>, Tensor<B, 4>)> {
        self.layers.iter().flatten()
    }

    /// The padding of the held positions, if any.
    pub fn padding(&self) -> Option<&Padding> {
        self.pad.as_ref()
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
