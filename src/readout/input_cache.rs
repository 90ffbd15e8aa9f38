//! The frozen decoder's keys and values of each example's input, for a prompt placed after the
//! input (input ⊕ prompt ⊕ cue). Causal attention keeps the input's states independent of
//! the prompt, so they are computed once per split and every later pass runs only the prompt
//! and cue tokens through the decoder: a few positions instead of the whole sequence.
//!
//! Inputs are left-padded to the longest of their split, the padding hidden from every query;
//! rotary positions are relative, so the padding does not change what a real position sees.
//! A split's states are kept on the host when they fit [`KEEP_BYTES`] (else computed per call),
//! in a cache shared by every readout of the same decoder in the process ([`shared`]): the runs
//! of a sweep score the same selection and test examples, and build their states once.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::SplitName;
use crate::decoder::{FrozenDecoder, KeySink, KvCache, Llama, Padding, Past, PastLayer, Seq};

/// Examples run through the decoder at once when a split's states are built.
const BUILD_CHUNK: usize = 16;

/// Examples run through the host decoder at once when a split's states are built (no padding).
const FROZEN_CHUNK: usize = 64;

/// Most bytes of one split's states kept on the host.
const KEEP_BYTES: usize = 2 << 30;

/// Input states of each split, the latest inputs seen per split (recognised by a fingerprint
/// of their tokens).
#[derive(Debug, Default)]
pub struct InputCache {
    kept: [Mutex<Option<Kept>>; 3],
}

/// The states of one split's inputs.
#[derive(Debug)]
struct Kept {
    fingerprint: u64,
    states: Arc<SplitStates>,
}

/// Input caches by decoder file digest and input cut.
type Caches = HashMap<(String, usize), Arc<InputCache>>;

/// One split's inputs, cut as the readout feeds them, with a fingerprint of their tokens
/// (taken once, not per call).
#[derive(Debug, Default)]
pub struct SplitInputs {
    tokens: Vec<Vec<u32>>,
    fingerprint: u64,
}

impl SplitInputs {
    /// The inputs of a split, in example order.
    pub fn new(tokens: Vec<Vec<u32>>) -> Self {
        let mut hasher = DefaultHasher::new();
        tokens.hash(&mut hasher);
        Self {
            fingerprint: hasher.finish(),
            tokens,
        }
    }
}

/// The input cache of every readout over the decoder file with digest `model_sha256` whose
/// inputs are cut to `max_input` tokens, in this process.
pub fn shared(model_sha256: &str, max_input: usize) -> Arc<InputCache> {
    static CACHES: OnceLock<Mutex<Caches>> = OnceLock::new();
    let mut caches = CACHES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    caches
        .entry((model_sha256.to_string(), max_input))
        .or_default()
        .clone()
}

/// One split's keys and values on the host.
#[derive(Debug)]
pub(super) struct SplitStates {
    /// Positions per example (the longest input of the split).
    pub(super) width: usize,
    /// `[examples, width]`: true = padding.
    pad: Vec<bool>,
    /// Each example's first real position (its left padding).
    starts: Vec<usize>,
    /// Per layer, keys and values `[examples, kv_heads, width, head_dim]`, row-major.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    kv_heads: usize,
    head_dim: usize,
}

impl InputCache {
    /// A decoder cache holding the input states of examples `rows` of `split` (an example may
    /// appear more than once), with their padding. `inputs` are the split's inputs.
    pub fn states<B: Backend>(
        &self,
        decoder: &Llama<B>,
        frozen: Option<&FrozenDecoder>,
        split: SplitName,
        inputs: &SplitInputs,
        rows: &[usize],
    ) -> KvCache<B> {
        match self.kept(decoder, frozen, split, inputs) {
            Some(states) => states.gather(rows, &decoder.word_embeddings().device()),
            None => {
                let picked: Vec<&[u32]> =
                    rows.iter().map(|&i| inputs.tokens[i].as_slice()).collect();
                let width = picked.iter().map(|s| s.len()).max().unwrap_or(0);
                build(decoder, &picked, width.max(1))
            }
        }
    }

