//! What the prompt machinery needs of a backbone's vocabulary, whatever the backbone: text to
//! token ids and back, the regular tokens (prompts project onto and start from these), and the
//! word-embedding table the soft prompt lives in.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A tokenizer seen from the prompt's side.
pub trait Vocabulary: Send + Sync {
    /// Token ids of `text`, without special tokens (empty when it has none).
    fn encode_text(&self, text: &str) -> Vec<u32>;
    /// The text of token ids.
    fn decode_ids(&self, ids: &[u32]) -> String;
    /// Ids of the regular tokens (special, unused and control tokens excluded), ascending.
    fn regular_token_ids(&self) -> Vec<u32>;
}

/// A model with a word-embedding table `[V, d]`.
pub trait WordEmbeddings<B: Backend> {
    /// The table.
    fn table(&self) -> Tensor<B, 2>;
}

impl Vocabulary for super::BertTokenizer {
    fn encode_text(&self, text: &str) -> Vec<u32> {
        self.encode(text)
    }
    fn decode_ids(&self, ids: &[u32]) -> String {
        self.decode(ids)
    }
    fn regular_token_ids(&self) -> Vec<u32> {
        self.regular_ids()
    }
}

impl<B: Backend> WordEmbeddings<B> for super::BertEncoder<B> {
    fn table(&self) -> Tensor<B, 2> {
        self.word_embeddings()
    }
}

impl Vocabulary for crate::decoder::DecoderTokenizer {
    fn encode_text(&self, text: &str) -> Vec<u32> {
        self.encode_plain(text).unwrap_or_default()
    }
    fn decode_ids(&self, ids: &[u32]) -> String {
        self.decode(ids)
    }
    fn regular_token_ids(&self) -> Vec<u32> {
        (0..self.vocab_size() as u32)
            .filter(|&id| !self.is_special(id))
            .collect()
    }
}

impl<B: Backend> WordEmbeddings<B> for crate::decoder::Llama<B> {
    fn table(&self) -> Tensor<B, 2> {
        self.word_embeddings()
    }
}

/// A bare word-embedding table (a backbone's, detached from it).
impl<B: Backend> WordEmbeddings<B> for Tensor<B, 2> {
    fn table(&self) -> Tensor<B, 2> {
        self.clone()
    }
}
