//! The frozen decoder's forward pass on the host, for CPU backends: f32 weights in plain
//! buffers, the rows of many sequences in one pass with no padding, each sequence attending to
//! its own cached input states in place.
//!
//! Scoring a split and building its input states need no autodiff graph. Through burn's
//! ndarray backend the same pass spends about two thirds of its time outside the GEMMs, on one
//! core: element-wise ops that each allocate a new array, copies into the key/value cache,
//! padding masks and many tiny batched matmuls. Here each layer is four GEMMs (the residual
//! adds fused into them, threaded as burn-ndarray's are: `MATMUL_NUM_THREADS`) and plain loops
//! for the rest, a few per cent of the work. (The loops stay on the calling thread: handing
//! them to rayon's pool made its idle workers spin against the GEMM threads, and the whole
//! pass slower.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::config::LlamaConfig;
pub(super) use crate::kernels::{axpy, dot, softmax};

/// One layer's weights, laid out as [`super::Llama`] keeps them (`x·W`, `W` as `[in, out]`).
#[derive(Clone)]
pub(crate) struct FrozenBlock {
    pub(crate) attn_norm: Vec<f32>,
    /// Query, key and value, `[d, d + 2·kv_d]`, query/key columns in rotate-half order.
    pub(crate) wqkv: Vec<f32>,
    /// `[d, d]`.
    pub(crate) wo: Vec<f32>,
    pub(crate) ffn_norm: Vec<f32>,
    /// Gate and up, `[d, 2·ff]`.
    pub(crate) w_gate_up: Vec<f32>,
    /// `[ff, d]`.
    pub(crate) w_down: Vec<f32>,
}

/// The decoder's layers on the host (no embedding table, no output head: callers embed and
/// read out what they need). Built from a [`super::Llama`] with [`super::Llama::frozen`].
#[derive(Clone)]
pub struct FrozenDecoder {
    pub(crate) config: LlamaConfig,
    pub(crate) blocks: Vec<FrozenBlock>,
    pub(crate) norm: Vec<f32>,
    /// Rotary tables `[max_position, head_dim]`, each half repeated.
    pub(crate) cos: Vec<f32>,
    pub(crate) sin: Vec<f32>,
}

/// One sequence of a pass: `len` rows of the input from row `row` on, at rotary positions
/// `position..position + len`, continuing entry `past` of the cached states (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq {
    /// First row in the pass's input.
    pub row: usize,
    /// Rows (tokens).
    pub len: usize,
    /// Rotary position of the first row.
    pub position: usize,
    /// The cached states this sequence continues.
    pub past: Option<usize>,
}

/// One layer of one cached sequence: keys and values head-major, `[kv_heads, width,
/// head_dim]` each, of which positions `start..width` hold real tokens (the rest is padding).
#[derive(Debug, Clone, Copy)]
pub struct PastLayer<'a> {
    /// Keys.
    pub keys: &'a [f32],
    /// Values.
    pub values: &'a [f32],
    /// Positions held per head.
    pub width: usize,
    /// First real position.
    pub start: usize,
}

/// Cached key/value states that sequences of a pass continue.
pub trait Past: Sync {
    /// Entry `entry`'s keys and values at `layer`.
    fn layer(&self, entry: usize, layer: usize) -> PastLayer<'_>;
}

/// Receives each layer's keys (rotated) and values of a pass, as `qkv` rows `[rows, d +
/// 2·kv_d]`: columns `d..d + kv_d` are the keys, the last `kv_d` the values.
pub trait KeySink {
    /// Layer `layer`'s projections.
    fn layer(&mut self, layer: usize, qkv: &[f32]);
}

impl KeySink for () {
    fn layer(&mut self, _: usize, _: &[f32]) {}
}

/// The host decoder of the model file with digest `sha256` in this process, built by `build`
/// on first use: the runs of a sweep share one copy of the weights.
pub fn shared(sha256: &str, build: impl FnOnce() -> FrozenDecoder) -> Arc<FrozenDecoder> {
    static DECODERS: OnceLock<Mutex<HashMap<String, Arc<FrozenDecoder>>>> = OnceLock::new();
    let mut decoders = DECODERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    decoders
        .entry(sha256.to_string())
        .or_insert_with(|| Arc::new(build()))
        .clone()
}

