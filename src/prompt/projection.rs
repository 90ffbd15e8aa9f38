//! Projection of soft-prompt vectors to their nearest vocabulary tokens, batched on the device.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backbone::{Vocabulary, WordEmbeddings};

/// Distance used to find the nearest token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Euclidean distance.
    #[default]
    L2,
    /// Cosine distance, `1 - cos`.
    Cosine,
}

impl std::str::FromStr for Metric {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "l2" => Ok(Metric::L2),
            "cosine" => Ok(Metric::Cosine),
            _ => Err(crate::error::Error::config(
                format!("metric `{s}`"),
                "expected `l2` or `cosine`",
            )),
        }
    }
}

/// The top-k nearest tokens of each vector of one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// `[L][k]` token ids, nearest first.
    pub token_ids: Vec<Vec<u32>>,
    /// `[L][k]` distances, ascending.
    pub distances: Vec<Vec<f32>>,
}

impl Projection {
    /// The nearest token of each vector.
    pub fn nearest(&self) -> Vec<u32> {
        self.token_ids.iter().map(|row| row[0]).collect()
    }

    /// Distance of each vector to its nearest token.
    pub fn nearest_distances(&self) -> Vec<f32> {
        self.distances.iter().map(|row| row[0]).collect()
    }
}

/// Projects vectors onto the regular vocabulary (special and unused tokens excluded).
#[derive(Debug, Clone)]
pub struct Projector<B: Backend> {
    /// Allowed token ids, in table order.
    ids: Vec<u32>,
    /// Their embedding rows `[V', d]` (unit-normalised for cosine).
    table: Tensor<B, 2>,
    /// Squared norms `[1, V']` (L2 only).
    sq_norms: Tensor<B, 2>,
    metric: Metric,
    reference_compat: bool,
}

impl<B: Backend> Projector<B> {
    /// Builds a projector over the backbone's regular vocabulary.
    pub fn new(
        embeddings: &impl WordEmbeddings<B>,
        vocab: &(impl Vocabulary + ?Sized),
        metric: Metric,
    ) -> Self {
        let table = embeddings.table();
        let device = table.device();
        let ids = vocab.regular_token_ids();
        let idx: Tensor<B, 1, Int> = Tensor::from_data(
            TensorData::new(
                ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [ids.len()],
            ),
            &device,
        );
        let table = table.select(0, idx).detach();
        let sq_norms = table.clone().square().sum_dim(1).swap_dims(0, 1);
        let table = match metric {
            Metric::L2 => table,
            Metric::Cosine => {
                table.clone() / sq_norms.clone().swap_dims(0, 1).sqrt().clamp_min(1e-12)
            }
        };
        Self {
            ids,
            table,
            sq_norms,
            metric,
            reference_compat: false,
        }
    }

    /// Reproduces the reference code's cosine projection, which sorts similarities ascending and
    /// so returns the *least* similar tokens. For comparisons only; L2 is unaffected.
    pub fn with_reference_compat(mut self, on: bool) -> Self {
        self.reference_compat = on;
        self
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of candidate tokens.
    pub fn vocab_len(&self) -> usize {
        self.ids.len()
    }

    /// Projects each of `prompts` (each `[L, d]`, same L) to its top-`k` tokens in one batched
    /// computation on the device.
    pub fn project_many(&self, prompts: &[Tensor<B, 2>], k: usize) -> Vec<Projection> {
        if prompts.is_empty() {
            return Vec::new();
        }
        let k = k.clamp(1, self.ids.len());
        let l = prompts[0].dims()[0];
        let x = Tensor::cat(prompts.iter().map(|p| p.clone().detach()).collect(), 0);
        let n = x.dims()[0];
        // score: smaller is nearer.
        let score = match self.metric {
            Metric::L2 => {
                let xx = x.clone().square().sum_dim(1); // [n, 1]
                let dots = x.matmul(self.table.clone().transpose()); // [n, V']
                (xx + self.sq_norms.clone() - dots.mul_scalar(2.0)).clamp_min(0.0)
            }
            Metric::Cosine => {
                let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
                let cos = (x / norm).matmul(self.table.clone().transpose());
                let dist = cos.neg().add_scalar(1.0);
                if self.reference_compat {
                    // The reference sorts similarity ascending: "nearest" = least similar.
                    dist.neg()
                } else {
                    dist
                }
            }
        };
        let (neg_top, idx) = score.neg().topk_with_indices(k, 1);
        let vals: Vec<f32> = neg_top
            .into_data()
            .convert::<f32>()
            .into_vec()
            .unwrap_or_default();
        let idx: Vec<i64> = idx
            .into_data()
            .convert::<i64>()
            .into_vec()
            .unwrap_or_default();
        let compat_flip = self.reference_compat && self.metric == Metric::Cosine;
        let mut out = Vec::with_capacity(prompts.len());
        for p in 0..n / l.max(1) {
            let mut token_ids = Vec::with_capacity(l);
            let mut distances = Vec::with_capacity(l);
            for r in p * l..(p + 1) * l {
                let row = r * k..(r + 1) * k;
                token_ids.push(
                    idx[row.clone()]
                        .iter()
                        .map(|&i| self.ids[i as usize])
                        .collect(),
                );
                distances.push(
                    vals[row]
                        .iter()
                        .map(|&v| {
                            let s = -v;
                            let d = if compat_flip { -s } else { s };
                            match self.metric {
                                Metric::L2 => d.max(0.0).sqrt(),
                                Metric::Cosine => d,
                            }
                        })
                        .collect(),
                );
            }
            out.push(Projection {
                token_ids,
                distances,
            });
        }
        out
    }

    /// Projects one prompt `[L, d]`.
    pub fn project(&self, prompt: Tensor<B, 2>, k: usize) -> Projection {
        self.project_many(&[prompt], k).remove(0)
    }
}
