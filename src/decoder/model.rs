//! A llama-architecture decoder in burn: RMSNorm, rotary positions, grouped-query attention,
//! SwiGLU, tied embeddings and a key/value cache.
//!
//! The weights are constant tensors of the module, not [`burn::module::Param`]s, so a backward
//! pass through the frozen decoder computes only the gradients of its input embeddings (a soft
//! prompt), never weight gradients.

use burn::module::Module;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};

use super::config::LlamaConfig;
use super::frozen::{FrozenBlock, FrozenDecoder};
use super::gguf::GgufFile;
use super::kv_cache::{KvCache, Padding};
use crate::error::Result;

#[derive(Module, Debug)]
struct RmsNorm<B: Backend> {
    weight: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// `x / sqrt(mean(x²) + eps) · weight`. The inverse root is a `powf`, not `sqrt().recip()`:
    /// burn-ndarray's f32 `recip` uses the CPU's approximate reciprocal (`rcp14`, `rcp`) on the
    /// aligned part of a buffer it owns, so its result depended on the buffer's address (the
    /// backward pass of `recip` hit that path), and the decoder's gradient was not the same from
    /// one process to the next.
    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let inv = (x.clone().square().mean_dim(D - 1) + self.eps).powf_scalar(-0.5);
        x * inv * self.weight.clone().unsqueeze()
    }
}

#[derive(Module, Debug)]
struct Block<B: Backend> {
    attn_norm: RmsNorm<B>,
    /// Query, key and value fused, `[d, d + 2·kv_d]`; query/key columns of every head in
    /// rotate-half order.
    wqkv: Tensor<B, 2>,
    /// Attention output, `[d, d]`.
    wo: Tensor<B, 2>,
    ffn_norm: RmsNorm<B>,
    /// Gate and up projections fused, `[d, 2·ff]`.
    w_gate_up: Tensor<B, 2>,
    /// Down projection, `[ff, d]`.
    w_down: Tensor<B, 2>,
}

/// The decoder. Build it from a GGUF file with [`Llama::from_gguf`].
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    #[module(skip)]
    config: LlamaConfig,
    /// Token embeddings `[vocab, d]`.
    embeddings: Tensor<B, 2>,
    /// Output head, transposed and contiguous: `[d, vocab]` (the embeddings' when tied).
    output_t: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    /// Rotary tables `[max_position, head_dim]`, each half repeated.
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
}

/// Row-major `[rows, cols]` to `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; w.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = w[r * cols + c];
                }
            }
        }
    }
    out
}

/// Undoes llama.cpp's interleaving of query/key rows: within each head, GGUF row `2i + j` is
/// row `j·half + i` of the rotate-half layout.
pub(crate) fn deinterleave_order(heads: usize, head_dim: usize) -> Vec<usize> {
    let half = head_dim / 2;
    let mut order = vec![0; heads * head_dim];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                order[h * head_dim + j * half + i] = h * head_dim + 2 * i + j;
            }
        }
    }
    order
}

