//! The host encoder's softmax attention over packed rows: each sequence attends over its own
//! real rows, head by head, the sequences in parallel (each one's rows are contiguous, so each
//! writes its own part of the outputs); and its backward to the fused `qkv` rows. In a long
//! sequence every product (scores, context, and the backward's five) is one single-threaded
//! call of the `gemm` crate per head, reading each head's queries, keys and values in place in
//! the `[rows, 3d]` buffer through strides, no copies; in a short one each is a run of `axpy`s
//! ([`GEMM_FROM`]). Softmax, its backward and the `axpy`s are row kernels compiled for the
//! CPU's widest instruction set ([`vectorized`]).

use rayon::prelude::*;

use super::workspace::Workspace;
use crate::kernels::{axpy, dot, softmax_lanes, vectorized};

/// Sequences at least this long take their attention products from the `gemm` crate; shorter
/// ones as runs of `axpy`s over contiguous rows (keys and values transposed once per head),
/// where a GEMM call per head costs more than it saves (measured: BERT-base-sized class
/// sequences of 20 rows were 17 % slower by GEMM, 40-row MiniLM inputs 15 % faster).
const GEMM_FROM: usize = 32;

/// Multi-head attention of width `d` over `qkv: [rows, 3d]` rows (queries, keys, values).
#[derive(Debug, Clone, Copy)]
pub(super) struct Attention {
    pub d: usize,
    pub heads: usize,
}

/// One sequence's part of a pass: its length, its `qkv` rows, and its parts of the outputs.
struct Part<'a> {
    len: usize,
    qkv: &'a [f32],
    /// `[len, d]`: the context (forward) or its gradient (backward).
    ctx: &'a mut [f32],
    /// `[heads, len, len]`.
    probs: &'a mut [f32],
}

/// One sequence's part of a backward pass.
struct GradPart<'a> {
    len: usize,
    qkv: &'a [f32],
    probs: &'a [f32],
    d_ctx: &'a [f32],
    /// `[len, 3d]`.
    d_qkv: &'a mut [f32],
}

/// `data` cut into consecutive parts of the given sizes.
fn split_mut(mut data: &mut [f32], sizes: impl Iterator<Item = usize>) -> Vec<&mut [f32]> {
    sizes
        .map(|n| {
            let (part, rest) = std::mem::take(&mut data).split_at_mut(n);
            data = rest;
            part
        })
        .collect()
}

/// `data` cut into consecutive parts of the given sizes.
fn split(mut data: &[f32], sizes: impl Iterator<Item = usize>) -> Vec<&[f32]> {
    sizes
        .map(|n| {
            let (part, rest) = data.split_at(n);
            data = rest;
            part
        })
        .collect()
}

impl Attention {
    fn head_dim(self) -> usize {
        self.d / self.heads
    }

    /// The context `[rows, d]` and the probabilities (per sequence, per head `[len, len]`,
    /// concatenated) of sequences of real lengths `lens` packed in `qkv`.
    pub fn forward(self, qkv: &[f32], lens: &[usize], ws: &Workspace) -> (Vec<f32>, Vec<f32>) {
        self.forward_from(qkv, lens, ws, GEMM_FROM)
    }

    /// [`Attention::forward`] with sequences of at least `gemm_from` rows by GEMM.
    fn forward_from(
        self,
        qkv: &[f32],
        lens: &[usize],
        ws: &Workspace,
        gemm_from: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let d = self.d;
        let mut ctx = ws.zeros(lens.iter().sum::<usize>() * d);
        let mut probs = ws.zeros(lens.iter().map(|n| n * n).sum::<usize>() * self.heads);
        let ctxs = split_mut(&mut ctx, lens.iter().map(|n| n * d));
        let all_probs = split_mut(&mut probs, lens.iter().map(|n| self.heads * n * n));
        let qkvs = split(qkv, lens.iter().map(|n| n * 3 * d));
        let parts: Vec<Part> = (ctxs.into_iter().zip(all_probs).zip(qkvs).zip(lens))
            .map(|(((ctx, probs), qkv), &len)| Part {
                len,
                qkv,
                ctx,
                probs,
            })
            .collect();
        parts.into_par_iter().for_each(|part| {
            if part.len < gemm_from {
                vectorized(|| self.forward_by_rows(part))
            } else {
                self.forward_by_gemm(part)
            }
        });
        (ctx, probs)
    }

    /// Head `col / dh`'s queries, keys and values in a sequence's `[len, 3d]` rows.
    fn head(self, qkv: &[f32], col: usize) -> (View<'_>, View<'_>, View<'_>) {
        let d = self.d;
        (
            View::rows(&qkv[col..], 3 * d),
            View::rows(&qkv[d + col..], 3 * d),
            View::rows(&qkv[2 * d + col..], 3 * d),
        )
    }

