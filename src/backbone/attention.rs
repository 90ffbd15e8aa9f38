//! The host encoder's softmax attention over packed rows: each sequence attends over its own
//! real rows, head by head, the sequences in parallel (each one's rows are contiguous, so each
//! writes its own part of the outputs); and its backward to the fused `qkv` rows. Every
//! product is a run of `axpy`s over contiguous rows (keys and values transposed once per head),
//! compiled for the CPU's widest instruction set ([`vectorized`]).

use rayon::prelude::*;

use super::workspace::Workspace;
use crate::kernels::{axpy, dot, softmax_lanes, vectorized};

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
        parts
            .into_par_iter()
            .for_each(|part| vectorized(|| self.forward_sequence(part)));
        (ctx, probs)
    }

    #[inline(always)]
    fn forward_sequence(self, part: Part) {
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
        parts
            .into_par_iter()
            .for_each(|part| vectorized(|| self.backward_sequence(part)));
        d_qkv
    }

    #[inline(always)]
    fn backward_sequence(self, part: GradPart) {
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
