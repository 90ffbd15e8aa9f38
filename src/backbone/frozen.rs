//! The frozen encoder on the host: BERT's forward over f32 rows, only the real positions of
//! each sequence (padding is never computed), with a tape of what its backward needs, and the
//! gradient with respect to the input embeddings, weights held constant (no weight gradient is
//! ever formed). The same computation as [`BertEncoder::forward_embeds`], which stays the
//! reference and the path on GPU backends.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::bert::BertEncoder;
// The host decoder's row kernels serve the host encoder too.
use crate::decoder::host_kernels::{dot, softmax};

/// A dense layer's weight `[in, out]` (row-major, as loaded), the same transposed and packed
/// `[out, in]` for the backward (reading `W` in place through strides halves the speed of the
/// small products: README §3), and bias `[out]`.
struct Dense {
    w: Vec<f32>,
    wt: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

/// A layer norm's scale and shift.
struct Norm {
    g: Vec<f32>,
    b: Vec<f32>,
}

struct Layer {
    qkv: Dense,
    attn_out: Dense,
    ln_attn: Norm,
    ff_in: Dense,
    ff_out: Dense,
    ln_ff: Norm,
}

/// The encoder's weights on the host.
pub struct FrozenEncoder {
    d: usize,
    heads: usize,
    eps: f32,
    /// Position plus type-0 embeddings, `[max_pos, d]`.
    position_type: Vec<f32>,
    ln_embed: Norm,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for FrozenEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenEncoder")
            .field("hidden_size", &self.d)
            .field("heads", &self.heads)
            .field("layers", &self.layers.len())
            .finish()
    }
}

/// A normalised row block: `x̂` and `1/σ` of each row, what a layer norm's backward needs.
#[derive(Default)]
struct Normed {
    xhat: Vec<f32>,
    rstd: Vec<f32>,
}

/// What one layer's backward reads.
#[derive(Default)]
struct LayerTape {
    /// `[rows, 3d]`.
    qkv: Vec<f32>,
    /// Attention probabilities, per sequence and head `[len, len]`, concatenated.
    probs: Vec<f32>,
    attn: Normed,
    /// The feed-forward pre-activation `[rows, ff]`.
    ff_pre: Vec<f32>,
    ff: Normed,
}

/// A taped forward pass: the sequences' real lengths and each stage's saved values.
pub struct EncoderTape {
    lens: Vec<usize>,
    embed: Normed,
    layers: Vec<LayerTape>,
}

impl<B: Backend> From<&BertEncoder<B>> for FrozenEncoder {
    fn from(encoder: &BertEncoder<B>) -> Self {
        let host1 = |t: &Tensor<B, 1>| -> Vec<f32> { t.to_data().iter::<f32>().collect() };
        let host2 = |t: &Tensor<B, 2>| -> Vec<f32> { t.to_data().iter::<f32>().collect() };
        let config = encoder.config();
        let (matrices, vectors) = encoder.weights();
        let norm = |i: usize| Norm {
            g: host1(&vectors[i]),
            b: host1(&vectors[i + 1]),
        };
        let dense = |m: usize, v: usize| {
            let [inp, out] = matrices[m].dims();
            let w = host2(&matrices[m]);
            Dense {
                wt: (0..inp * out)
                    .map(|i| w[(i % inp) * out + i / inp])
                    .collect(),
                w,
                b: host1(&vectors[v]),
                inp,
                out,
            }
        };
        // `weights()` order: word, position-type matrices then per layer qkv, attn_out,
        // ff_in, ff_out; embedding norm vectors then per layer 4 biases and 2 norms.
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let (m, v) = (2 + 4 * l, 2 + 8 * l);
                Layer {
                    qkv: dense(m, v),
                    attn_out: dense(m + 1, v + 1),
                    ff_in: dense(m + 2, v + 2),
                    ff_out: dense(m + 3, v + 3),
                    ln_attn: norm(v + 4),
                    ln_ff: norm(v + 6),
                }
            })
            .collect();
        Self {
            d: config.hidden_size,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            position_type: host2(&matrices[1]),
            ln_embed: norm(0),
            layers,
        }
    }
}

