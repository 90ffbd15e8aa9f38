//! Weight matrices kept in their GGUF block quantization (Q4_1, Q8_0) and multiplied with f32
//! activation vectors on the host, dequantizing on the fly. Decoding one token is a chain of
//! matrix-vector products bound by memory traffic: reading ~80 MB of blocks per token instead
//! of ~540 MB of f32 weights is what makes the embedded mentor fast on a CPU.

use ggus::ggml_quants::{Q4_1, Q8_0};
use ggus::GGmlType;
use rayon::prelude::*;

use super::gguf::{blocks, GgufFile};
use crate::error::{Error, Result};

const BLOCK: usize = 32;
/// Output rows per parallel task.
const ROWS_PER_TASK: usize = 64;

#[derive(Debug, Clone)]
enum Blocks {
    /// Per block: scale and minimum; 16 bytes of nibbles (low nibbles are elements 0..16).
    Q4_1 {
        scale: Vec<f32>,
        min: Vec<f32>,
        quants: Vec<[u8; 16]>,
    },
    /// Per block: scale; 32 signed bytes.
    Q8_0 {
        scale: Vec<f32>,
        quants: Vec<[i8; 32]>,
    },
}

/// A `[rows, cols]` matrix (rows = outputs) in block quantization, row-major.
#[derive(Debug, Clone)]
pub struct QMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

impl QMatrix {
    /// Reads tensor `name` of logical shape `[rows, cols]` in its stored quantization.
    pub fn from_gguf(file: &GgufFile, name: &str, rows: usize, cols: usize) -> Result<Self> {
        let (ty, bytes) = file.raw_tensor(name, &[rows, cols])?;
        if !cols.is_multiple_of(BLOCK) {
            return Err(Error::model(
                file.path(),
                format!("tensor `{name}`: {cols} columns are not whole blocks of {BLOCK}"),
            ));
        }
        let blocks = match ty {
            GGmlType::Q4_1 => {
                let b = blocks::<Q4_1>(bytes);
                Blocks::Q4_1 {
                    scale: b.iter().map(|b| b.delta_min.delta.to_f32()).collect(),
                    min: b.iter().map(|b| b.delta_min.min.to_f32()).collect(),
                    quants: b.iter().map(|b| b.quants).collect(),
                }
            }
            GGmlType::Q8_0 => {
                let b = blocks::<Q8_0>(bytes);
                Blocks::Q8_0 {
                    scale: b.iter().map(|b| b.delta.to_f32()).collect(),
                    quants: b.iter().map(|b| b.quants).collect(),
                }
            }
            other => {
                return Err(Error::model(
                    file.path(),
                    format!("tensor `{name}` is {other:?}; quantized decoding needs Q4_1 or Q8_0"),
                ))
            }
        };
        Ok(Self { rows, cols, blocks })
    }