    /// The states of every input of `split`, built on first use (on the host by `frozen` when
    /// given, else by `decoder`) and kept; `None` when they would not fit [`KEEP_BYTES`].
    pub(super) fn kept<B: Backend>(
        &self,
        decoder: &Llama<B>,
        frozen: Option<&FrozenDecoder>,
        split: SplitName,
        inputs: &SplitInputs,
    ) -> Option<Arc<SplitStates>> {
        let config = decoder.config();
        let width = inputs.tokens.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let floats = config.num_layers * 2 * config.num_kv_heads * width * config.head_dim();
        if inputs.tokens.len() * floats * 4 > KEEP_BYTES {
            return None;
        }
        let slot = match split {
            SplitName::Train => &self.kept[0],
            SplitName::Selection => &self.kept[1],
            SplitName::Test => &self.kept[2],
        };
        let mut kept = slot.lock().unwrap_or_else(|e| e.into_inner());
        match kept.as_ref() {
            Some(k) if k.fingerprint == inputs.fingerprint => Some(k.states.clone()),
            _ => {
                let states = Arc::new(match frozen {
                    Some(f) => SplitStates::build_frozen(decoder, f, &inputs.tokens),
                    None => SplitStates::build(decoder, &inputs.tokens),
                });
                *kept = Some(Kept {
                    fingerprint: inputs.fingerprint,
                    states: states.clone(),
                });
                Some(states)
            }
        }
    }
}

/// Example indices of `inputs`, shortest first (chunks of similar length).
fn by_length(inputs: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| (inputs[i].len(), i));
    order
}

/// Writes the keys and values of a host pass over a chunk of examples into their split's
/// states.
struct Placer<'a> {
    states: &'a mut SplitStates,
    /// The chunk's examples, in the pass's order.
    chunk: &'a [usize],
    seqs: &'a [Seq],
}

impl KeySink for Placer<'_> {
    fn layer(&mut self, layer: usize, qkv: &[f32]) {
        let st = &mut *self.states;
        let (kvh, hd, width) = (st.kv_heads, st.head_dim, st.width);
        let kvd = kvh * hd;
        let w = qkv.len() / self.seqs.iter().map(|s| s.len).sum::<usize>().max(1);
        let d = w - 2 * kvd;
        let (keys, values) = &mut st.layers[layer];
        for (&e, seq) in self.chunk.iter().zip(self.seqs) {
            for p in 0..seq.len {
                let row = &qkv[(seq.row + p) * w..][..w];
                for g in 0..kvh {
                    let to = ((e * kvh + g) * width + seq.position + p) * hd;
                    keys[to..to + hd].copy_from_slice(&row[d + g * hd..][..hd]);
                    values[to..to + hd].copy_from_slice(&row[d + kvd + g * hd..][..hd]);
                }
            }
        }
    }
}

impl Past for SplitStates {
    fn layer(&self, entry: usize, layer: usize) -> PastLayer<'_> {
        let n = self.kv_heads * self.width * self.head_dim;
        let (k, v) = &self.layers[layer];
        PastLayer {
            keys: &k[entry * n..(entry + 1) * n],
            values: &v[entry * n..(entry + 1) * n],
            width: self.width,
            start: self.starts[entry],
        }
    }
}

/// Runs `inputs`, left-padded to `width`, through the decoder: a cache holding their states
/// and padding.
fn build<B: Backend>(decoder: &Llama<B>, inputs: &[&[u32]], width: usize) -> KvCache<B> {
    build_at(decoder, inputs, width, 0)
}

/// [`build`] with the sequences placed at rotary position `offset`: the states they have
/// after `offset` positions of padding.
fn build_at<B: Backend>(
    decoder: &Llama<B>,
    inputs: &[&[u32]],
    width: usize,
    offset: usize,
) -> KvCache<B> {
    let n = inputs.len();
    let mut ids = Vec::with_capacity(n * width);
    let mut mask = Vec::with_capacity(n * width);
    for s in inputs {
        let pad = width - s.len();
        ids.extend((0..pad).map(|_| 0i64).chain(s.iter().map(|&t| t as i64)));
        mask.extend((0..width).map(|k| k < pad));
    }
    let device = decoder.word_embeddings().device();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, width]), &device);
    let pad = Padding {
        batch: n,
        width,
        mask,
    };
    let mut cache = KvCache::padded(decoder.config().num_layers, pad).at_position(offset);
    decoder.forward(decoder.embed_tokens(ids), &mut cache);
    cache
}

