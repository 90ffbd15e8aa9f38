//! The frozen encoders' matrix products alone, through the `gemm` crate that burn-flex calls:
//! the linears of MiniLM and of a BERT-base-sized encoder at the row counts of the gradient
//! step's workloads, `x·W` (forward) and `dy·Wᵀ` (input backward), `W` stored `[K, N]`
//! row-major as loaded. `benches/peers/gemm_compare.py` times `torch.mm` on the same shapes
//! in the same command.

use gemm::Parallelism;

use super::workload::{BenchModel, Prepared};
use crate::error::Result;

/// One linear of an encoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linear {
    /// Query, key and value in one product, `d → 3d`.
    Qkv,
    /// Attention output, `d → d`.
    Out,
    /// Feed-forward up, `d → 4d`.
    Up,
    /// Feed-forward down, `4d → d`.
    Down,
}

impl Linear {
    /// Every linear, in layer order.
    pub const ALL: [Linear; 4] = [Linear::Qkv, Linear::Out, Linear::Up, Linear::Down];

    /// `(K, N)` of the weight for hidden size `d`.
    pub fn dims(self, d: usize) -> (usize, usize) {
        match self {
            Linear::Qkv => (d, 3 * d),
            Linear::Out => (d, d),
            Linear::Up => (d, 4 * d),
            Linear::Down => (4 * d, d),
        }
    }

    /// Name used in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Linear::Qkv => "qkv",
            Linear::Out => "out",
            Linear::Up => "up",
            Linear::Down => "down",
        }
    }
}

/// Which product of a linear: the forward, or the input backward through the weight as
/// stored or through a transposed copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `x·W`, `W: [K, N]` row-major.
    Forward,
    /// `dy·Wᵀ`, reading `W` in place through strides.
    Backward,
    /// `dy·Wᵀ` from a copy of `Wᵀ` stored `[N, K]` row-major (packed once, as for frozen
    /// weights).
    BackwardPacked,
}

impl Product {
    /// Every product.
    pub const ALL: [Product; 3] = [Product::Forward, Product::Backward, Product::BackwardPacked];

    /// Name used in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Product::Forward => "w",
            Product::Backward => "wt",
            Product::BackwardPacked => "wt_packed",
        }
    }
}

/// A product of the step's linears: which model, how many token rows, which linear, which
/// product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmShape {
    /// The encoder.
    pub model: BenchModel,
    /// The class-prompt step's rows (small) or the input-head step's (large).
    pub input_rows: bool,
    /// The linear.
    pub linear: Linear,
    /// The product.
    pub product: Product,
}

impl GemmShape {
    /// Every shape: both models, both row counts, every linear, both directions.
    pub fn all() -> Vec<GemmShape> {
        let mut all = Vec::new();
        for model in [BenchModel::MiniLm, BenchModel::BertBase] {
            for input_rows in [false, true] {
                for linear in Linear::ALL {
                    for product in Product::ALL {
                        all.push(GemmShape {
                            model,
                            input_rows,
                            linear,
                            product,
                        });
                    }
                }
            }
        }
        all
    }

    /// `(M, K, N)`: `[M, K] · [K, N]` forward, `[M, N] · [N, K]` backward. The rows are the
    /// gradient-step workloads' tokens: the class-prompt step's 2 class sequences of
    /// `[CLS]` ⊕ prompt ⊕ word ⊕ `[SEP]`, the input step's 32 sequences of `[CLS]` ⊕ prompt ⊕
    /// text ⊕ `[SEP]`.
    pub fn mkn(self) -> (usize, usize, usize) {
        let (batch, tokens, prompt) = self.model.shape();
        let d = match self.model {
            BenchModel::MiniLm => 384,
            BenchModel::BertBase => 768,
        };
        let m = match self.input_rows {
            false => 2 * (prompt + 3),
            true => batch * (tokens + prompt + 2),
        };
        let (k, n) = self.linear.dims(d);
        (m, k, n)
    }

    /// Bench id: `gemm/minilm/m22/qkv/w`.
    pub fn id(self) -> String {
        let (m, _, _) = self.mkn();
        format!(
            "gemm/{}/m{m}/{}/{}",
            self.model.name(),
            self.linear.name(),
            self.product.name()
        )
    }