/// Applies [`deinterleave_order`] to the rows of a row-major `[heads·head_dim, cols]` matrix.
fn deinterleave_rows(w: &[f32], heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let src = (h * head_dim + 2 * i + j) * cols;
                let dst = (h * head_dim + j * half + i) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

pub(crate) fn rope_tables(config: &LlamaConfig) -> (Vec<f32>, Vec<f32>) {
    let hd = config.head_dim();
    let half = hd / 2;
    let n = config.max_position;
    let mut cos = vec![0f32; n * hd];
    let mut sin = vec![0f32; n * hd];
    for p in 0..n {
        for i in 0..half {
            let freq = (config.rope_theta as f64).powf(-2.0 * i as f64 / hd as f64);
            let angle = p as f64 * freq;
            for k in [i, i + half] {
                cos[p * hd + k] = angle.cos() as f32;
                sin[p * hd + k] = angle.sin() as f32;
            }
        }
    }
    (cos, sin)
}

impl<B: Backend> Llama<B> {
    /// Loads a llama-architecture GGUF file, dequantizing every tensor to f32.
    pub fn from_gguf(file: &GgufFile, device: &B::Device) -> Result<Self> {
        let config = file.config()?;
        let d = config.hidden_size;
        let hd = config.head_dim();
        let kvd = config.num_kv_heads * hd;
        let ff = config.intermediate_size;
        let t2 = |data: Vec<f32>, shape: [usize; 2]| {
            Tensor::<B, 2>::from_data(TensorData::new(data, shape), device)
        };
        let norm = |name: &str| -> Result<RmsNorm<B>> {
            Ok(RmsNorm {
                weight: Tensor::from_data(TensorData::new(file.tensor(name, &[d])?, [d]), device),
                eps: config.rms_eps as f64,
            })
        };
        // GGUF matrices are [out, in] row-major; tandem multiplies x·W with W as [in, out].
        let linear = |name: &str, out: usize, inp: usize| -> Result<Vec<f32>> {
            Ok(transpose(&file.tensor(name, &[out, inp])?, out, inp))
        };
        let v = config.vocab_size;
        let embed = file.tensor("token_embd.weight", &[v, d])?;
        let output_t = if config.tied_embeddings {
            t2(transpose(&embed, v, d), [d, v])
        } else {
            t2(linear("output.weight", v, d)?, [d, v])
        };
        let embeddings = t2(embed, [v, d]);
        let mut blocks = Vec::with_capacity(config.num_layers);
        for l in 0..config.num_layers {
            let p = format!("blk.{l}");
            let q = deinterleave_rows(
                &file.tensor(&format!("{p}.attn_q.weight"), &[d, d])?,
                config.num_heads,
                hd,
                d,
            );
            let k = deinterleave_rows(
                &file.tensor(&format!("{p}.attn_k.weight"), &[kvd, d])?,
                config.num_kv_heads,
                hd,
                d,
            );
            let v = file.tensor(&format!("{p}.attn_v.weight"), &[kvd, d])?;
            // Stack the [out, in] rows, then transpose once: [d, d + 2·kvd].
            let qkv = [q, k, v].concat();
            let wqkv = t2(transpose(&qkv, d + 2 * kvd, d), [d, d + 2 * kvd]);
            let gate = file.tensor(&format!("{p}.ffn_gate.weight"), &[ff, d])?;
            let up = file.tensor(&format!("{p}.ffn_up.weight"), &[ff, d])?;
            let gate_up = transpose(&[gate, up].concat(), 2 * ff, d);
            blocks.push(Block {
                attn_norm: norm(&format!("{p}.attn_norm.weight"))?,
                wqkv,
                wo: t2(linear(&format!("{p}.attn_output.weight"), d, d)?, [d, d]),
                ffn_norm: norm(&format!("{p}.ffn_norm.weight"))?,
                w_gate_up: t2(gate_up, [d, 2 * ff]),
                w_down: t2(linear(&format!("{p}.ffn_down.weight"), d, ff)?, [ff, d]),
            });
        }
        let norm = norm("output_norm.weight")?;
        let (cos, sin) = rope_tables(&config);
        Ok(Self {
            cos: t2(cos, [config.max_position, hd]),
            sin: t2(sin, [config.max_position, hd]),
            embeddings,
            output_t,
            blocks,
            norm,
            config,
        })
    }

    /// A decoder with random weights (N(0, 0.02), unit norms), for tests and benchmarks.
    pub fn random(config: LlamaConfig, device: &B::Device) -> Self {
        let d = config.hidden_size;
        let kvd = config.num_kv_heads * config.head_dim();
        let ff = config.intermediate_size;
        let normal = Distribution::Normal(0.0, 0.02);
        let norm = || RmsNorm {
            weight: Tensor::ones([d], device),
            eps: config.rms_eps as f64,
        };
        let blocks = (0..config.num_layers)
            .map(|_| Block {
                attn_norm: norm(),
                wqkv: Tensor::random([d, d + 2 * kvd], normal, device),
                wo: Tensor::random([d, d], normal, device),
                ffn_norm: norm(),
                w_gate_up: Tensor::random([d, 2 * ff], normal, device),
                w_down: Tensor::random([ff, d], normal, device),
            })
            .collect();
        let embeddings = Tensor::random(
            [config.vocab_size, d],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        let (cos, sin) = rope_tables(&config);
        let hd = config.head_dim();
        Self {
            cos: Tensor::from_data(TensorData::new(cos, [config.max_position, hd]), device),
            sin: Tensor::from_data(TensorData::new(sin, [config.max_position, hd]), device),
            output_t: embeddings.clone().transpose(),
            embeddings,
            blocks,
            norm: norm(),
            config,
        }
    }

    /// The architecture.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The token-embedding table `[vocab, d]` (the space soft prompts live in).
    pub fn word_embeddings(&self) -> Tensor<B, 2> {
        self.embeddings.clone()
    }

    /// The output head, transposed: `[d, vocab]`.
    pub fn output_head_t(&self) -> Tensor<B, 2> {
        self.output_t.clone()
    }

    /// Every weight tensor as stored (the autodiff nodes the forward pass reads), for checks
    /// that the decoder stays frozen: the matrices, then the vectors (the RMSNorm weights).
    pub fn weights(&self) -> (Vec<Tensor<B, 2>>, Vec<Tensor<B, 1>>) {
        let mut matrices = vec![self.embeddings.clone(), self.output_t.clone()];
        let mut vectors = vec![self.norm.weight.clone()];
        for b in &self.blocks {
            matrices.extend([
                b.wqkv.clone(),
                b.wo.clone(),
                b.w_gate_up.clone(),
                b.w_down.clone(),
            ]);
            vectors.extend([b.attn_norm.weight.clone(), b.ffn_norm.weight.clone()]);
        }
        (matrices, vectors)
    }

    /// Looks up token embeddings: `ids: [batch, len] -> [batch, len, d]`.
    pub fn embed_tokens(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = ids.dims();
        self.embeddings
            .clone()
            .select(0, ids.reshape([b * t]))
            .reshape([b, t, self.config.hidden_size])
    }

    /// An empty key/value cache for `batch` sequences.
    pub fn cache(&self) -> KvCache<B> {
        KvCache::new(self.config.num_layers)
    }

    /// Runs the decoder on input embeddings `[batch, len, d]` that continue the sequences held
    /// in `cache` (empty for a fresh sequence), appending their keys and values to it. Returns
    /// the final-normed hidden states `[batch, len, d]`.
    ///
    /// Sequences in a batch are right-padded: causal attention means real positions never see
    /// the padding after them.
    pub fn forward(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let start = cache.len();
        let position = cache.next_position();
        assert!(
            position + t <= self.config.max_position,
            "sequence of {} tokens exceeds the model's context of {}",
            position + t,
            self.config.max_position
        );
        let nh = self.config.num_heads;
        let nkv = self.config.num_kv_heads;
        let rep = nh / nkv;
        let hd = self.config.head_dim();
        let kvd = nkv * hd;
        let device = x.device();
        let (cos, sin) = self.rotary(position, t);
        let rope = |x: Tensor<B, 4>| {
            let half = hd / 2;
            let x1 = x.clone().narrow(3, 0, half);
            let x2 = x.clone().narrow(3, half, half);
            let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
            x * cos.clone() + rotated * sin.clone()
        };
        let mask = attention_mask::<B>(start, t, rep, cache.padding(), &device);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut x = x;
        for (l, block) in self.blocks.iter().enumerate() {
            let h = block.attn_norm.forward(x.clone()).reshape([b * t, d]);
            let qkv = h.matmul(block.wqkv.clone());
            let q = qkv
                .clone()
                .narrow(1, 0, d)
                .reshape([b, t, nh, hd])
                .swap_dims(1, 2);
            let k = qkv
                .clone()
                .narrow(1, d, kvd)
                .reshape([b, t, nkv, hd])
                .swap_dims(1, 2);
            let v = qkv
                .narrow(1, d + kvd, kvd)
                .reshape([b, t, nkv, hd])
                .swap_dims(1, 2);
            let (q, k) = (rope(q), rope(k));
            let (k, v) = cache.append(l, k, v);
            let s = k.dims()[2];
            // Group the query heads that share a key/value head: [b, nkv, rep·t, hd].
            let q = q.reshape([b, nkv, rep * t, hd]);
            let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
            if let Some(mask) = &mask {
                scores = scores.mask_fill(mask.clone().expand([b, nkv, rep * t, s]), -1e30);
            }
            let attn = softmax(scores, 3).matmul(v);
            let attn = attn
                .reshape([b, nh, t, hd])
                .swap_dims(1, 2)
                .reshape([b * t, d]);
            x = x + attn.matmul(block.wo.clone()).reshape([b, t, d]);
            let h = block.ffn_norm.forward(x.clone()).reshape([b * t, d]);
            let gu = h.matmul(block.w_gate_up.clone());
            let ff = self.config.intermediate_size;
            let g = gu.clone().narrow(1, 0, ff);
            let u = gu.narrow(1, ff, ff);
            x = x
                + (silu(g) * u)
                    .matmul(block.w_down.clone())
                    .reshape([b, t, d]);
        }
        cache.advance(t);
        self.norm.forward(x)
    }

    /// Rotary cosines and sines of positions `position..position + t`, `[1, 1, t, head_dim]`.
    fn rotary(&self, position: usize, t: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let hd = self.config.head_dim();
        let rows =
            |table: &Tensor<B, 2>| table.clone().narrow(0, position, t).reshape([1, 1, t, hd]);
        (rows(&self.cos), rows(&self.sin))
    }

    /// The layers on the host, for the forward pass of CPU backends ([`FrozenDecoder`]).
    pub fn frozen(&self) -> FrozenDecoder {
        fn host<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f32> {
            let data = t.clone().into_data();
            data.to_vec::<f32>()
                .unwrap_or_else(|_| data.iter::<f32>().collect())
        }
        FrozenDecoder {
            config: self.config.clone(),
            blocks: self
                .blocks
                .iter()
                .map(|b| FrozenBlock {
                    attn_norm: host(&b.attn_norm.weight),
                    wqkv: host(&b.wqkv),
                    wo: host(&b.wo),
                    ffn_norm: host(&b.ffn_norm.weight),
                    w_gate_up: host(&b.w_gate_up),
                    w_down: host(&b.w_down),
                })
                .collect(),
            norm: host(&self.norm.weight),
            cos: host(&self.cos),
            sin: host(&self.sin),
        }
    }

    /// Token embeddings of `ids` on the host, `[ids.len(), d]` row-major.
    pub fn embed_on_host(&self, ids: &[u32]) -> Vec<f32> {
        if ids.is_empty() {
            return Vec::new();
        }
        let idx: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(
            TensorData::new(idx, [ids.len()]),
            &self.embeddings.device(),
        );
        self.embeddings
            .clone()
            .select(0, idx)
            .into_data()
            .iter::<f32>()
            .collect()
    }

    /// Next-token logits `[n, vocab]` of hidden states `[n, d]`.
    pub fn logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        hidden.matmul(self.output_t.clone())
    }
}

/// The keys each query row may not see, `[1 or batch, 1, rep·t, start + t]` (true = hidden):
/// later positions, and padding. Query rows are ordered (head in group, position), so row `r`
/// is position `start + r % t`. `None` when nothing is hidden.
fn attention_mask<B: Backend>(
    start: usize,
    t: usize,
    rep: usize,
    pad: Option<&Padding>,
    device: &B::Device,
) -> Option<Tensor<B, 4, Bool>> {
    let s = start + t;
    let hidden =
        move |b: usize, r: usize, k: usize| k > start + r % t || pad.is_some_and(|p| p.hides(b, k));
    let batch = match pad {
        None if t == 1 => return None,
        None => 1,
        Some(p) => p.batch,
    };
    let data: Vec<bool> = (0..batch)
        .flat_map(|b| (0..rep * t).flat_map(move |r| (0..s).map(move |k| hidden(b, r, k))))
        .collect();
    Some(
        Tensor::<B, 1, Bool>::from_data(TensorData::new(data, [batch * rep * t * s]), device)
            .reshape([batch, 1, rep * t, s]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    /// Decoding token by token through the cache gives the logits of one full causal pass.
    #[test]
    fn incremental_decoding_equals_the_full_pass() {
        let device = Default::default();
        let model = Llama::<NdArray>::random(LlamaConfig::tiny(50), &device);
        let ids = [3i64, 17, 42, 8, 0, 25];
        let t = ids.len();
        let tokens =
            Tensor::<NdArray, 2, Int>::from_data(TensorData::new(ids.to_vec(), [1, t]), &device);
        let full = model.forward(model.embed_tokens(tokens.clone()), &mut model.cache());
        let full: Vec<f32> = full.into_data().iter::<f32>().collect();
        let mut cache = model.cache();
        // A 2-token prefix, then one token at a time.
        let mut got: Vec<f32> = model
            .forward(
                model.embed_tokens(tokens.clone().narrow(1, 0, 2)),
                &mut cache,
            )
            .into_data()
            .iter::<f32>()
            .collect();
        for i in 2..t {
            let h = model.forward(
                model.embed_tokens(tokens.clone().narrow(1, i, 1)),
                &mut cache,
            );
            got.extend(h.into_data().iter::<f32>());
        }
        assert_eq!(cache.len(), t);
        let worst = full
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "incremental and full passes differ by {worst}"
        );
        // Causality: changing the last token leaves earlier positions unchanged.
        let mut ids2 = ids;
        ids2[t - 1] = 1;
        let tokens2 =
            Tensor::<NdArray, 2, Int>::from_data(TensorData::new(ids2.to_vec(), [1, t]), &device);
        let other: Vec<f32> = model
            .forward(model.embed_tokens(tokens2), &mut model.cache())
            .into_data()
            .iter::<f32>()
            .collect();
        let d = model.config().hidden_size;
        assert_eq!(&other[..(t - 1) * d], &full[..(t - 1) * d]);
        assert_ne!(&other[(t - 1) * d..], &full[(t - 1) * d..]);
    }
}