impl SplitStates {
    /// States of every input of a split, left-padded to the split's longest. The inputs run in
    /// chunks of similar length (sorted), each padded only to its own longest and placed at
    /// the rotary positions it has in the split's layout, so a chunk computes what the full
    /// width would, without the padding's cost.
    fn build<B: Backend>(decoder: &Llama<B>, inputs: &[Vec<u32>]) -> Self {
        let mut states = Self::empty(decoder, inputs);
        let width = states.width;
        for chunk in by_length(inputs).chunks(BUILD_CHUNK) {
            let slices: Vec<&[u32]> = chunk.iter().map(|&i| inputs[i].as_slice()).collect();
            let w = slices.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
            let cache = build_at(decoder, &slices, w, width - w);
            for (layer, kv) in cache.layers().enumerate() {
                states.place(layer, kv, chunk, w);
            }
        }
        states
    }

    /// Zeroed states for `inputs`, left-padded to the longest.
    fn empty<B: Backend>(decoder: &Llama<B>, inputs: &[Vec<u32>]) -> Self {
        let config = decoder.config();
        let width = inputs.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let (kv_heads, head_dim) = (config.num_kv_heads, config.head_dim());
        let floats = inputs.len() * kv_heads * width * head_dim;
        SplitStates {
            width,
            pad: inputs
                .iter()
                .flat_map(|s| (0..width).map(|k| k < width - s.len()))
                .collect(),
            starts: inputs.iter().map(|s| width - s.len()).collect(),
            layers: vec![(vec![0.0; floats], vec![0.0; floats]); config.num_layers],
            kv_heads,
            head_dim,
        }
    }

    /// [`SplitStates::build`] on the host: chunks of inputs run unpadded through `frozen`, each
    /// at the rotary positions it has in the split's layout, its keys and values written in
    /// place. `decoder` only embeds the tokens.
    fn build_frozen<B: Backend>(
        decoder: &Llama<B>,
        frozen: &FrozenDecoder,
        inputs: &[Vec<u32>],
    ) -> Self {
        let mut states = Self::empty(decoder, inputs);
        for chunk in by_length(inputs).chunks(FROZEN_CHUNK) {
            let mut seqs = Vec::with_capacity(chunk.len());
            let mut ids = Vec::new();
            for &e in chunk {
                seqs.push(Seq {
                    row: ids.len(),
                    len: inputs[e].len(),
                    position: states.starts[e],
                    past: None,
                });
                ids.extend_from_slice(&inputs[e]);
            }
            if ids.is_empty() {
                continue;
            }
            let x = decoder.embed_on_host(&ids);
            let mut sink = Placer {
                states: &mut states,
                chunk,
                seqs: &seqs,
            };
            frozen.forward(x, &seqs, None, &mut sink);
        }
        states
    }

    /// Copies a chunk's keys and values of `layer`, `[chunk, kv_heads, w, head_dim]` each,
    /// into the last `w` positions of its examples' rows.
    fn place<B: Backend>(
        &mut self,
        layer: usize,
        (k, v): &(Tensor<B, 4>, Tensor<B, 4>),
        chunk: &[usize],
        w: usize,
    ) {
        let (kv_heads, hd, width) = (self.kv_heads, self.head_dim, self.width);
        let (keys, values) = &mut self.layers[layer];
        for (src, dst) in [(k, keys), (v, values)] {
            let src: Vec<f32> = src.clone().into_data().iter::<f32>().collect();
            for (r, &e) in chunk.iter().enumerate() {
                for h in 0..kv_heads {
                    let from = (r * kv_heads + h) * w * hd;
                    let to = ((e * kv_heads + h) * width + width - w) * hd;
                    dst[to..to + w * hd].copy_from_slice(&src[from..from + w * hd]);
                }
            }
        }
    }

    /// A decoder cache of the states of `rows`.
    fn gather<B: Backend>(&self, rows: &[usize], device: &B::Device) -> KvCache<B> {
        let row = self.kv_heads * self.width * self.head_dim;
        let shape = [rows.len(), self.kv_heads, self.width, self.head_dim];
        let pick = |all: &[f32]| -> Tensor<B, 4> {
            let data: Vec<f32> = rows
                .iter()
                .flat_map(|&i| all[i * row..(i + 1) * row].iter().copied())
                .collect();
            Tensor::from_data(TensorData::new(data, shape), device)
        };
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| (pick(k), pick(v)))
            .collect();
        let mask = rows
            .iter()
            .flat_map(|&i| {
                self.pad[i * self.width..(i + 1) * self.width]
                    .iter()
                    .copied()
            })
            .collect();
        let pad = Padding {
            batch: rows.len(),
            width: self.width,
            mask,
        };
        KvCache::from_parts(layers, self.width, pad)
    }
}
