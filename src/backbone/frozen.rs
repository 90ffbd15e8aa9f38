//! The frozen encoder on the host: BERT's forward over f32 rows, only the real positions of
//! each sequence (padding is never computed), with a tape of what its backward needs, and the
//! gradient with respect to the input embeddings, weights held constant (no weight gradient is
//! ever formed). The same computation as [`BertEncoder::forward_embeds`], which stays the
//! reference and the path on GPU backends.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use rayon::prelude::*;

use super::attention::Attention;
use super::bert::BertEncoder;
use super::workspace::Workspace;
use crate::kernels::{dot, gelu, gelu_grad, sum, vectorized};

/// Rows per parallel task of the row-wise stages (layer norms, GELU).
const ROWS_PER_TASK: usize = 16;

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
    /// Buffers reused from pass to pass.
    ws: Workspace,
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
            ws: Workspace::default(),
        }
    }
}

/// `c = a·b`, or `c += a·b` when `accumulate`, for row-major `a: [m, k]`, `b: [k, n]`,
/// `c: [m, n]`, on rayon's pool: below [`SMALL_M`] rows, `b`'s and `c`'s columns cut into one
/// block per thread, each block a single-threaded call (one hand-off per product, where the
/// crate's own split of a few rows costs more in waiting than it gains).
fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let threads = rayon::current_num_threads();
    let blocks = if m < SMALL_M && n >= 64 * threads {
        threads
    } else {
        1
    };
    gemm_in_blocks(m, k, n, a, b, c, accumulate, blocks);
}

/// [`gemm`] with `c`'s columns in `blocks` blocks of whole 16-column panels, one
/// single-threaded call each, the blocks in parallel; one block: the crate's own threads.
#[allow(clippy::too_many_arguments)]
fn gemm_in_blocks(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    blocks: usize,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if blocks <= 1 {
        // SAFETY: the buffers hold the elements the row-major strides address (checked
        // above), and `c` aliases neither factor.
        unsafe { gemm_block(m, k, n, n, a, b.as_ptr(), c.as_mut_ptr(), accumulate, true) };
        return;
    }
    let width = n.div_ceil(blocks).div_ceil(16) * 16;
    let c_at = c.as_mut_ptr() as usize;
    (0..n.div_ceil(width)).into_par_iter().for_each(|i| {
        let (from, cols) = (i * width, width.min(n - i * width));
        // SAFETY: block `i` reads columns `from..from + cols` of `b` and writes the same
        // columns of `c`, inside the buffers checked above; the blocks' columns are disjoint,
        // so no two threads write the same element.
        unsafe {
            gemm_block(
                m,
                k,
                cols,
                n,
                a,
                b.as_ptr().add(from),
                (c_at as *mut f32).add(from),
                accumulate,
                false,
            )
        };
    });
}

/// Products with fewer rows than this split their columns over the threads ([`gemm`]).
const SMALL_M: usize = 64;