    /// The rows of `parts` stacked in order (all must share columns and quantization).
    pub fn stack(parts: Vec<QMatrix>) -> Option<Self> {
        let cols = parts.first()?.cols;
        let mut it = parts.into_iter();
        let mut out = it.next()?;
        for p in it {
            if p.cols != cols {
                return None;
            }
            out.rows += p.rows;
            match (&mut out.blocks, p.blocks) {
                (
                    Blocks::Q4_1 { scale, min, quants },
                    Blocks::Q4_1 {
                        scale: s,
                        min: m,
                        quants: q,
                    },
                ) => {
                    scale.extend(s);
                    min.extend(m);
                    quants.extend(q);
                }
                (
                    Blocks::Q8_0 { scale, quants },
                    Blocks::Q8_0 {
                        scale: s,
                        quants: q,
                    },
                ) => {
                    scale.extend(s);
                    quants.extend(q);
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// The matrix with its rows reordered: row `i` of the result is row `order[i]`.
    pub fn reorder_rows(&self, order: &[usize]) -> Self {
        let nb = self.cols / BLOCK;
        fn pick<T: Copy>(v: &[T], order: &[usize], nb: usize) -> Vec<T> {
            order
                .iter()
                .flat_map(|&r| v[r * nb..(r + 1) * nb].iter().copied())
                .collect()
        }
        let blocks = match &self.blocks {
            Blocks::Q4_1 { scale, min, quants } => Blocks::Q4_1 {
                scale: pick(scale, order, nb),
                min: pick(min, order, nb),
                quants: pick(quants, order, nb),
            },
            Blocks::Q8_0 { scale, quants } => Blocks::Q8_0 {
                scale: pick(scale, order, nb),
                quants: pick(quants, order, nb),
            },
        };
        Self {
            rows: order.len(),
            cols: self.cols,
            blocks,
        }
    }

    /// Row `r` dequantized (an embedding lookup).
    pub fn row(&self, r: usize) -> Vec<f32> {
        let nb = self.cols / BLOCK;
        let mut out = Vec::with_capacity(self.cols);
        for b in r * nb..(r + 1) * nb {
            match &self.blocks {
                Blocks::Q4_1 { scale, min, quants } => {
                    let q = &quants[b];
                    out.extend((0..16).map(|i| scale[b] * (q[i] & 0x0f) as f32 + min[b]));
                    out.extend((0..16).map(|i| scale[b] * (q[i] >> 4) as f32 + min[b]));
                }
                Blocks::Q8_0 { scale, quants } => {
                    out.extend(quants[b].iter().map(|&q| scale[b] * q as f32));
                }
            }
        }
        out
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held by the blocks.
    pub fn nbytes(&self) -> usize {
        let n = self.rows * self.cols / BLOCK;
        match &self.blocks {
            Blocks::Q4_1 { .. } => n * (8 + 16),
            Blocks::Q8_0 { .. } => n * (4 + 32),
        }
    }

    /// `y = W · x` for `n` vectors: `x` is `[n, cols]`, the result `[n, rows]`.
    pub fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(x.len(), n * self.cols, "activation length");
        let mut y = vec![0f32; n * self.rows];
        for (xi, yi) in x.chunks_exact(self.cols).zip(y.chunks_exact_mut(self.rows)) {
            self.matvec(xi, yi);
        }
        y
    }

    fn matvec(&self, x: &[f32], y: &mut [f32]) {
        let nb = self.cols / BLOCK;
        let sums: Vec<f32> = x.chunks_exact(BLOCK).map(|c| c.iter().sum()).collect();
        y.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, out)| {
                for (k, o) in out.iter_mut().enumerate() {
                    let r = task * ROWS_PER_TASK + k;
                    let range = r * nb..(r + 1) * nb;
                    *o = match &self.blocks {
                        Blocks::Q4_1 { scale, min, quants } => dot_q4_1(
                            &scale[range.clone()],
                            &min[range.clone()],
                            &quants[range],
                            x,
                            &sums,
                        ),
                        Blocks::Q8_0 { scale, quants } => {
                            dot_q8_0(&scale[range.clone()], &quants[range], x)
                        }
                    };
                }
            });
    }
}

/// One row of Q4_1 times `x`: Σ_blocks d·Σ q_i x_i + m·Σ x_i.
fn dot_q4_1(scale: &[f32], min: &[f32], quants: &[[u8; 16]], x: &[f32], sums: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { dot_q4_1_avx2(scale, min, quants, x, sums) };
    }
    dot_q4_1_generic(scale, min, quants, x, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_q4_1_avx2(scale: &[f32], min: &[f32], quants: &[[u8; 16]], x: &[f32], sums: &[f32]) -> f32 {
    dot_q4_1_generic(scale, min, quants, x, sums)
}

/// Lane-wise accumulation (no reduction inside the loop), so the compiler vectorizes it.
#[inline(always)]
fn dot_q4_1_generic(
    scale: &[f32],
    min: &[f32],
    quants: &[[u8; 16]],
    x: &[f32],
    sums: &[f32],
) -> f32 {
    let mut acc = [0f32; 16];
    let mut offset = 0f32;
    for (b, q) in quants.iter().enumerate() {
        let xb = &x[b * BLOCK..(b + 1) * BLOCK];
        let d = scale[b];
        for i in 0..16 {
            let lo = (q[i] & 0x0f) as f32 * xb[i];
            let hi = (q[i] >> 4) as f32 * xb[i + 16];
            acc[i] += d * (lo + hi);
        }
        offset += min[b] * sums[b];
    }
    acc.iter().sum::<f32>() + offset
}

/// One row of Q8_0 times `x`: Σ_blocks d·Σ q_i x_i.
fn dot_q8_0(scale: &[f32], quants: &[[i8; 32]], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { dot_q8_0_avx2(scale, quants, x) };
    }
    dot_q8_0_generic(scale, quants, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_q8_0_avx2(scale: &[f32], quants: &[[i8; 32]], x: &[f32]) -> f32 {
    dot_q8_0_generic(scale, quants, x)
}

#[inline(always)]
fn dot_q8_0_generic(scale: &[f32], quants: &[[i8; 32]], x: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    for (b, q) in quants.iter().enumerate() {
        let xb = &x[b * BLOCK..(b + 1) * BLOCK];
        let d = scale[b];
        for i in 0..32 {
            acc[i] += d * (q[i] as f32 * xb[i]);
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_dequantized_dot_products() {
        // Q4_1: 2 blocks; element i of block b = d·q + m.
        let quants = [[0x21u8; 16], [0xf0u8; 16]];
        let (scale, min) = ([0.5f32, 0.25], [-1.0f32, 2.0]);
        let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
        let sums: Vec<f32> = x.chunks(32).map(|c| c.iter().sum()).collect();
        let mut want = 0f32;
        for b in 0..2 {
            for i in 0..32 {
                let q = if i < 16 {
                    quants[b][i] & 15
                } else {
                    quants[b][i - 16] >> 4
                };
                want += (scale[b] * q as f32 + min[b]) * x[b * 32 + i];
            }
        }
        let got = dot_q4_1(&scale, &min, &quants, &x, &sums);
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        // Q8_0
        let q8 = [[-3i8; 32], [7i8; 32]];
        let want: f32 = (0..64)
            .map(|i| scale[i / 32] * q8[i / 32][i % 32] as f32 * x[i])
            .sum();
        let got = dot_q8_0(&scale, &q8, &x);
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
}
