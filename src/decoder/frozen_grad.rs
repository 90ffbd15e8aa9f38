//! The backward pass of the host decoder ([`FrozenDecoder`]): the gradient of a loss with
//! respect to the input rows of a taped pass, weights held constant (no weight gradient is
//! ever formed). Each layer is four GEMMs against the transposed weights, read in place
//! through strides, and the same plain loops as the forward.

use super::config::LlamaConfig;
use super::frozen::{
    axpy, dot, gemm_wt, FrozenBlock, FrozenDecoder, Past, Seq, SeqAttention, Tape,
};

/// Adds the gradient of `y = rms_norm(x)·weight` with respect to `x` (given `dy`) to `dx`.
fn rms_norm_backward(x: &[f32], weight: &[f32], eps: f32, dy: &[f32], dx: &mut [f32]) {
    let d = weight.len();
    for ((row, dy), dx) in x.chunks(d).zip(dy.chunks(d)).zip(dx.chunks_mut(d)) {
        let inv = (dot(row, row) / d as f32 + eps).powf(-0.5);
        let mut s = 0f32;
        for ((&x, &g), &w) in row.iter().zip(dy).zip(weight) {
            s += g * w * x;
        }
        let k = inv * inv * inv * s / d as f32;
        for (((dx, &x), &g), &w) in dx.iter_mut().zip(row).zip(dy).zip(weight) {
            *dx += inv * g * w - x * k;
        }
    }
}

/// Gradient of `silu(gate)·up` with respect to gate and up (`[rows, 2·ff]`), given its
/// gradient `d_act: [rows, ff]`.
fn swiglu_backward(gate_up: &[f32], d_act: &[f32], ff: usize, d_gate_up: &mut [f32]) {
    for ((gu, da), out) in gate_up
        .chunks(2 * ff)
        .zip(d_act.chunks(ff))
        .zip(d_gate_up.chunks_mut(2 * ff))
    {
        let (g, u) = gu.split_at(ff);
        let (dg, du) = out.split_at_mut(ff);
        for j in 0..ff {
            let sig = 1.0 / (1.0 + (-g[j]).exp());
            dg[j] = da[j] * u[j] * sig * (1.0 + g[j] * (1.0 - sig));
            du[j] = da[j] * g[j] * sig;
        }
    }
}

/// One backward pass: the taped pass it reverses, the gradient flowing down and the buffers
/// every layer reuses.
struct Backward<'a> {
    decoder: &'a FrozenDecoder,
    tape: &'a Tape,
    seqs: &'a [Seq],
    past: Option<&'a dyn Past>,
    /// The gradient at the current point of the pass, `[rows, d]`.
    dx: Vec<f32>,
    d_act: Vec<f32>,
    d_gate_up: Vec<f32>,
    dh: Vec<f32>,
    d_attn: Vec<f32>,
    d_qkv: Vec<f32>,
}

impl<'a> Backward<'a> {
    fn new(
        decoder: &'a FrozenDecoder,
        tape: &'a Tape,
        seqs: &'a [Seq],
        past: Option<&'a dyn Past>,
    ) -> Self {
        let c: &LlamaConfig = &decoder.config;
        let (d, ff) = (c.hidden_size, c.intermediate_size);
        let rows = tape.last.len() / d;
        let w = d + 2 * c.num_kv_heads * c.head_dim();
        Self {
            decoder,
            tape,
            seqs,
            past,
            dx: vec![0.0; rows * d],
            d_act: vec![0.0; rows * ff],
            d_gate_up: vec![0.0; rows * 2 * ff],
            dh: vec![0.0; rows * d],
            d_attn: vec![0.0; rows * d],
            d_qkv: vec![0.0; rows * w],
        }
    }

    fn rows(&self) -> usize {
        self.dx.len() / self.decoder.config.hidden_size
    }

