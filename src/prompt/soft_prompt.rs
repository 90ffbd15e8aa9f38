//! The soft prompt: L trainable vectors of the backbone's embedding width.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::backbone::{Vocabulary, WordEmbeddings};
use crate::error::{Error, Result};

/// How a soft prompt is initialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum PromptInit {
    /// The embeddings of a text's tokens, repeated (cycled) or truncated to L.
    Text(String),
    /// The embeddings of L tokens drawn uniformly from the regular (non-special) vocabulary.
    RandomVocab,
    /// Normal noise with the given standard deviation, or the word-embedding table's if `None`.
    RandomNormal(Option<f32>),
}

impl std::str::FromStr for PromptInit {
    type Err = Error;

    /// Parses `text:WORDS`, `random-vocab`, `random-normal` or `random-normal:STD`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: String| Error::config(format!("prompt init `{s}`"), reason);
        match s.split_once(':') {
            Some(("text", words)) if !words.trim().is_empty() => Ok(Self::Text(words.to_string())),
            Some(("text", _)) => Err(bad("the text is empty".into())),
            Some(("random-normal", std)) => {
                let v: f32 = std
                    .parse()
                    .map_err(|_| bad(format!("`{std}` is not a number")))?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad(format!("std {v} must be positive")));
                }
                Ok(Self::RandomNormal(Some(v)))
            }
            None if s == "random-vocab" => Ok(Self::RandomVocab),
            None if s == "random-normal" => Ok(Self::RandomNormal(None)),
            _ => Err(bad(
                "expected `text:WORDS`, `random-vocab`, `random-normal` or `random-normal:STD`"
                    .into(),
            )),
        }
    }
}

/// L trainable vectors `[L, d]`.
#[derive(Module, Debug)]
pub struct SoftPrompt<B: Backend> {
    /// The vectors.
    pub vectors: Param<Tensor<B, 2>>,
}

impl<B: Backend> SoftPrompt<B> {
    /// A prompt holding the given rows.
    pub fn from_tensor(rows: Tensor<B, 2>) -> Self {
        Self {
            vectors: Param::from_tensor(rows),
        }
    }

    /// Number of vectors L.
    pub fn len(&self) -> usize {
        self.vectors.dims()[0]
    }

    /// Whether L is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows `[L, d]`.
    pub fn rows(&self) -> Tensor<B, 2> {
        self.vectors.val()
    }

    /// Initialises L vectors per `init`; all randomness comes from `rng`.
    pub fn init(
        init: &PromptInit,
        len: usize,
        encoder: &impl WordEmbeddings<B>,
        tokenizer: &(impl Vocabulary + ?Sized),
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if len == 0 {
            return Err(Error::config("prompt length", "must be at least 1"));
        }
        let table = encoder.table();
        let device = table.device();
        let rows = match init {
            PromptInit::Text(text) => {
                let ids = tokenizer.encode_text(text);
                if ids.is_empty() {
                    return Err(Error::config(
                        format!("prompt init text `{text}`"),
                        "has no tokens",
                    ));
                }
                Self::token_rows(encoder, &fit_to_len(&ids, len))
            }
            PromptInit::RandomVocab => {
                let regular = tokenizer.regular_token_ids();
                let ids: Vec<u32> = (0..len)
                    .map(|_| regular[rng.random_range(0..regular.len())])
                    .collect();
                Self::token_rows(encoder, &ids)
            }
            PromptInit::RandomNormal(std) => {
                let d = table.dims()[1];
                let std = match std {
                    Some(s) => *s as f64,
                    None => {
                        let w = table.clone();
                        let (var, _) = w.reshape([-1]).var_mean_bias(0);
                        (var.into_scalar().to_f64_lossy()).sqrt()
                    }
                };
                let normal = rand_distr::Normal::new(0.0, std)
                    .map_err(|e| Error::config("prompt init std", e.to_string()))?;
                let vals: Vec<f32> = (0..len * d).map(|_| rng.sample(normal) as f32).collect();
                Tensor::from_data(TensorData::new(vals, [len, d]), &device)
            }
        };
        Ok(Self::from_tensor(rows))
    }

    /// Embedding rows `[ids.len(), d]` of token ids.
    pub fn token_rows(encoder: &impl WordEmbeddings<B>, ids: &[u32]) -> Tensor<B, 2> {
        let table = encoder.table();
        let device = table.device();
        let idx: Tensor<B, 1, Int> = Tensor::from_data(
            TensorData::new(
                ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [ids.len()],
            ),
            &device,
        );
        table.select(0, idx)
    }
}

/// Cycles or truncates `ids` to exactly `len` ids (the explicit pad/truncate rule of restarts).
pub fn fit_to_len(ids: &[u32], len: usize) -> Vec<u32> {
    ids.iter().copied().cycle().take(len).collect()
}

trait ToF64Lossy {
    fn to_f64_lossy(self) -> f64;
}

impl<E: burn::tensor::ElementConversion> ToF64Lossy for E {
    fn to_f64_lossy(self) -> f64 {
        self.elem::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_init_specs_and_names_bad_ones() {
        assert_eq!(
            "random-vocab".parse::<PromptInit>().unwrap(),
            PromptInit::RandomVocab
        );
        assert_eq!(
            "text:a movie review".parse::<PromptInit>().unwrap(),
            PromptInit::Text("a movie review".into())
        );
        assert_eq!(
            "random-normal:0.5".parse::<PromptInit>().unwrap(),
            PromptInit::RandomNormal(Some(0.5))
        );
        let err = "random-normal:-1"
            .parse::<PromptInit>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("random-normal:-1") && err.contains("positive"),
            "{err}"
        );
        assert!("gaussian".parse::<PromptInit>().is_err());
        assert!("text:  ".parse::<PromptInit>().is_err());
    }

    #[test]
    fn fit_cycles_and_truncates() {
        assert_eq!(fit_to_len(&[1, 2, 3], 7), vec![1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(fit_to_len(&[1, 2, 3], 2), vec![1, 2]);
    }
}
