//! The decoder's byte-level BPE tokenizer, built with the `tokenizers` crate from the vocabulary
//! and merges stored in the GGUF file.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

use super::gguf::GgufVocab;
use crate::error::{Error, Result};

/// GGUF token type of control tokens (`<|im_start|>`, `<|endoftext|>`, …).
const CONTROL: i32 = 3;
/// GGUF token type of user-defined tokens, matched whole like control tokens.
const USER_DEFINED: i32 = 4;

/// Text to token ids and back, matching llama.cpp's tokenization of the same file.
#[derive(Clone)]
pub struct DecoderTokenizer {
    inner: Tokenizer,
    bos: u32,
    eos: u32,
    add_bos: bool,
    special: Vec<bool>,
}

impl std::fmt::Debug for DecoderTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderTokenizer")
            .field("vocab_size", &self.special.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

impl DecoderTokenizer {
    /// Builds the tokenizer from a GGUF vocabulary. `path` names the file in errors.
    pub fn from_vocab(vocab: &GgufVocab, path: &Path) -> Result<Self> {
        let err = |r: String| Error::model(path, format!("tokenizer: {r}"));
        // llama.cpp's `smollm`, `starcoder` and `gpt2`-family pre-tokenizers split digits one by
        // one before the GPT-2 regex; plain `gpt2` does not.
        let split_digits = match vocab.pre.as_str() {
            "smollm" | "starcoder" | "refact" | "codeshell" => true,
            "gpt2" | "default" => false,
            other => {
                return Err(err(format!(
                    "pre-tokenizer `{other}` is not supported (smollm, starcoder, gpt2)"
                )))
            }
        };
        let ids: Vocab = vocab
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges = vocab
            .merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| err(format!("merge `{m}` is not two tokens")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(ids, merges)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut inner = Tokenizer::new(bpe);
        let byte_level = PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true));
        let pre = if split_digits {
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                byte_level,
            ]))
        } else {
            byte_level
        };
        inner.with_pre_tokenizer(Some(pre));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let special: Vec<bool> = vocab
            .token_types
            .iter()
            .map(|&t| t == CONTROL || t == USER_DEFINED)
            .collect();
        let added: Vec<AddedToken> = vocab
            .tokens
            .iter()
            .zip(&special)
            .filter(|(_, &s)| s)
            .map(|(t, _)| AddedToken::from(t.clone(), true))
            .collect();
        inner.add_special_tokens(&added);
        Ok(Self {
            inner,
            bos: vocab.bos,
            eos: vocab.eos,
            add_bos: vocab.add_bos,
            special,
        })
    }

    /// Token ids of `text`; control tokens written in the text (`<|im_start|>`) are parsed as
    /// such. A BOS id is prepended when the model asks for one.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::config("text to tokenize", format!("{} bytes: {e}", text.len())))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos {
            ids.push(self.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Token ids of `text` with nothing prepended (a continuation or a class word).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::config("text to tokenize", format!("{} bytes: {e}", text.len())))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, control tokens left out.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// The string of one token as stored in the vocabulary (byte-level alphabet).
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Whether `id` is a control or user-defined token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// The end-of-sequence id (`<|im_end|>` for chat models).
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// The beginning-of-sequence id.
    pub fn bos(&self) -> u32 {
        self.bos
    }

    /// Number of ids.
    pub fn vocab_size(&self) -> usize {
        self.special.len()
    }
}