/// `c = a·b`, or `c += a·b` when `accumulate`, for row-major `a: [m, k]`, `b: [k, n]`,
/// `c: [m, n]`, on rayon's pool.
fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the buffers hold the elements the row-major strides address (checked above),
    // and `c` aliases neither factor.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

impl Dense {
    /// `x·W + b`, `x: [rows, in]`.
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len() / self.inp;
        let mut y: Vec<f32> = self.b.repeat(rows);
        gemm(rows, self.inp, self.out, x, &self.w, &mut y, true);
        y
    }

    /// `dy·Wᵀ` into `dx` (added when `accumulate`), `dy: [rows, out]`.
    fn backward(&self, dy: &[f32], dx: &mut [f32], accumulate: bool) {
        let rows = dy.len() / self.out;
        gemm(rows, self.out, self.inp, dy, &self.wt, dx, accumulate);
    }
}

impl Norm {
    /// Layer norm of each row of `x` (`eps` inside the root), keeping `x̂` and `1/σ`.
    fn forward(&self, x: &[f32], eps: f32) -> (Vec<f32>, Normed) {
        let d = self.g.len();
        let mut y = vec![0f32; x.len()];
        let mut normed = Normed {
            xhat: vec![0f32; x.len()],
            rstd: Vec::with_capacity(x.len() / d),
        };
        for ((row, out), xhat) in x
            .chunks(d)
            .zip(y.chunks_mut(d))
            .zip(normed.xhat.chunks_mut(d))
        {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            for (j, (&v, (o, h))) in row.iter().zip(out.iter_mut().zip(xhat)).enumerate() {
                *h = (v - mean) * rstd;
                *o = *h * self.g[j] + self.b[j];
            }
            normed.rstd.push(rstd);
        }
        (y, normed)
    }

    /// The gradient at the norm's input given `dy` at its output.
    fn backward(&self, normed: &Normed, dy: &[f32]) -> Vec<f32> {
        let d = self.g.len();
        let mut dx = vec![0f32; dy.len()];
        for (((dy, xhat), dx), &rstd) in dy
            .chunks(d)
            .zip(normed.xhat.chunks(d))
            .zip(dx.chunks_mut(d))
            .zip(&normed.rstd)
        {
            let (mut mean_g, mut mean_gx) = (0f32, 0f32);
            for j in 0..d {
                let g = dy[j] * self.g[j];
                mean_g += g;
                mean_gx += g * xhat[j];
            }
            let (mean_g, mean_gx) = (mean_g / d as f32, mean_gx / d as f32);
            for j in 0..d {
                dx[j] = rstd * (dy[j] * self.g[j] - mean_g - xhat[j] * mean_gx);
            }
        }
        dx
    }
}

/// `erf` by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), as PyTorch's CPU GELU.
fn erf(x: f32) -> f32 {
    let (p, a) = (
        0.327_591_1f32,
        [
            0.254_829_6f32,
            -0.284_496_74,
            1.421_413_7,
            -1.453_152,
            1.061_405_4,
        ],
    );
    let s = x.abs();
    let t = 1.0 / (1.0 + p * s);
    let poly = t * (a[0] + t * (a[1] + t * (a[2] + t * (a[3] + t * a[4]))));
    let y = 1.0 - poly * (-s * s).exp();
    y.copysign(x)
}

/// GELU in its exact (erf) form.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The derivative of [`gelu`].
fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
    cdf + x * pdf
}

/// Where sequence `i`'s real rows start among the packed rows.
fn offsets(lens: &[usize]) -> Vec<usize> {
    lens.iter()
        .scan(0, |o, &n| {
            let start = *o;
            *o += n;
            Some(start)
        })
        .collect()
}