/// `c = beta·c + a·b` for row-major `a: [m, k]`, `b: [k, n]`, `c: [m, n]`.
pub(super) fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], beta: f32) {
    gemm_strided(m, k, n, a, b, (n, 1), c, beta);
}

/// `c = a·wᵀ` for row-major `a: [m, k]` and a weight stored `[n, k]` (`x·W` style, `[in, out]`),
/// read in place through strides: `[m, n]`.
pub(super) fn gemm_wt(m: usize, k: usize, n: usize, a: &[f32], w: &[f32], c: &mut [f32]) {
    gemm_strided(m, k, n, a, w, (1, k), c, 0.0);
}

/// `c = beta·c + a·b` with `b: [k, n]` at strides `(row, column)`.
#[allow(clippy::too_many_arguments)]
fn gemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
    beta: f32,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the three buffers hold at least the elements the strides address (checked above;
    // `b`'s strides are `(n, 1)` or `(1, k)`, both within `k·n`).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// RMSNorm of each `d`-wide row of `x` into `out`, as [`super::Llama`] computes it.
pub(super) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    out.chunks_mut(d).zip(x.chunks(d)).for_each(|(o, row)| {
        let inv = (dot(row, row) / d as f32 + eps).powf(-0.5);
        for ((o, x), w) in o.iter_mut().zip(row).zip(weight) {
            *o = x * inv * w;
        }
    });
}

impl std::fmt::Debug for FrozenDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenDecoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FrozenDecoder {
    /// The architecture.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Runs rows `x` (`[rows, d]`, the sequences' input embeddings) through every layer and the
    /// final norm; returns the hidden states `[rows, d]`. `seqs` must cover the rows in order.
    /// Each layer's keys and values go to `sink`.
    pub fn forward(
        &self,
        x: Vec<f32>,
        seqs: &[Seq],
        past: Option<&dyn Past>,
        sink: &mut dyn KeySink,
    ) -> Vec<f32> {
        self.run(x, seqs, past, sink, None)
    }

    /// [`FrozenDecoder::forward`], keeping what [`FrozenDecoder::input_gradient`] needs.
    pub fn forward_taped(
        &self,
        x: Vec<f32>,
        seqs: &[Seq],
        past: Option<&dyn Past>,
    ) -> (Vec<f32>, Tape) {
        let mut tape = Tape::default();
        let hidden = self.run(x, seqs, past, &mut (), Some(&mut tape));
        (hidden, tape)
    }

    fn run(
        &self,
        mut x: Vec<f32>,
        seqs: &[Seq],
        past: Option<&dyn Past>,
        sink: &mut dyn KeySink,
        mut tape: Option<&mut Tape>,
    ) -> Vec<f32> {
        let d = self.config.hidden_size;
        let rows = x.len() / d;
        debug_assert_eq!(seqs.iter().map(|s| s.len).sum::<usize>(), rows);
        let mut scratch = Scratch::new(&self.config, rows);
        for (l, block) in self.blocks.iter().enumerate() {
            let input = tape.as_ref().map(|_| x.clone());
            self.attention(l, block, &mut x, seqs, past, &mut scratch);
            sink.layer(l, &scratch.qkv);
            let mid = tape.as_ref().map(|_| x.clone());
            self.feed_forward(block, &mut x, &mut scratch);
            if let (Some(t), Some(input), Some(mid)) = (tape.as_deref_mut(), input, mid) {
                t.layers.push(LayerTape {
                    input,
                    qkv: scratch.qkv.clone(),
                    mid,
                    gate_up: scratch.gate_up.clone(),
                });
            }
        }
        let mut out = vec![0f32; x.len()];
        rms_norm(&x, &self.norm, self.config.rms_eps, &mut out);
        if let Some(t) = tape {
            t.last = x;
        }
        out
    }

