//! Frozen pretrained backbones and their tokenizers.

mod attention;
mod bert;
mod embedding_cache;
mod frozen;
mod tokenizer;
mod vocab;
mod workspace;

pub use bert::{BertConfig, BertEncoder};
pub use embedding_cache::EmbeddingCache;
pub use frozen::{EncoderTape, FrozenEncoder};
pub use tokenizer::{BertTokenizer, TokenBatch};
pub use vocab::{words_that_fit, Vocabulary, WordEmbeddings};

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use std::path::Path;

use crate::assets::{Assets, MINILM};
use crate::error::Result;

/// Default maximum sequence length (prompt slots and special tokens included).
pub const DEFAULT_MAX_LEN: usize = 64;

/// A frozen encoder with its tokenizer: the model every readout runs through.
#[derive(Module, Debug)]
pub struct Backbone<B: Backend> {
    /// The encoder.
    pub encoder: BertEncoder<B>,
    /// Its tokenizer.
    #[module(skip)]
    pub tokenizer: BertTokenizer,
    /// sha256 of the weights file (recorded in run results).
    #[module(skip)]
    pub weights_sha256: String,
}

impl<B: Backend> Backbone<B> {
    /// Loads all-MiniLM-L6-v2 from the asset cache, fetching it on first use.
    pub fn minilm(assets: &Assets, device: &B::Device) -> Result<Self> {
        let weights = assets.require(&MINILM, "minilm/model.safetensors")?;
        let config = BertConfig::from_file(&assets.require(&MINILM, "minilm/config.json")?)?;
        let tokenizer =
            BertTokenizer::from_file(&assets.require(&MINILM, "minilm/tokenizer.json")?)?;
        let encoder = BertEncoder::from_safetensors(&weights, config, device)?;
        let sha = MINILM.files[0].sha256.to_string();
        Ok(Self {
            encoder,
            tokenizer,
            weights_sha256: sha,
        })
    }

    /// Loads a BERT-family encoder from a folder with `config.json`, `model.safetensors` and
    /// `tokenizer.json`; an unsupported architecture or a missing tensor is an error naming the
    /// file (and the tensor).
    pub fn from_dir(dir: &Path, device: &B::Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(crate::Error::config(
                format!("backbone folder {}", dir.display()),
                "is not a folder (expected config.json, model.safetensors, tokenizer.json)",
            ));
        }
        let file = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(crate::Error::model(
                    &p,
                    "missing: a BERT folder holds config.json, model.safetensors and tokenizer.json",
                ))
            }
        };
        let config = BertConfig::from_file(&file("config.json")?)?;
        let tokenizer = BertTokenizer::from_file(&file("tokenizer.json")?)?;
        let weights = file("model.safetensors")?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(crate::Error::model(
                dir.join("tokenizer.json"),
                format!(
                    "{} tokens but config.json's vocab_size is {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            ));
        }
        let encoder = BertEncoder::from_safetensors(&weights, config, device)?;
        Ok(Self {
            encoder,
            tokenizer,
            weights_sha256: crate::assets::sha256_file(&weights)?,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> B::Device {
        self.encoder.word_embeddings().device()
    }

    /// Mean-pooled sentence embeddings `[n, d]` of tokenized texts (no prompt), in chunks of
    /// similar length (sorted by length so that little is spent on padding), in input order.
    pub fn embed(&self, seqs: &[Vec<u32>], max_len: usize, chunk: usize) -> Tensor<B, 2> {
        let device = self.device();
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i].len());
        let parts: Vec<_> = order
            .chunks(chunk.max(1))
            .map(|c| {
                let refs: Vec<&[u32]> = c.iter().map(|&i| seqs[i].as_slice()).collect();
                let batch = TokenBatch::new(&self.tokenizer, &refs, 0, max_len);
                let mask = batch.mask_tensor::<B>(&device);
                let x = self.encoder.embed_tokens(batch.ids_tensor(&device));
                let h = self.encoder.forward_embeds(x, mask.clone());
                BertEncoder::mean_pool(h, mask)
            })
            .collect();
        let sorted = Tensor::cat(parts, 0);
        // Row r of `sorted` is sequence order[r]; gather back to input order.
        let mut inverse = vec![0i64; seqs.len()];
        for (r, &i) in order.iter().enumerate() {
            inverse[i] = r as i64;
        }
        let inverse = Tensor::<B, 1, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(inverse, [seqs.len()]),
            &device,
        );
        sorted.select(0, inverse)
    }

    /// Mean-pooled embeddings `[n, d]` of `[CLS] prompt seq [SEP]` for each sequence, where
    /// `prompt: [L, d]` is spliced in as word-level input embeddings. Gradients flow to `prompt`.
    pub fn embed_with_prompt(
        &self,
        prompt: Tensor<B, 2>,
        seqs: &[&[u32]],
        max_len: usize,
    ) -> Tensor<B, 2> {
        let [l, d] = prompt.dims();
        let prompts = prompt.unsqueeze::<3>().expand([seqs.len(), l, d]);
        self.embed_with_prompts(prompts, seqs, max_len)
    }

    /// [`Backbone::embed_with_prompt`] with a prompt per sequence: `prompts: [n, L, d]`, row
    /// `i` spliced into sequence `i` (several prompts scored in one pass).
    pub fn embed_with_prompts(
        &self,
        prompts: Tensor<B, 3>,
        seqs: &[&[u32]],
        max_len: usize,
    ) -> Tensor<B, 2> {
        let (inputs, batch) = self.prompt_inputs(prompts, seqs, max_len);
        let mask = batch.mask_tensor::<B>(&self.device());
        let h = self.encoder.forward_embeds(inputs, mask.clone());
        BertEncoder::mean_pool(h, mask)
    }

    /// The word-level input embeddings `[n, t, d]` of `[CLS] prompt seq [SEP]`, `prompts[i]`
    /// (`[n, L, d]`) spliced into sequence `i`, and the padded batch they were laid out in.
    pub fn prompt_inputs(
        &self,
        prompts: Tensor<B, 3>,
        seqs: &[&[u32]],
        max_len: usize,
    ) -> (Tensor<B, 3>, TokenBatch) {
        let device = self.device();
        let [_, l, d] = prompts.dims();
        let batch = TokenBatch::new(&self.tokenizer, seqs, l, max_len);
        let (b, t) = (batch.batch, batch.len);
        let tokens = self.encoder.embed_tokens(batch.ids_tensor(&device));
        let cls = tokens.clone().slice([0..b, 0..1, 0..d]);
        let rest = tokens.slice([0..b, 1 + l..t, 0..d]);
        (Tensor::cat(vec![cls, prompts, rest], 1), batch)
    }
}