/// The rows of one attention head of one sequence: its length, where its rows start, the
/// head's first column and where its probabilities start.
#[derive(Clone, Copy)]
struct Block {
    len: usize,
    row: usize,
    col: usize,
    probs: usize,
}

impl FrozenEncoder {
    /// Hidden size.
    pub fn hidden_size(&self) -> usize {
        self.d
    }

    /// Every (sequence, head) block of the packed rows.
    fn blocks(&self, lens: &[usize]) -> Vec<Block> {
        let dh = self.d / self.heads;
        let mut probs = 0;
        let mut all = Vec::with_capacity(lens.len() * self.heads);
        for (&len, row) in lens.iter().zip(offsets(lens)) {
            for h in 0..self.heads {
                all.push(Block {
                    len,
                    row,
                    col: h * dh,
                    probs,
                });
                probs += len * len;
            }
        }
        all
    }

    /// Hidden states `[b·t, d]` of `inputs: [b·t, d]` (word-level input embeddings of `b`
    /// sequences padded to `t` rows, the first `lens[i]` of sequence `i` real), and the tape
    /// of the pass; padded rows are never computed and come out zero.
    pub fn forward_taped(
        &self,
        inputs: &[f32],
        t: usize,
        lens: &[usize],
    ) -> (Vec<f32>, EncoderTape) {
        let d = self.d;
        let mut x = Vec::with_capacity(lens.iter().sum::<usize>() * d);
        for (i, &n) in lens.iter().enumerate() {
            let seq = &inputs[i * t * d..][..n * d];
            x.extend(seq.iter().zip(&self.position_type).map(|(a, p)| a + p));
        }
        let (mut x, embed) = self.ln_embed.forward(&x, self.eps);
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (y, tape) = self.layer_forward(layer, &x, lens);
            x = y;
            layers.push(tape);
        }
        let tape = EncoderTape {
            lens: lens.to_vec(),
            embed,
            layers,
        };
        (unpack(&x, lens, t, d), tape)
    }

    fn layer_forward(&self, layer: &Layer, x: &[f32], lens: &[usize]) -> (Vec<f32>, LayerTape) {
        let qkv = layer.qkv.forward(x);
        let (ctx, probs) = self.attention(&qkv, lens);
        let mut a = layer.attn_out.forward(&ctx);
        a.iter_mut().zip(x).for_each(|(a, x)| *a += x);
        let (y1, attn) = layer.ln_attn.forward(&a, self.eps);
        let ff_pre = layer.ff_in.forward(&y1);
        let act: Vec<f32> = ff_pre.iter().map(|&v| gelu(v)).collect();
        let mut f = layer.ff_out.forward(&act);
        f.iter_mut().zip(&y1).for_each(|(f, y)| *f += y);
        let (y2, ff) = layer.ln_ff.forward(&f, self.eps);
        let tape = LayerTape {
            qkv,
            probs,
            attn,
            ff_pre,
            ff,
        };
        (y2, tape)
    }

    /// Softmax attention of each sequence over its own real rows: the context `[rows, d]` and
    /// the probabilities.
    fn attention(&self, qkv: &[f32], lens: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let (d, dh) = (self.d, self.d / self.heads);
        let scale = 1.0 / (dh as f32).sqrt();
        let rows: usize = lens.iter().sum();
        let mut ctx = vec![0f32; rows * d];
        let mut probs = vec![0f32; lens.iter().map(|n| n * n).sum::<usize>() * self.heads];
        for b in self.blocks(lens) {
            let q = |i: usize| &qkv[(b.row + i) * 3 * d + b.col..][..dh];
            let k = |j: usize| &qkv[(b.row + j) * 3 * d + d + b.col..][..dh];
            let v = |j: usize| &qkv[(b.row + j) * 3 * d + 2 * d + b.col..][..dh];
            for i in 0..b.len {
                let p = &mut probs[b.probs + i * b.len..][..b.len];
                for (j, p) in p.iter_mut().enumerate() {
                    *p = dot(q(i), k(j)) * scale;
                }
                softmax(p);
                let out = &mut ctx[(b.row + i) * d + b.col..][..dh];
                for (j, &pj) in p.iter().enumerate() {
                    out.iter_mut().zip(v(j)).for_each(|(o, v)| *o += pj * v);
                }
            }
        }
        (ctx, probs)
    }

    /// The gradient `[b·t, d]` of a loss with respect to the inputs of a taped pass, given its
    /// gradient `d_hidden: [b·t, d]` at the hidden states (padded rows are ignored and get
    /// zero).
    pub fn input_gradient(&self, tape: &EncoderTape, t: usize, d_hidden: &[f32]) -> Vec<f32> {
        let (d, lens) = (self.d, &tape.lens);
        let mut dy = Vec::with_capacity(lens.iter().sum::<usize>() * d);
        for (i, &n) in lens.iter().enumerate() {
            dy.extend_from_slice(&d_hidden[i * t * d..][..n * d]);
        }
        for (layer, lt) in self.layers.iter().zip(&tape.layers).rev() {
            dy = self.layer_backward(layer, lt, &dy, lens);
        }
        let dx = self.ln_embed.backward(&tape.embed, &dy);
        unpack(&dx, lens, t, d)
    }

    fn layer_backward(
        &self,
        layer: &Layer,
        lt: &LayerTape,
        dy: &[f32],
        lens: &[usize],
    ) -> Vec<f32> {
        // y2 = norm(ff_out(gelu(ff_in(y1))) + y1)
        let dz2 = layer.ln_ff.backward(&lt.ff, dy);
        let mut d_pre = vec![0f32; lt.ff_pre.len()];
        layer.ff_out.backward(&dz2, &mut d_pre, false);
        d_pre
            .iter_mut()
            .zip(&lt.ff_pre)
            .for_each(|(g, &u)| *g *= gelu_grad(u));
        let mut dy1 = dz2;
        layer.ff_in.backward(&d_pre, &mut dy1, true);
        // y1 = norm(attn_out(attention(qkv(x))) + x)
        let dz1 = layer.ln_attn.backward(&lt.attn, &dy1);
        let mut d_ctx = vec![0f32; dz1.len()];
        layer.attn_out.backward(&dz1, &mut d_ctx, false);
        let d_qkv = self.attention_backward(&lt.qkv, &lt.probs, &d_ctx, lens);
        let mut dx = dz1;
        layer.qkv.backward(&d_qkv, &mut dx, true);
        dx
    }

    /// The gradient at `qkv` given the gradient at the attention's context.
    fn attention_backward(
        &self,
        qkv: &[f32],
        probs: &[f32],
        d_ctx: &[f32],
        lens: &[usize],
    ) -> Vec<f32> {
        let (d, dh) = (self.d, self.d / self.heads);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut d_qkv = vec![0f32; qkv.len()];
        let mut ds = Vec::new();
        for b in self.blocks(lens) {
            let at = |i: usize, part: usize| (b.row + i) * 3 * d + part * d + b.col;
            for i in 0..b.len {
                let p = &probs[b.probs + i * b.len..][..b.len];
                let dc = &d_ctx[(b.row + i) * d + b.col..][..dh];
                // dP_ij = dctx_i · v_j; dv_j += p_ij · dctx_i.
                ds.clear();
                for (j, &pj) in p.iter().enumerate() {
                    ds.push(dot(dc, &qkv[at(j, 2)..][..dh]));
                    let dv = &mut d_qkv[at(j, 2)..][..dh];
                    dv.iter_mut().zip(dc).for_each(|(g, c)| *g += pj * c);
                }
                // dS_ij = p_ij (dP_ij − Σ_j p_ij dP_ij), then dq_i and dk_j.
                let mean = dot(p, &ds);
                for (s, &pj) in ds.iter_mut().zip(p) {
                    *s = pj * (*s - mean) * scale;
                }
                for (j, &s) in ds.iter().enumerate() {
                    let (qi, kj) = (at(i, 0), at(j, 1));
                    for c in 0..dh {
                        d_qkv[qi + c] += s * qkv[kj + c];
                        d_qkv[kj + c] += s * qkv[qi + c];
                    }
                }
            }
        }
        d_qkv
    }
}