/// `c[.., ..n] (+)= a·b[.., ..n]` where `b` and `c` have rows `stride` apart.
///
/// # Safety
/// `b` and `c` must address `k × stride` and `m × stride` elements (the first `n` columns of
/// each row read or written), and `c`'s block must alias neither factor nor another thread's
/// block.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(
    m: usize,
    k: usize,
    n: usize,
    stride: usize,
    a: &[f32],
    b: *const f32,
    c: *mut f32,
    accumulate: bool,
    parallel: bool,
) {
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: as the caller guarantees.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            stride as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b,
            1,
            stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

impl Dense {
    /// `x·W + b`, `x: [rows, in]`.
    fn forward(&self, x: &[f32], ws: &Workspace) -> Vec<f32> {
        let rows = x.len() / self.inp;
        let mut y = ws.zeros(rows * self.out);
        y.chunks_mut(self.out)
            .for_each(|r| r.copy_from_slice(&self.b));
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
    fn forward(&self, x: &[f32], eps: f32, ws: &Workspace) -> (Vec<f32>, Normed) {
        let d = self.g.len();
        let mut y = ws.zeros(x.len());
        let mut normed = Normed {
            xhat: ws.zeros(x.len()),
            rstd: ws.zeros(x.len() / d),
        };
        let group = ROWS_PER_TASK * d;
        (
            y.par_chunks_mut(group),
            normed.xhat.par_chunks_mut(group),
            normed.rstd.par_chunks_mut(ROWS_PER_TASK),
            x.par_chunks(group),
        )
            .into_par_iter()
            .for_each(|(y, xhat, rstd, x)| vectorized(|| self.forward_rows(x, y, xhat, rstd, eps)));
        (y, normed)
    }

    #[inline(always)]
    fn forward_rows(&self, x: &[f32], y: &mut [f32], xhat: &mut [f32], rstd: &mut [f32], eps: f32) {
        let d = self.g.len();
        let rows = x.chunks(d).zip(y.chunks_mut(d)).zip(xhat.chunks_mut(d));
        for (((row, out), h), r) in rows.zip(rstd) {
            let mean = sum(row) / d as f32;
            h.iter_mut().zip(row).for_each(|(h, v)| *h = v - mean);
            *r = 1.0 / (dot(h, h) / d as f32 + eps).sqrt();
            for (((o, h), g), b) in out.iter_mut().zip(h.iter_mut()).zip(&self.g).zip(&self.b) {
                *h *= *r;
                *o = *h * g + b;
            }
        }
    }

    /// The gradient at the norm's input given `dy` at its output.
    fn backward(&self, normed: &Normed, dy: &[f32], ws: &Workspace) -> Vec<f32> {
        let d = self.g.len();
        let mut dx = ws.zeros(dy.len());
        let group = ROWS_PER_TASK * d;
        (
            dx.par_chunks_mut(group),
            dy.par_chunks(group),
            normed.xhat.par_chunks(group),
            normed.rstd.par_chunks(ROWS_PER_TASK),
        )
            .into_par_iter()
            .for_each(|(dx, dy, xhat, rstd)| vectorized(|| self.backward_rows(dy, xhat, rstd, dx)));
        dx
    }

    #[inline(always)]
    fn backward_rows(&self, dy: &[f32], xhat: &[f32], rstd: &[f32], dx: &mut [f32]) {
        let d = self.g.len();
        let mut gdy = vec![0f32; d];
        let rows = dy.chunks(d).zip(xhat.chunks(d)).zip(dx.chunks_mut(d));
        for (((dy, xhat), dx), &r) in rows.zip(rstd) {
            gdy.iter_mut()
                .zip(dy)
                .zip(&self.g)
                .for_each(|((o, dy), g)| *o = dy * g);
            let mean_g = sum(&gdy) / d as f32;
            let mean_gx = dot(&gdy, xhat) / d as f32;
            for ((o, g), h) in dx.iter_mut().zip(&gdy).zip(xhat) {
                *o = r * (g - mean_g - h * mean_gx);
            }
        }
    }
}

/// `f(out, inp)` over groups of rows `w` wide of `out` and `inp`, in parallel, each group's
/// loop compiled for the widest instruction set ([`vectorized`]).
fn for_rows(out: &mut [f32], inp: &[f32], w: usize, f: impl Fn(&mut [f32], &[f32]) + Sync) {
    let group = ROWS_PER_TASK * w;
    out.par_chunks_mut(group)
        .zip(inp.par_chunks(group))
        .for_each(|(o, i)| vectorized(|| f(o, i)));
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

impl FrozenEncoder {
    /// Hidden size.
    pub fn hidden_size(&self) -> usize {
        self.d
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
        let (d, ws) = (self.d, &self.ws);
        let mut x = ws.zeros(lens.iter().sum::<usize>() * d);
        for ((i, &n), o) in lens.iter().enumerate().zip(offsets(lens)) {
            let seq = &inputs[i * t * d..][..n * d];
            let out = &mut x[o * d..][..n * d];
            for ((o, a), p) in out.iter_mut().zip(seq).zip(&self.position_type) {
                *o = a + p;
            }
        }
        let (mut x, embed) = {
            let (y, normed) = self.ln_embed.forward(&x, self.eps, ws);
            ws.give([x]);
            (y, normed)
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (y, tape) = self.layer_forward(layer, &x, lens);
            ws.give([std::mem::replace(&mut x, y)]);
            layers.push(tape);
        }
        let tape = EncoderTape {
            lens: lens.to_vec(),
            embed,
            layers,
        };
        let hidden = unpack(&x, lens, t, d);
        ws.give([x]);
        (hidden, tape)
    }

    /// The hidden states of [`FrozenEncoder::forward_taped`], the tape recycled at once
    /// (scoring: no backward follows).
    pub fn forward(&self, inputs: &[f32], t: usize, lens: &[usize]) -> Vec<f32> {
        let (hidden, tape) = self.forward_taped(inputs, t, lens);
        self.recycle(tape);
        hidden
    }

    fn layer_forward(&self, layer: &Layer, x: &[f32], lens: &[usize]) -> (Vec<f32>, LayerTape) {
        let ws = &self.ws;
        let qkv = layer.qkv.forward(x, ws);
        let (ctx, probs) = self.attention().forward(&qkv, lens, ws);
        let mut a = layer.attn_out.forward(&ctx, ws);
        a.iter_mut().zip(x).for_each(|(a, x)| *a += x);
        let (y1, attn) = layer.ln_attn.forward(&a, self.eps, ws);
        let ff_pre = layer.ff_in.forward(&y1, ws);
        let mut act = ws.zeros(ff_pre.len());
        for_rows(&mut act, &ff_pre, layer.ff_in.out, |a, u| {
            a.iter_mut().zip(u).for_each(|(a, &u)| *a = gelu(u))
        });
        let mut f = layer.ff_out.forward(&act, ws);
        f.iter_mut().zip(&y1).for_each(|(f, y)| *f += y);
        let (y2, ff) = layer.ln_ff.forward(&f, self.eps, ws);
        ws.give([ctx, a, y1, act, f]);
        let tape = LayerTape {
            qkv,
            probs,
            attn,
            ff_pre,
            ff,
        };
        (y2, tape)
    }

    fn attention(&self) -> Attention {
        Attention {
            d: self.d,
            heads: self.heads,
        }
    }

    /// The gradient `[b·t, d]` of a loss with respect to the inputs of a taped pass, given its
    /// gradient `d_hidden: [b·t, d]` at the hidden states (padded rows are ignored and get
    /// zero). The tape's buffers are kept for the next pass.
    pub fn input_gradient(&self, tape: EncoderTape, t: usize, d_hidden: &[f32]) -> Vec<f32> {
        let (d, lens, ws) = (self.d, &tape.lens, &self.ws);
        let mut dy = ws.zeros(lens.iter().sum::<usize>() * d);
        for ((i, &n), o) in lens.iter().enumerate().zip(offsets(lens)) {
            dy[o * d..][..n * d].copy_from_slice(&d_hidden[i * t * d..][..n * d]);
        }
        for (layer, lt) in self.layers.iter().zip(&tape.layers).rev() {
            let dx = self.layer_backward(layer, lt, &dy, lens);
            ws.give([std::mem::replace(&mut dy, dx)]);
        }
        let dx = self.ln_embed.backward(&tape.embed, &dy, ws);
        let grad = unpack(&dx, lens, t, d);
        ws.give([dy, dx]);
        self.recycle(tape);
        grad
    }

    /// Keeps a finished tape's buffers for the next pass.
    fn recycle(&self, tape: EncoderTape) {
        let normed = |n: Normed| [n.xhat, n.rstd];
        self.ws.give(normed(tape.embed));
        for lt in tape.layers {
            self.ws.give([lt.qkv, lt.probs, lt.ff_pre]);
            self.ws
                .give(normed(lt.attn).into_iter().chain(normed(lt.ff)));
        }
    }

    fn layer_backward(
        &self,
        layer: &Layer,
        lt: &LayerTape,
        dy: &[f32],
        lens: &[usize],
    ) -> Vec<f32> {
        // y2 = norm(ff_out(gelu(ff_in(y1))) + y1)
        let ws = &self.ws;
        let dz2 = layer.ln_ff.backward(&lt.ff, dy, ws);
        let mut d_pre = ws.zeros(lt.ff_pre.len());
        layer.ff_out.backward(&dz2, &mut d_pre, false);
        for_rows(&mut d_pre, &lt.ff_pre, layer.ff_in.out, |g, u| {
            g.iter_mut().zip(u).for_each(|(g, &u)| *g *= gelu_grad(u))
        });
        let mut dy1 = dz2;
        layer.ff_in.backward(&d_pre, &mut dy1, true);
        // y1 = norm(attn_out(attention(qkv(x))) + x)
        let dz1 = layer.ln_attn.backward(&lt.attn, &dy1, ws);
        let mut d_ctx = ws.zeros(dz1.len());
        layer.attn_out.backward(&dz1, &mut d_ctx, false);
        let d_qkv = (self.attention()).backward(&lt.qkv, &lt.probs, &d_ctx, lens, ws);
        let mut dx = dz1;
        layer.qkv.backward(&d_qkv, &mut dx, true);
        ws.give([d_pre, dy1, d_ctx, d_qkv]);
        dx
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
pub(super) mod tests {
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

    /// `n` values drawn uniformly from [-1, 1).
    pub(in crate::backbone) fn uniform(rng: &mut impl Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// Largest difference relative to the largest magnitude of `want`.
    pub(in crate::backbone) fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
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
        let got_dx = host.input_gradient(tape, t, &r);
        (rel_diff(&got_h, &want_h), rel_diff(&got_dx, &want_dx))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        /// Products cut into column blocks are the product, accumulated or not.
        #[test]
        fn column_blocks_give_the_product(
            m in 1usize..70,
            k in 1usize..40,
            n in 1usize..300,
            blocks in 1usize..5,
            accumulate: bool,
            seed in 0u64..1000,
        ) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (a, b, c0) = (uniform(&mut rng, m * k), uniform(&mut rng, k * n), uniform(&mut rng, m * n));
            let mut want = if accumulate { c0.clone() } else { vec![0f32; m * n] };
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] += (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum::<f32>();
                }
            }
            let mut got = c0;
            gemm_in_blocks(m, k, n, &a, &b, &mut got, accumulate, blocks);
            prop_assert!(rel_diff(&got, &want) < 1e-5, "{}", rel_diff(&got, &want));
        }
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
}