    /// `dx` (the gradient at layer `l`'s output) becomes the gradient at its residual after
    /// attention.
    fn feed_forward(&mut self, l: usize) {
        let c = &self.decoder.config;
        let block: &FrozenBlock = &self.decoder.blocks[l];
        let t = &self.tape.layers[l];
        let (d, ff, rows) = (c.hidden_size, c.intermediate_size, self.rows());
        gemm_wt(rows, d, ff, &self.dx, &block.w_down, &mut self.d_act);
        swiglu_backward(&t.gate_up, &self.d_act, ff, &mut self.d_gate_up);
        gemm_wt(
            rows,
            2 * ff,
            d,
            &self.d_gate_up,
            &block.w_gate_up,
            &mut self.dh,
        );
        rms_norm_backward(&t.mid, &block.ffn_norm, c.rms_eps, &self.dh, &mut self.dx);
    }

    /// `dx` (the gradient at layer `l`'s residual after attention) becomes the gradient at
    /// its input.
    fn attention(&mut self, l: usize) {
        let c = &self.decoder.config;
        let block: &FrozenBlock = &self.decoder.blocks[l];
        let t = &self.tape.layers[l];
        let d = c.hidden_size;
        let w = d + 2 * c.num_kv_heads * c.head_dim();
        let rows = self.rows();
        gemm_wt(rows, d, d, &self.dx, &block.wo, &mut self.d_attn);
        self.d_qkv.fill(0.0);
        for seq in self.seqs {
            let past = seq.past.zip(self.past).map(|(e, p)| p.layer(e, l));
            let (from, to) = (seq.row, seq.row + seq.len);
            let a = SeqAttention::new(c, &t.qkv[from * w..to * w], past);
            attend_backward(
                &a,
                &self.d_attn[from * d..to * d],
                &mut self.d_qkv[from * w..to * w],
            );
        }
        self.decoder.rotate(&mut self.d_qkv, self.seqs, true);
        gemm_wt(rows, w, d, &self.d_qkv, &block.wqkv, &mut self.dh);
        rms_norm_backward(
            &t.input,
            &block.attn_norm,
            c.rms_eps,
            &self.dh,
            &mut self.dx,
        );
    }
}

impl FrozenDecoder {
    /// The gradient with respect to the input rows of the taped pass (`tape`, over `seqs`
    /// and `past`) of a loss whose gradient with respect to the hidden states is `d_hidden`
    /// (`[rows, d]`).
    pub fn input_gradient(
        &self,
        tape: &Tape,
        seqs: &[Seq],
        past: Option<&dyn Past>,
        d_hidden: &[f32],
    ) -> Vec<f32> {
        let mut pass = Backward::new(self, tape, seqs, past);
        rms_norm_backward(
            &tape.last,
            &self.norm,
            self.config.rms_eps,
            d_hidden,
            &mut pass.dx,
        );
        for l in (0..self.blocks.len()).rev() {
            pass.feed_forward(l);
            pass.attention(l);
        }
        pass.dx
    }
}

/// Gradients of one sequence's attention output `d_out: [len, d]` with respect to its
/// queries, and its own keys and values (cached states are constants), added into `d_qkv`.
fn attend_backward(a: &SeqAttention<'_>, d_out: &[f32], d_qkv: &mut [f32]) {
    let (d, hd) = (a.d, a.hd);
    let w = d_qkv.len() / a.len.max(1);
    let cached = a.cached();
    let mut p = vec![0f32; cached + a.len];
    let mut dp = vec![0f32; cached + a.len];
    for qh in 0..d / hd {
        let g = a.group(qh);
        for i in 0..a.len {
            let n = a.probabilities(qh, i, &mut p);
            let d_o = &d_out[i * d + qh * hd..][..hd];
            let mut mean = 0f32;
            for j in 0..n {
                dp[j] = dot(d_o, a.value(g, j));
                mean += p[j] * dp[j];
            }
            let q = a.query(qh, i);
            for j in 0..n {
                let ds = p[j] * (dp[j] - mean) * a.scale();
                axpy(ds, a.key(g, j), &mut d_qkv[i * w + qh * hd..][..hd]);
                if let Some(own) = j.checked_sub(cached) {
                    let row = &mut d_qkv[own * w..][..w];
                    axpy(ds, q, &mut row[a.key_column(g)..][..hd]);
                    axpy(p[j], d_o, &mut row[a.value_column(g)..][..hd]);
                }
            }
        }
    }
}
