//! Lester-style prompt tuning of a frozen decoder with a verbalizer: the sequence is
//! soft prompt ⊕ input tokens ⊕ a cue ("\nSentiment:"), and the class scores are the decoder's
//! next-token logits of each class word's first token after the cue. Gradients flow through the
//! frozen decoder (constant weights) to the prompt only.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::{EncodedData, PromptModel, Readout, SplitName};
use crate::decoder::{DecoderTokenizer, Llama};
use crate::error::{Error, Result};
use crate::prompt::fit_to_len;

/// The verbalizer readout over a frozen llama decoder.
#[derive(Module, Debug)]
pub struct VerbalizerReadout<B: Backend> {
    decoder: Llama<B>,
    #[module(skip)]
    data: EncodedData,
    /// Cue tokens appended after the input.
    #[module(skip)]
    cue: Vec<u32>,
    /// First token of each class word, in label order.
    #[module(skip)]
    verbalizers: Vec<u32>,
    /// Longest input kept (tokens); longer inputs keep their beginning.
    max_input: usize,
}

impl<B: Backend> VerbalizerReadout<B> {
    /// Builds the readout. `class_words` are scored as continuations of `cue` (a leading space
    /// is added, as they follow a colon); their first tokens must differ.
    pub fn new(
        decoder: Llama<B>,
        tokenizer: &DecoderTokenizer,
        data: EncodedData,
        cue: &str,
        class_words: &[String],
        max_input: usize,
    ) -> Result<Self> {
        if class_words.len() != data.num_classes() {
            return Err(Error::config(
                "class words",
                format!(
                    "{} given for {} classes",
                    class_words.len(),
                    data.num_classes()
                ),
            ));
        }
        let mut verbalizers = Vec::with_capacity(class_words.len());
        for w in class_words {
            let ids = tokenizer.encode_plain(&format!(" {}", w.trim()))?;
            let first = *ids
                .first()
                .ok_or_else(|| Error::config(format!("class word `{w}`"), "has no tokens"))?;
            if verbalizers.contains(&first) {
                return Err(Error::config(
                    format!("class word `{w}`"),
                    "starts with the same token as another class word",
                ));
            }
            verbalizers.push(first);
        }
        let cue = tokenizer.encode_plain(cue)?;
        if max_input == 0 {
            return Err(Error::config("max input tokens", "must be positive"));
        }
        Ok(Self {
            decoder,
            data,
            cue,
            verbalizers,
            max_input,
        })
    }

    /// Prompt rows initialised from the token embeddings of `text`, cycled or cut to `len`.
    pub fn prompt_rows(
        &self,
        tokenizer: &DecoderTokenizer,
        text: &str,
        len: usize,
    ) -> Result<Tensor<B, 2>> {
        let ids = tokenizer.encode_plain(text)?;
        if ids.is_empty() {
            return Err(Error::config(
                format!("prompt init text `{text}`"),
                "has no tokens",
            ));
        }
        let ids: Vec<i64> = fit_to_len(&ids, len).iter().map(|&i| i as i64).collect();
        let device = self.decoder.word_embeddings().device();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [len]), &device);
        Ok(self.decoder.word_embeddings().select(0, idx))
    }

    /// The frozen decoder.
    pub fn decoder(&self) -> &Llama<B> {
        &self.decoder
    }

    /// The verbalizer token of each class.
    pub fn verbalizers(&self) -> &[u32] {
        &self.verbalizers
    }
}

impl<B: Backend> Readout<B> for VerbalizerReadout<B> {
    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        let prompt = model.prompt.rows();
        let [l, d] = prompt.dims();
        let n = idx.len();
        let device = prompt.device();
        // Input (cut to max_input) ⊕ cue, right-padded with id 0: causal attention keeps the
        // padding out of every real position.
        let seqs: Vec<Vec<u32>> = self
            .data
            .split(split)
            .tokens_of(idx)
            .iter()
            .map(|t| {
                let keep = t.len().min(self.max_input);
                t[..keep].iter().chain(&self.cue).copied().collect()
            })
            .collect();
        let t = seqs.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let ids: Vec<i64> = seqs
            .iter()
            .flat_map(|s| (0..t).map(move |j| s.get(j).map_or(0, |&v| v as i64)))
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, t]), &device);
        let tokens = self.decoder.embed_tokens(ids);
        let x = Tensor::cat(vec![prompt.unsqueeze::<3>().expand([n, l, d]), tokens], 1);
        let hidden = self.decoder.forward(x, &mut self.decoder.cache());
        // The last real position of each sequence predicts the class word.
        let len = l + t;
        let last: Vec<i64> = seqs
            .iter()
            .enumerate()
            .map(|(i, s)| (i * len + l + s.len() - 1) as i64)
            .collect();
        let last = Tensor::<B, 1, Int>::from_data(TensorData::new(last, [n]), &device);
        let h = hidden.reshape([n * len, d]).select(0, last);
        let words: Vec<i64> = self.verbalizers.iter().map(|&v| v as i64).collect();
        let words = Tensor::<B, 1, Int>::from_data(
            TensorData::new(words, [self.verbalizers.len()]),
            &device,
        );
        h.matmul(self.decoder.output_head_t().select(1, words))
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }

    fn eval_chunk(&self) -> usize {
        16
    }
}