    /// `x += attention(norm(x))·Wo`, keeping the rotated projections in `s.qkv`.
    fn attention(
        &self,
        layer: usize,
        block: &FrozenBlock,
        x: &mut [f32],
        seqs: &[Seq],
        past: Option<&dyn Past>,
        s: &mut Scratch,
    ) {
        let c = &self.config;
        let (d, rows) = (c.hidden_size, s.rows);
        let w = d + 2 * c.num_kv_heads * c.head_dim();
        rms_norm(x, &block.attn_norm, c.rms_eps, &mut s.h);
        gemm(rows, d, w, &s.h, &block.wqkv, &mut s.qkv, 0.0);
        self.rotate(&mut s.qkv, seqs, false);
        for seq in seqs {
            let past = seq.past.zip(past).map(|(e, p)| p.layer(e, layer));
            let out = &mut s.h[seq.row * d..(seq.row + seq.len) * d];
            self.attend(&s.qkv[seq.row * w..(seq.row + seq.len) * w], past, out);
        }
        gemm(rows, d, d, &s.h, &block.wo, x, 1.0);
    }

    /// Rotary embedding of every row's query and key heads, in place; with `backward`, the
    /// transposed rotation (of gradients).
    pub(super) fn rotate(&self, qkv: &mut [f32], seqs: &[Seq], backward: bool) {
        let c = &self.config;
        let hd = c.head_dim();
        let half = hd / 2;
        let heads = c.num_heads + c.num_kv_heads;
        let w = c.hidden_size + 2 * c.num_kv_heads * hd;
        let positions: Vec<usize> = seqs
            .iter()
            .flat_map(|s| s.position..s.position + s.len)
            .collect();
        qkv.chunks_mut(w).zip(&positions).for_each(|(row, &p)| {
            let (cos, sin) = (&self.cos[p * hd..][..hd], &self.sin[p * hd..][..hd]);
            for head in row[..heads * hd].chunks_exact_mut(hd) {
                if !backward {
                    super::host::rope(head, hd, cos, sin);
                    continue;
                }
                // The transposed rotation.
                for i in 0..half {
                    let (a, b) = (head[i], head[i + half]);
                    head[i] = a * cos[i] + b * sin[i + half];
                    head[i + half] = b * cos[i + half] - a * sin[i];
                }
            }
        });
    }

    /// Causal attention of one sequence's rows (`qkv: [len, d + 2·kv_d]`) over its cached
    /// states and itself, grouped-query; writes `out: [len, d]`.
    fn attend(&self, qkv: &[f32], past: Option<PastLayer<'_>>, out: &mut [f32]) {
        let a = SeqAttention::new(&self.config, qkv, past);
        let mut p = vec![0f32; a.cached() + a.len];
        out.fill(0.0);
        for qh in 0..self.config.num_heads {
            let g = a.group(qh);
            for i in 0..a.len {
                let n = a.probabilities(qh, i, &mut p);
                let o = &mut out[i * a.d + qh * a.hd..][..a.hd];
                for (j, &pj) in p[..n].iter().enumerate() {
                    axpy(pj, a.value(g, j), o);
                }
            }
        }
    }

    /// `x += (silu(gate) · up)·W_down` of `norm(x)`.
    fn feed_forward(&self, block: &FrozenBlock, x: &mut [f32], s: &mut Scratch) {
        let c = &self.config;
        let (d, ff, rows) = (c.hidden_size, c.intermediate_size, s.rows);
        rms_norm(x, &block.ffn_norm, c.rms_eps, &mut s.h);
        gemm(rows, d, 2 * ff, &s.h, &block.w_gate_up, &mut s.gate_up, 0.0);
        s.act
            .chunks_mut(ff)
            .zip(s.gate_up.chunks(2 * ff))
            .for_each(|(a, gu)| {
                let (g, u) = gu.split_at(ff);
                for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                    *a = g / (1.0 + (-g).exp()) * u;
                }
            });
        gemm(rows, ff, d, &s.act, &block.w_down, x, 1.0);
    }
}

/// One sequence's attention at one layer: its rotated projections and the cached states it
/// continues. Keys are numbered cached first (`0..cached()`), then the sequence's own.
pub(super) struct SeqAttention<'a> {
    qkv: &'a [f32],
    past: Option<PastLayer<'a>>,
    /// Rows of the sequence.
    pub(super) len: usize,
    pub(super) d: usize,
    pub(super) hd: usize,
    kvd: usize,
    rep: usize,
    scale: f32,
}

impl<'a> SeqAttention<'a> {
    pub(super) fn new(c: &LlamaConfig, qkv: &'a [f32], past: Option<PastLayer<'a>>) -> Self {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let kvd = c.num_kv_heads * hd;
        Self {
            qkv,
            past,
            len: qkv.len() / (d + 2 * kvd),
            d,
            hd,
            kvd,
            rep: c.num_heads / c.num_kv_heads,
            scale: 1.0 / (hd as f32).sqrt(),
        }
    }