    /// Millions of floating-point operations of one product.
    pub fn mflop(self) -> usize {
        let (m, k, n) = self.mkn();
        2 * m * k * n / 1_000_000
    }
}

/// Seeded values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `dst = lhs·rhs` for row-major `lhs: [m, inner]`, `dst: [m, out]` and `rhs: [inner, out]`
/// read at strides `(row, column)`, on rayon's pool (as burn-flex runs it).
fn multiply(
    (m, inner, out): (usize, usize, usize),
    lhs: &[f32],
    rhs: &[f32],
    (rs, cs): (usize, usize),
    dst: &mut [f32],
) {
    let last = (inner.max(1) - 1) * rs + (out.max(1) - 1) * cs;
    assert!(lhs.len() >= m * inner && rhs.len() > last && dst.len() >= m * out);
    // SAFETY: the sizes are checked above for the strides given; `dst` aliases no factor.
    unsafe {
        gemm::gemm(
            m,
            out,
            inner,
            dst.as_mut_ptr(),
            1,
            out as isize,
            false,
            lhs.as_ptr(),
            1,
            inner as isize,
            rhs.as_ptr(),
            cs as isize,
            rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::Rayon(0),
        );
    }
}

/// `W: [k, n]` row-major transposed to `[n, k]` row-major.
fn transpose(w: &[f32], k: usize, n: usize) -> Vec<f32> {
    (0..n * k).map(|i| w[(i % k) * n + i / k]).collect()
}

/// The operands of `shape`'s product: `(m, inner, out)`, `lhs`, the right factor and its
/// strides.
type Operands = ((usize, usize, usize), Vec<f32>, Vec<f32>, (usize, usize));

fn operands(product: Product, (m, k, n): (usize, usize, usize), w: Vec<f32>) -> Operands {
    match product {
        Product::Forward => ((m, k, n), values(m * k, 2), w, (n, 1)),
        Product::Backward => ((m, n, k), values(m * n, 2), w, (1, n)),
        Product::BackwardPacked => ((m, n, k), values(m * n, 2), transpose(&w, k, n), (k, 1)),
    }
}

/// One product of `shape` per iteration.
pub fn gemm_workload<'a>(shape: GemmShape) -> Result<Prepared<'a>> {
    let (m, k, n) = shape.mkn();
    let (dims, lhs, rhs, strides) = operands(shape.product, (m, k, n), values(k * n, 1));
    let mut dst = vec![0f32; dims.0 * dims.2];
    Ok(Prepared::new(move || {
        multiply(dims, &lhs, &rhs, strides, &mut dst);
        std::hint::black_box(&dst);
        Ok(None)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_is_the_one_it_names() {
        let (m, k, n) = (3, 5, 4);
        let w = values(k * n, 1);
        for product in Product::ALL {
            let (dims, lhs, rhs, strides) = operands(product, (m, k, n), w.clone());
            let (_, inner, out) = dims;
            let mut dst = vec![0f32; m * out];
            multiply(dims, &lhs, &rhs, strides, &mut dst);
            for i in 0..m {
                for j in 0..out {
                    // x·W reads W[c, j]; dy·Wᵀ reads W[j, c].
                    let want: f32 = (0..inner)
                        .map(|c| {
                            let wv = match product {
                                Product::Forward => w[c * n + j],
                                _ => w[j * n + c],
                            };
                            lhs[i * inner + c] * wv
                        })
                        .sum();
                    let got = dst[i * out + j];
                    assert!((got - want).abs() < 1e-5, "{product:?} ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn shapes_are_the_workloads_rows() {
        let ids: Vec<String> = GemmShape::all().iter().map(|s| s.id()).collect();
        assert_eq!(ids.len(), 48);
        for m in ["m22", "m1280", "m38", "m4672"] {
            assert_eq!(
                ids.iter()
                    .filter(|id| id.contains(&format!("/{m}/")))
                    .count(),
                12,
                "{m}"
            );
        }
    }
}
