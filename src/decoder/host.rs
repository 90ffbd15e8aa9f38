//! Single-token decoding on the host with the weights kept in their GGUF quantization.
//!
//! Decoding one token is a chain of matrix-vector products, bound by memory traffic. Through
//! burn's ndarray backend every product packs its f32 weight matrix first (~1.6 GB moved per
//! token); here each product reads the quantized blocks once (~80 MB per token) and the
//! attention reads a position-major key/value cache in place. The prompt itself is still run
//! through the burn [`super::Llama`] in one batched pass, whose cache is then handed over.

use super::config::LlamaConfig;
use super::gguf::GgufFile;
use super::model::{deinterleave_order, rope_tables};
use super::qmatrix::QMatrix;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
struct HostBlock {
    attn_norm: Vec<f32>,
    /// Query (rotate-half row order), key (same) and value rows stacked.
    qkv: QMatrix,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    /// Gate and up rows stacked.
    gate_up: QMatrix,
    down: QMatrix,
}

/// Every weight of the decoder on the host, matrices in their stored quantization.
#[derive(Debug, Clone)]
pub struct HostWeights {
    config: LlamaConfig,
    embeddings: QMatrix,
    blocks: Vec<HostBlock>,
    norm: Vec<f32>,
    output: QMatrix,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// The host key/value cache: per layer, keys and values position-major `[len, kv_heads·head_dim]`.
#[derive(Debug, Clone, Default)]
pub struct HostCache {
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    len: usize,
}

impl HostCache {
    /// A cache holding `layers` (from [`super::KvCache`]) for `len` positions.
    pub(crate) fn from_layers(layers: Vec<(Vec<f32>, Vec<f32>)>, len: usize) -> Self {
        Self { layers, len }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| v * inv * g).collect()
}

/// Rotate-half rotary embedding of `heads` heads of width `hd`, in place.
pub(super) fn rope(x: &mut [f32], hd: usize, cos: &[f32], sin: &[f32]) {
    let half = hd / 2;
    for head in x.chunks_exact_mut(hd) {
        for i in 0..half {
            let (a, b) = (head[i], head[i + half]);
            head[i] = a * cos[i] - b * sin[i];
            head[i + half] = b * cos[i + half] + a * sin[i + half];
        }
    }
}

impl HostWeights {
    /// Reads every weight of a llama GGUF file, keeping Q4_1/Q8_0 matrices quantized.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let c = file.config()?;
        let (d, hd, ff) = (c.hidden_size, c.head_dim(), c.intermediate_size);
        let kvd = c.num_kv_heads * hd;
        let q = |name: String, rows, cols| QMatrix::from_gguf(file, &name, rows, cols);
        let norm = |name: &str| file.tensor(name, &[d]);
        let mismatch = || Error::model(file.path(), "matrices of one block differ in quantization");
        let mut blocks = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            let p = format!("blk.{l}");
            let wq = q(format!("{p}.attn_q.weight"), d, d)?
                .reorder_rows(&deinterleave_order(c.num_heads, hd));
            let wk = q(format!("{p}.attn_k.weight"), kvd, d)?
                .reorder_rows(&deinterleave_order(c.num_kv_heads, hd));
            let wv = q(format!("{p}.attn_v.weight"), kvd, d)?;
            let gate = q(format!("{p}.ffn_gate.weight"), ff, d)?;
            let up = q(format!("{p}.ffn_up.weight"), ff, d)?;
            blocks.push(HostBlock {
                attn_norm: norm(&format!("{p}.attn_norm.weight"))?,
                qkv: QMatrix::stack(vec![wq, wk, wv]).ok_or_else(mismatch)?,
                wo: q(format!("{p}.attn_output.weight"), d, d)?,
                ffn_norm: norm(&format!("{p}.ffn_norm.weight"))?,
                gate_up: QMatrix::stack(vec![gate, up]).ok_or_else(mismatch)?,
                down: q(format!("{p}.ffn_down.weight"), d, ff)?,
            });
        }
        let embeddings = q("token_embd.weight".into(), c.vocab_size, d)?;
        let output = if c.tied_embeddings {
            embeddings.clone()
        } else {
            q("output.weight".into(), c.vocab_size, d)?
        };
        let (cos, sin) = rope_tables(&c);
        Ok(Self {
            embeddings,
            blocks,
            norm: norm("output_norm.weight")?,
            output,
            cos,
            sin,
            config: c,
        })
    }

    /// Bytes of weights read per decoded token.
    pub fn nbytes(&self) -> usize {
        self.output.nbytes()
            + self
                .blocks
                .iter()
                .map(|b| b.qkv.nbytes() + b.wo.nbytes() + b.gate_up.nbytes() + b.down.nbytes())
                .sum::<usize>()
    }

    /// Decodes `token` at the next position of `cache` and returns the next-token logits.
    pub fn step(&self, token: u32, cache: &mut HostCache) -> Result<Vec<f32>> {
        let c = &self.config;
        let (d, hd, ff) = (c.hidden_size, c.head_dim(), c.intermediate_size);
        let (nh, nkv) = (c.num_heads, c.num_kv_heads);
        let kvd = nkv * hd;
        let rep = nh / nkv;
        let pos = cache.len;
        if pos >= c.max_position {
            return Err(Error::config(
                "generation",
                format!("reached the model's context of {} tokens", c.max_position),
            ));
        }
        if token as usize >= c.vocab_size {
            return Err(Error::config(
                "token",
                format!("id {token} is outside the vocabulary"),
            ));
        }
        if cache.layers.len() != c.num_layers {
            cache.layers = vec![(Vec::new(), Vec::new()); c.num_layers];
        }
        let (cos, sin) = (
            &self.cos[pos * hd..(pos + 1) * hd],
            &self.sin[pos * hd..(pos + 1) * hd],
        );
        let scale = 1.0 / (hd as f32).sqrt();
        let mut x = self.embeddings.row(token as usize);
        let mut scores = vec![0f32; pos + 1];
        for (blk, (kc, vc)) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let h = rms_norm(&x, &blk.attn_norm, c.rms_eps);
            let mut qkv = blk.qkv.matmul(&h, 1);
            let (q, kv) = qkv.split_at_mut(d);
            let (k, v) = kv.split_at_mut(kvd);
            rope(q, hd, cos, sin);
            rope(k, hd, cos, sin);
            kc.extend_from_slice(k);
            vc.extend_from_slice(v);
            let mut attn = vec![0f32; d];
            for head in 0..nh {
                let g = head / rep;
                let qh = &q[head * hd..(head + 1) * hd];
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let kj = &kc[j * kvd + g * hd..j * kvd + (g + 1) * hd];
                    *s = qh.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                    max = max.max(*s);
                }
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let out = &mut attn[head * hd..(head + 1) * hd];
                for (j, s) in scores.iter().enumerate() {
                    let p = s / total;
                    let vj = &vc[j * kvd + g * hd..j * kvd + (g + 1) * hd];
                    for (o, v) in out.iter_mut().zip(vj) {
                        *o += p * v;
                    }
                }
            }
            for (xi, o) in x.iter_mut().zip(blk.wo.matmul(&attn, 1)) {
                *xi += o;
            }
            let h = rms_norm(&x, &blk.ffn_norm, c.rms_eps);
            let gu = blk.gate_up.matmul(&h, 1);
            let act: Vec<f32> = (0..ff)
                .map(|i| {
                    let g = gu[i];
                    g / (1.0 + (-g).exp()) * gu[ff + i]
                })
                .collect();
            for (xi, o) in x.iter_mut().zip(blk.down.matmul(&act, 1)) {
                *xi += o;
            }
        }
        cache.len += 1;
        Ok(self.output.matmul(&rms_norm(&x, &self.norm, c.rms_eps), 1))
    }
}