    fn width(&self) -> usize {
        self.d + 2 * self.kvd
    }

    /// Cached keys that are real tokens.
    pub(super) fn cached(&self) -> usize {
        self.past.map_or(0, |p| p.width - p.start)
    }

    /// The key/value head of query head `qh`.
    pub(super) fn group(&self, qh: usize) -> usize {
        qh / self.rep
    }

    /// Query head `qh` of row `i`.
    pub(super) fn query(&self, qh: usize, i: usize) -> &'a [f32] {
        &self.qkv[i * self.width() + qh * self.hd..][..self.hd]
    }

    /// Column of key head `g` in a projection row.
    pub(super) fn key_column(&self, g: usize) -> usize {
        self.d + g * self.hd
    }

    /// Column of value head `g` in a projection row.
    pub(super) fn value_column(&self, g: usize) -> usize {
        self.d + self.kvd + g * self.hd
    }

    fn cached_row(&self, values: bool, g: usize, j: usize) -> &'a [f32] {
        match self.past {
            Some(p) => {
                let all = if values { p.values } else { p.keys };
                &all[(g * p.width + p.start + j) * self.hd..][..self.hd]
            }
            None => &[],
        }
    }

    /// Key `j` of head `g`.
    pub(super) fn key(&self, g: usize, j: usize) -> &'a [f32] {
        match j.checked_sub(self.cached()) {
            None => self.cached_row(false, g, j),
            Some(own) => &self.qkv[own * self.width() + self.key_column(g)..][..self.hd],
        }
    }

    /// Value `j` of head `g`.
    pub(super) fn value(&self, g: usize, j: usize) -> &'a [f32] {
        match j.checked_sub(self.cached()) {
            None => self.cached_row(true, g, j),
            Some(own) => &self.qkv[own * self.width() + self.value_column(g)..][..self.hd],
        }
    }

    /// Attention probabilities of query head `qh` of row `i` over the keys it sees, into
    /// `p`; returns how many (`cached() + i + 1`).
    pub(super) fn probabilities(&self, qh: usize, i: usize, p: &mut [f32]) -> usize {
        let (q, g) = (self.query(qh, i), self.group(qh));
        let n = self.cached() + i + 1;
        for (j, pj) in p[..n].iter_mut().enumerate() {
            *pj = dot(q, self.key(g, j)) * self.scale;
        }
        softmax(&mut p[..n]);
        n
    }

    /// The scale of the scores.
    pub(super) fn scale(&self) -> f32 {
        self.scale
    }
}

/// What a taped pass keeps per layer for the backward.
#[derive(Debug, Clone, Default)]
pub(super) struct LayerTape {
    /// The layer's input `[rows, d]`.
    pub(super) input: Vec<f32>,
    /// Rotated projections `[rows, d + 2·kv_d]`.
    pub(super) qkv: Vec<f32>,
    /// The residual after attention `[rows, d]`.
    pub(super) mid: Vec<f32>,
    /// Gate and up projections `[rows, 2·ff]`.
    pub(super) gate_up: Vec<f32>,
}

/// The activations of a taped pass ([`FrozenDecoder::forward_taped`]).
#[derive(Debug, Clone, Default)]
pub struct Tape {
    pub(super) layers: Vec<LayerTape>,
    /// The input of the final norm.
    pub(super) last: Vec<f32>,
}

/// The buffers of one pass, reused by every layer.
struct Scratch {
    rows: usize,
    /// Normed input, then the attention output: `[rows, d]`.
    h: Vec<f32>,
    qkv: Vec<f32>,
    gate_up: Vec<f32>,
    act: Vec<f32>,
}

impl Scratch {
    fn new(c: &LlamaConfig, rows: usize) -> Self {
        let (d, ff) = (c.hidden_size, c.intermediate_size);
        let w = d + 2 * c.num_kv_heads * c.head_dim();
        Self {
            rows,
            h: vec![0.0; rows * d],
            qkv: vec![0.0; rows * w],
            gate_up: vec![0.0; rows * 2 * ff],
            act: vec![0.0; rows * ff],
        }
    }
}
