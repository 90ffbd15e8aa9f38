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

/// The words of English text that fit `tokens` tokens of `vocab`: `tokens` over the mean
/// tokens per whitespace-separated word of `texts`, rounded down, at least 1 and at most
/// `limit` (`limit` itself when the texts have no words).
pub fn words_that_fit<'t>(
    vocab: &dyn Vocabulary,
    texts: impl IntoIterator<Item = &'t str>,
    tokens: usize,
    limit: usize,
) -> usize {
    let (mut words, mut ids) = (0usize, 0usize);
    for text in texts {
        words += text.split_whitespace().count();
        ids += vocab.encode_text(text).len();
    }
    if words == 0 || ids == 0 {
        return limit;
    }
    let fit = (tokens * words) / ids;
    fit.clamp(1, limit.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tokens per word of more than three letters, one per shorter word.
    struct Halves;

    impl Vocabulary for Halves {
        fn encode_text(&self, text: &str) -> Vec<u32> {
            text.split_whitespace()
                .flat_map(|w| if w.len() > 3 { vec![1, 2] } else { vec![3] })
                .collect()
        }
        fn decode_ids(&self, _: &[u32]) -> String {
            String::new()
        }
        fn regular_token_ids(&self) -> Vec<u32> {
            vec![1, 2, 3]
        }
    }

    #[test]
    fn the_words_that_fit_follow_the_tokens_per_word() {
        // 5 words, 8 tokens: 1.6 tokens a word.
        let texts = ["a long review", "very bad"];
        assert_eq!(words_that_fit(&Halves, texts, 8, 12), 5);
        assert_eq!(words_that_fit(&Halves, texts, 4, 12), 2);
        assert_eq!(words_that_fit(&Halves, texts, 3, 12), 1);
        assert_eq!(
            words_that_fit(&Halves, texts, 8, 4),
            4,
            "capped by the limit"
        );
        assert_eq!(
            words_that_fit(&Halves, texts, 1, 12),
            1,
            "at least one word"
        );
        assert_eq!(
            words_that_fit(&Halves, ["", " "], 8, 12),
            12,
            "no words: the limit"
        );
    }
}