/// Packed rows back to `b` sequences padded to `t` rows (padding zero).
fn unpack(x: &[f32], lens: &[usize], t: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0f32; lens.len() * t * d];
    for ((i, &n), o) in lens.iter().enumerate().zip(offsets(lens)) {
        out[i * t * d..][..n * d].copy_from_slice(&x[o * d..][..n * d]);
    }
    out
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Tensor, TensorData};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::backbone::BertConfig;

    type Ad = Autodiff<NdArray>;

    fn config() -> BertConfig {
        BertConfig {
            vocab_size: 40,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            max_position_embeddings: 16,
            ..BertConfig::base()
        }
    }

    /// Largest difference relative to the largest magnitude of `want`.
    fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        diff / scale
    }

    /// The host pass against burn's on the same weights: hidden states at the real rows, and
    /// the input gradient of `Σ hidden ⊙ r` over the real rows.
    fn host_matches_burn(lens: &[usize], t: usize, seed: u64) -> (f32, f32) {
        let device = Default::default();
        <Ad as burn::tensor::backend::Backend>::seed(&device, seed);
        let encoder = BertEncoder::<Ad>::random_with_std(config(), 0.1, &device);
        let host = FrozenEncoder::from(&encoder);
        let (b, d) = (lens.len(), host.hidden_size());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let inputs: Vec<f32> = (0..b * t * d)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let real = |i: usize| (i / d) % t < lens[i / (t * d)];
        let r: Vec<f32> = (0..b * t * d)
            .map(|i| {
                if real(i) {
                    rng.random_range(-1.0..1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let mask: Vec<f32> = (0..b * t).map(|i| f32::from(i % t < lens[i / t])).collect();
        let x = Tensor::<Ad, 3>::from_data(TensorData::new(inputs.clone(), [b, t, d]), &device)
            .require_grad();
        let mask = Tensor::<Ad, 2>::from_data(TensorData::new(mask, [b, t]), &device);
        let r_t = Tensor::<Ad, 3>::from_data(TensorData::new(r.clone(), [b, t, d]), &device);
        let hidden = encoder.forward_embeds(x.clone(), mask);
        let grads = (hidden.clone() * r_t).sum().backward();
        let want_dx: Vec<f32> = x.grad(&grads).unwrap().into_data().iter::<f32>().collect();
        let want_h: Vec<f32> = hidden.into_data().iter::<f32>().collect();
        let want_h: Vec<f32> = (0..b * t * d)
            .map(|i| if real(i) { want_h[i] } else { 0.0 })
            .collect();
        let (got_h, tape) = host.forward_taped(&inputs, t, lens);
        let got_dx = host.input_gradient(&tape, t, &r);
        (rel_diff(&got_h, &want_h), rel_diff(&got_dx, &want_dx))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn the_host_encoder_is_burns_forward_and_input_gradient(
            lens in proptest::collection::vec(1usize..9, 1..4),
            pad in 0usize..3,
            seed in 0u64..1000,
        ) {
            let t = lens.iter().copied().max().unwrap_or(1) + pad;
            let (h, dx) = host_matches_burn(&lens, t, seed);
            prop_assert!(h < 1e-5, "hidden states differ by {h} (relative)");
            prop_assert!(dx < 1e-5, "input gradients differ by {dx} (relative)");
        }
    }

    #[test]
    fn erf_is_within_its_bound() {
        for i in -400..=400 {
            let x = i as f64 / 100.0;
            let want = libm::erf(x);
            assert!((erf(x as f32) as f64 - want).abs() < 3e-7, "erf({x})");
        }
    }
}
