//! WordPiece tokenization of the BERT encoder through the `tokenizers` crate, and padded batches.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{Error, Result};

/// A BERT tokenizer: text to ids without special tokens; ids to tokens; which ids are special.
#[derive(Clone)]
pub struct BertTokenizer {
    inner: tokenizers::Tokenizer,
    cls: u32,
    sep: u32,
    pad: u32,
    vocab_size: usize,
}

impl std::fmt::Debug for BertTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertTokenizer")
            .field("vocab_size", &self.vocab_size)
            .finish()
    }
}

impl BertTokenizer {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::model(path, format!("tokenizer: {e}")))?;
        // tandem adds special tokens and pads itself.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::model(path, format!("tokenizer: {e}")))?;
        let id = |tok: &str| {
            inner
                .token_to_id(tok)
                .ok_or_else(|| Error::model(path, format!("tokenizer has no `{tok}` token")))
        };
        let (cls, sep, pad) = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?);
        let vocab_size = inner.get_vocab_size(true);
        Ok(Self {
            inner,
            cls,
            sep,
            pad,
            vocab_size,
        })
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The `[CLS]` id.
    pub fn cls(&self) -> u32 {
        self.cls
    }

    /// The `[SEP]` id.
    pub fn sep(&self) -> u32 {
        self.sep
    }

    /// The `[PAD]` id.
    pub fn pad(&self) -> u32 {
        self.pad
    }

    /// Token ids of a text, without special tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        // The WordPiece pipeline cannot fail on valid UTF-8; an error would mean a broken
        // tokenizer file, which loading already rejected, so treat it as "no tokens".
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// Token ids of many texts.
    pub fn encode_batch(&self, texts: &[String]) -> Vec<Vec<u32>> {
        texts.iter().map(|t| self.encode(t)).collect()
    }

    /// The token string of an id (`##` continuation pieces included).
    pub fn id_to_token(&self, id: u32) -> String {
        self.inner.id_to_token(id).unwrap_or_default()
    }

    /// Joins token ids into readable text (WordPiece `##` pieces glued to their predecessor).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// Whether an id is a special or unused token (`[PAD]`, `[CLS]`, `[unused12]`, …), which
    /// projection must never return and random initialisation must never draw.
    pub fn is_special(&self, id: u32) -> bool {
        let tok = self.id_to_token(id);
        tok.is_empty() || (tok.starts_with('[') && tok.ends_with(']'))
    }

    /// All ids that are not special.
    pub fn regular_ids(&self) -> Vec<u32> {
        (0..self.vocab_size as u32)
            .filter(|&i| !self.is_special(i))
            .collect()
    }
}

/// A padded batch of sequences laid out as `[CLS] prefix-slots tokens [SEP]`, where `prefix`
/// positions (after `[CLS]`) are reserved for soft-prompt vectors.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// Ids `[batch * len]`, row-major; prompt slots hold `[PAD]` (they are overwritten).
    pub ids: Vec<i64>,
    /// 1.0 for real positions (prompt slots included), 0.0 for padding.
    pub mask: Vec<f32>,
    /// Batch size.
    pub batch: usize,
    /// Padded length.
    pub len: usize,
    /// Number of prompt slots after `[CLS]`.
    pub prefix: usize,
}

impl TokenBatch {
    /// Builds a batch; each sequence's tokens are truncated so that the whole row fits `max_len`.
    pub fn new(tok: &BertTokenizer, seqs: &[&[u32]], prefix: usize, max_len: usize) -> Self {
        let room = max_len.saturating_sub(prefix + 2);
        let len = seqs.iter().map(|s| s.len().min(room)).max().unwrap_or(0) + prefix + 2;
        let batch = seqs.len();
        let mut ids = vec![tok.pad() as i64; batch * len];
        let mut mask = vec![0.0; batch * len];
        for (r, s) in seqs.iter().enumerate() {
            let s = &s[..s.len().min(room)];
            let row = &mut ids[r * len..(r + 1) * len];
            row[0] = tok.cls() as i64;
            for (j, &id) in s.iter().enumerate() {
                row[1 + prefix + j] = id as i64;
            }
            row[1 + prefix + s.len()] = tok.sep() as i64;
            mask[r * len..r * len + prefix + s.len() + 2].fill(1.0);
        }
        Self {
            ids,
            mask,
            batch,
            len,
            prefix,
        }
    }

    /// Each row's real positions (its mask is 1 on a prefix of this length).
    pub fn lens(&self) -> Vec<usize> {
        self.mask
            .chunks(self.len.max(1))
            .map(|row| row.iter().filter(|&&m| m > 0.0).count())
            .collect()
    }

    /// The ids as a tensor `[batch, len]`.
    pub fn ids_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        Tensor::from_data(
            TensorData::new(self.ids.clone(), [self.batch, self.len]),
            device,
        )
    }

    /// The mask as a tensor `[batch, len]`.
    pub fn mask_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(self.mask.clone(), [self.batch, self.len]),
            device,
        )
    }
}