    fn forward_by_gemm(self, part: Part) {
        let (d, dh, n) = (self.d, self.head_dim(), part.len);
        let scale = 1.0 / (dh as f32).sqrt();
        for h in 0..self.heads {
            let col = h * dh;
            let (q, k, v) = self.head(part.qkv, col);
            let p = &mut part.probs[h * n * n..][..n * n];
            // S = scale · Q Kᵀ, softmax by rows; ctx = P V.
            product(n, n, dh, Dst::new(p, n), q, k.t(), scale);
            vectorized(|| p.chunks_exact_mut(n).for_each(softmax_lanes));
            let p = View::rows(p, n);
            product(n, dh, n, Dst::new(&mut part.ctx[col..], d), p, v, 1.0);
        }
    }

    #[inline(always)]
    fn forward_by_rows(self, part: Part) {
        let (d, dh, len) = (self.d, self.head_dim(), part.len);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut kt = vec![0f32; dh * len];
        for h in 0..self.heads {
            let col = h * dh;
            for j in 0..len {
                for (c, &k) in part.qkv[j * 3 * d + d + col..][..dh].iter().enumerate() {
                    kt[c * len + j] = k;
                }
            }
            for i in 0..len {
                let p = &mut part.probs[(h * len + i) * len..][..len];
                let q = &part.qkv[i * 3 * d + col..][..dh];
                for (c, &qc) in q.iter().enumerate() {
                    axpy(qc * scale, &kt[c * len..][..len], p);
                }
                softmax_lanes(p);
                let out = &mut part.ctx[i * d + col..][..dh];
                for (j, &pj) in p.iter().enumerate() {
                    axpy(pj, &part.qkv[j * 3 * d + 2 * d + col..][..dh], out);
                }
            }
        }
    }

    /// The gradient at `qkv` given `d_ctx`, the gradient at the forward's context.
    pub fn backward(
        self,
        qkv: &[f32],
        probs: &[f32],
        d_ctx: &[f32],
        lens: &[usize],
        ws: &Workspace,
    ) -> Vec<f32> {
        self.backward_from(qkv, probs, d_ctx, lens, ws, GEMM_FROM)
    }

    /// [`Attention::backward`] with sequences of at least `gemm_from` rows by GEMM.
    fn backward_from(
        self,
        qkv: &[f32],
        probs: &[f32],
        d_ctx: &[f32],
        lens: &[usize],
        ws: &Workspace,
        gemm_from: usize,
    ) -> Vec<f32> {
        let d = self.d;
        let mut d_qkv = ws.zeros(qkv.len());
        let rows3 = || lens.iter().map(|n| n * 3 * d);
        let d_qkvs = split_mut(&mut d_qkv, rows3());
        let qkvs = split(qkv, rows3());
        let all_probs = split(probs, lens.iter().map(|n| self.heads * n * n));
        let d_ctxs = split(d_ctx, lens.iter().map(|n| n * d));
        let parts: Vec<GradPart> = (d_qkvs.into_iter().zip(qkvs).zip(all_probs).zip(d_ctxs))
            .zip(lens)
            .map(|((((d_qkv, qkv), probs), d_ctx), &len)| GradPart {
                len,
                qkv,
                probs,
                d_ctx,
                d_qkv,
            })
            .collect();
        parts.into_par_iter().for_each(|part| {
            if part.len < gemm_from {
                vectorized(|| self.backward_by_rows(part))
            } else {
                self.backward_by_gemm(part)
            }
        });
        d_qkv
    }

    fn backward_by_gemm(self, part: GradPart) {
        let (d, dh, n) = (self.d, self.head_dim(), part.len);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut ds = vec![0f32; n * n];
        for h in 0..self.heads {
            let col = h * dh;
            let (q, k, v) = self.head(part.qkv, col);
            let p = &part.probs[h * n * n..][..n * n];
            let dc = View::rows(&part.d_ctx[col..], d);
            let d_qkv = &mut *part.d_qkv;
            // dV = Pᵀ dctx; dP = dctx Vᵀ.
            let pv = View::rows(p, n);
            product(
                n,
                dh,
                n,
                Dst::new(&mut d_qkv[2 * d + col..], 3 * d),
                pv.t(),
                dc,
                1.0,
            );
            product(n, n, dh, Dst::new(&mut ds, n), dc, v.t(), 1.0);
            // dS_ij = p_ij (dP_ij − Σ_j p_ij dP_ij) · scale.
            vectorized(|| {
                for (s, p) in ds.chunks_exact_mut(n).zip(p.chunks_exact(n)) {
                    let mean = dot(p, s);
                    for (s, &pj) in s.iter_mut().zip(p) {
                        *s = pj * (*s - mean) * scale;
                    }
                }
            });
            // dQ = dS K; dK = dSᵀ Q.
            let dsv = View::rows(&ds, n);
            product(n, dh, n, Dst::new(&mut d_qkv[col..], 3 * d), dsv, k, 1.0);
            product(
                n,
                dh,
                n,
                Dst::new(&mut d_qkv[d + col..], 3 * d),
                dsv.t(),
                q,
                1.0,
            );
        }
    }

    #[inline(always)]
    fn backward_by_rows(self, part: GradPart) {
        let (d, dh, len) = (self.d, self.head_dim(), part.len);
        let scale = 1.0 / (dh as f32).sqrt();
        let (q_at, k_at, v_at) = (
            |i: usize| i * 3 * d,
            |j: usize| j * 3 * d + d,
            |j: usize| j * 3 * d + 2 * d,
        );
        let mut vt = vec![0f32; dh * len];
        let mut ds = vec![0f32; len];
        for h in 0..self.heads {
            let col = h * dh;
            for j in 0..len {
                for (c, &v) in part.qkv[v_at(j) + col..][..dh].iter().enumerate() {
                    vt[c * len + j] = v;
                }
            }
            for i in 0..len {
                let p = &part.probs[(h * len + i) * len..][..len];
                let dc = &part.d_ctx[i * d + col..][..dh];
                // dP_i = dctx_i · Vᵀ; dv_j += p_ij dctx_i.
                ds.fill(0.0);
                for (c, &g) in dc.iter().enumerate() {
                    axpy(g, &vt[c * len..][..len], &mut ds);
                }
                for (j, &pj) in p.iter().enumerate() {
                    axpy(pj, dc, &mut part.d_qkv[v_at(j) + col..][..dh]);
                }
                // dS_ij = p_ij (dP_ij − Σ_j p_ij dP_ij), then dq_i and dk_j.
                let mean = dot(p, &ds);
                for (s, &pj) in ds.iter_mut().zip(p) {
                    *s = pj * (*s - mean) * scale;
                }
                for (j, &s) in ds.iter().enumerate() {
                    let k = &part.qkv[k_at(j) + col..][..dh];
                    axpy(s, k, &mut part.d_qkv[q_at(i) + col..][..dh]);
                    let q = &part.qkv[q_at(i) + col..][..dh];
                    axpy(s, q, &mut part.d_qkv[k_at(j) + col..][..dh]);
                }
            }
        }
    }
}

/// A strided read-only matrix: element `(i, j)` at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// Rows `stride` apart, each contiguous, starting at `data[0]`.
    fn rows(data: &'a [f32], stride: usize) -> Self {
        Self {
            data,
            rs: stride,
            cs: 1,
        }
    }

    /// The transpose (the same elements).
    fn t(self) -> Self {
        Self {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether a `rows × cols` matrix fits in `data`.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// A destination with contiguous rows `rs` apart.
struct Dst<'a> {
    data: &'a mut [f32],
    rs: usize,
}

impl<'a> Dst<'a> {
    fn new(data: &'a mut [f32], rs: usize) -> Self {
        Self { data, rs }
    }
}

/// `dst = scale · a·b` for `a: m × k`, `b: k × n` (overwriting `dst`'s `m × n` block), on
/// the calling thread: the sequences are already spread over the threads.
fn product(m: usize, n: usize, k: usize, dst: Dst, a: View, b: View, scale: f32) {
    let fits = a.holds(m, k)
        && b.holds(k, n)
        && (m == 0 || n == 0 || (m - 1) * dst.rs + n <= dst.data.len());
    assert!(fits, "attention product {m}×{k}·{k}×{n} out of its buffers");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every element the strides address lies inside its slice (checked above); the
    // destination is a `&mut` borrow, so it aliases neither factor.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.rs as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;
    use crate::backbone::frozen::tests::{rel_diff, uniform};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
        /// The GEMM products give what the `axpy` rows give (checked against burn's autodiff
        /// through the whole encoder in `frozen.rs`), forward and backward, on sequences long
        /// and short, heads of several widths.
        #[test]
        fn gemm_products_are_the_rows_products(
            lens in proptest::collection::vec(1usize..80, 1..4),
            heads in 1usize..5,
            dh in prop::sample::select(vec![8usize, 16, 32, 64]),
            seed in 0u64..1000,
        ) {
            let att = Attention { d: heads * dh, heads };
            let rows: usize = lens.iter().sum();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let qkv = uniform(&mut rng, rows * 3 * att.d);
            let d_ctx = uniform(&mut rng, rows * att.d);
            let ws = Workspace::default();
            let (ctx_r, p_r) = att.forward_from(&qkv, &lens, &ws, usize::MAX);
            let (ctx_g, p_g) = att.forward_from(&qkv, &lens, &ws, 0);
            let dq_r = att.backward_from(&qkv, &p_r, &d_ctx, &lens, &ws, usize::MAX);
            let dq_g = att.backward_from(&qkv, &p_g, &d_ctx, &lens, &ws, 0);
            for (what, got, want) in
                [("context", &ctx_g, &ctx_r), ("probabilities", &p_g, &p_r), ("d qkv", &dq_g, &dq_r)]
            {
                let diff = rel_diff(got, want);
                prop_assert!(diff < 1e-5, "{what} differ by {diff} (relative)");
            }
        }
    }
}
