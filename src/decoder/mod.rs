//! The embedded LLM: a llama-architecture decoder (SmolLM2-135M-Instruct by default) loaded from
//! GGUF into burn, its byte-level BPE tokenizer, its chat template and a seeded sampler.
//!
//! [`ChatLlm`] generates replies to chat messages; [`Llama`] is the bare decoder, which the
//! verbalizer readout also uses as a frozen backbone.

mod chat;
mod config;
mod frozen;
mod frozen_grad;
mod gguf;
mod host;
mod kv_cache;
mod mask;
mod model;
mod qmatrix;
mod sampler;
mod tokenizer;

pub use chat::ChatTemplate;
pub use config::LlamaConfig;
pub use frozen::{shared as shared_frozen, FrozenDecoder, KeySink, Past, PastLayer, Seq, Tape};
pub use gguf::{GgufFile, GgufVocab};
pub use host::{HostCache, HostWeights};
pub use kv_cache::{KvCache, Padding};
pub use mask::{LineMask, MaskState, Shape, TokenClass, BANNED_CHARS, MAX_WORD_CHARS};
pub use model::Llama;
pub use qmatrix::QMatrix;
pub use sampler::{argmax, Sampler};
pub use tokenizer::DecoderTokenizer;

use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mentor::{Message, Sampling};

/// What one generation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The reply, cut before any stop sequence, control tokens left out.
    pub text: String,
    /// Generated token ids (including a final end-of-turn token when one was produced).
    pub tokens: Vec<u32>,
    /// Length of the prompt in tokens.
    pub prompt_tokens: usize,
    /// `stop` (end-of-turn token or stop sequence) or `length` (max tokens reached).
    pub finish_reason: String,
    /// Seconds spent on the prompt (one batched forward pass).
    pub prefill_s: f64,
    /// Seconds spent generating tokens after the first.
    pub decode_s: f64,
}

/// One greedy step: the chosen token and how far it led the runner-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GreedyStep {
    /// Chosen id.
    pub token: u32,
    /// Logit of the chosen id.
    pub logit: f32,
    /// Runner-up id.
    pub runner_up: u32,
    /// Logit gap between the chosen id and the runner-up.
    pub margin: f32,
}

/// The state of one incremental decoding: where its keys and values are kept.
#[derive(Debug)]
pub enum Decoding<B: Backend> {
    /// The burn key/value cache (f32 weights; any backend).
    Burn(KvCache<B>),
    /// The host cache of quantized decoding.
    Host(HostCache),
}

/// A chat model: decoder, tokenizer and chat template loaded from one GGUF file.
#[derive(Debug)]
pub struct ChatLlm<B: Backend> {
    model: Llama<B>,
    host: Option<HostWeights>,
    tokenizer: DecoderTokenizer,
    template: ChatTemplate,
    name: String,
    sha256: String,
    classes: std::sync::OnceLock<TokenClasses>,
}

/// The vocabulary's mask classes (kept out of `Debug`: one per token).
struct TokenClasses(Vec<TokenClass>);

impl std::fmt::Debug for TokenClasses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenClasses({} tokens)", self.0.len())
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// It may go on (the token limit ends it).
    Length,
    /// An end-of-turn or control token, or the mask's last line.
    Stop,
    /// A stop sequence; the text before it.
    StopSequence(String),
}

impl<B: Backend> ChatLlm<B> {
    /// Loads a GGUF chat model onto `device`: weights dequantized to f32, plus quantized host
    /// copies for fast single-token decoding when `quantized_decode` (CPU backends).
    pub fn load_with(path: &Path, device: &B::Device, quantized_decode: bool) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let vocab = file.vocab()?;
        let tokenizer = DecoderTokenizer::from_vocab(&vocab, path)?;
        let tok = |id: u32| vocab.tokens.get(id as usize).cloned().unwrap_or_default();
        let template = ChatTemplate::new(&file.chat_template()?, &tok(vocab.bos), &tok(vocab.eos))
            .map_err(|e| Error::model(path, e.to_string()))?;
        let model = Llama::from_gguf(&file, device)?;
        let host = if quantized_decode {
            Some(HostWeights::from_gguf(&file)?)
        } else {
            None
        };
        if model.config().vocab_size != tokenizer.vocab_size() {
            return Err(Error::model(path, "tokenizer and embedding sizes differ"));
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            model,
            host,
            tokenizer,
            template,
            name,
            sha256: crate::assets::sha256_file(path)?,
            classes: std::sync::OnceLock::new(),
        })
    }

    /// Loads a GGUF chat model onto `device`, decoding through quantized host weights.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        Self::load_with(path, device, true)
    }

    /// The decoder.
    pub fn model(&self) -> &Llama<B> {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &DecoderTokenizer {
        &self.tokenizer
    }

    /// The model's name (the GGUF file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sha256 of the GGUF file the weights came from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The prompt text of a conversation, per the model's chat template.
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        self.template.render(messages)
    }

    /// Token ids of a conversation's prompt.
    pub fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.tokenizer.encode(&self.render(messages)?)
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.model.config().max_position;
        if len > max {
            return Err(Error::config(
                "prompt",
                format!("{len} tokens exceed the model's context of {max}"),
            ));
        }
        Ok(())
    }

    /// Next-token logits after each of the last `n` of `ids`, which continue `cache`.
    fn logits_of(&self, ids: &[u32], n: usize, cache: &mut KvCache<B>) -> Vec<Vec<f32>> {
        let device = self.model.word_embeddings().device();
        let t = ids.len();
        let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let x = Tensor::<B, 2, Int>::from_data(TensorData::new(data, [1, t]), &device);
        let hidden = self.model.forward(self.model.embed_tokens(x), cache);
        let d = self.model.config().hidden_size;
        let flat: Vec<f32> = self
            .model
            .logits(hidden.narrow(1, t - n, n).reshape([n, d]))
            .into_data()
            .iter::<f32>()
            .collect();
        flat.chunks_exact(self.model.config().vocab_size)
            .map(<[f32]>::to_vec)
            .collect()
    }

    fn step(&self, ids: &[u32], cache: &mut KvCache<B>) -> Result<Vec<f32>> {
        Ok(self.logits_of(ids, 1, cache).remove(0))
    }

    /// Runs the prompt (one batched burn pass) and returns the next-token logits and the
    /// decoding state: the burn cache, or the host cache when quantized host weights are loaded.
    pub fn start(&self, prompt: &[u32]) -> Result<(Vec<f32>, Decoding<B>)> {
        let mut cache = self.model.cache();
        let logits = self.step(prompt, &mut cache)?;
        let state = match &self.host {
            Some(_) => Decoding::Host(HostCache::from_layers(cache.to_host(), cache.len())),
            None => Decoding::Burn(cache),
        };
        Ok((logits, state))
    }

    /// Decodes one token; returns the next-token logits.
    pub fn next(&self, token: u32, state: &mut Decoding<B>) -> Result<Vec<f32>> {
        match (state, &self.host) {
            (Decoding::Host(cache), Some(host)) => host.step(token, cache),
            (Decoding::Burn(cache), _) => self.step(&[token], cache),
            (Decoding::Host(_), None) => {
                Err(Error::config("decoding", "host cache without host weights"))
            }
        }
    }

    /// Replies to a conversation.
    pub fn generate(&self, messages: &[Message], sampling: &Sampling) -> Result<Generation> {
        let prompt = self.prompt_ids(messages)?;
        self.generate_from_ids(&prompt, sampling)
    }

    /// Continues `prompt` until an end-of-turn token, a stop sequence or `max_tokens`.
    pub fn generate_from_ids(&self, prompt: &[u32], sampling: &Sampling) -> Result<Generation> {
        self.generate_masked(prompt, sampling, None)
    }

    /// Continues `prompt` like [`ChatLlm::generate_from_ids`], with the logit mask `mask`
    /// applied before every draw: the reply ends after the mask's last line.
    pub fn generate_masked(
        &self,
        prompt: &[u32],
        sampling: &Sampling,
        mask: Option<LineMask>,
    ) -> Result<Generation> {
        if prompt.is_empty() {
            return Err(Error::config("prompt", "is empty"));
        }
        let max_new = sampling.max_tokens as usize;
        self.check_len(prompt.len() + max_new)?;
        let mut sampler = Sampler::new(sampling.temperature, sampling.top_p, sampling.seed);
        let mut mask = mask.map(|m| (MaskState::new(m), self.token_classes()));
        let t0 = Instant::now();
        let (mut logits, mut state) = self.start(prompt)?;
        let prefill_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut tokens = Vec::new();
        let mut end = End::Length;
        while tokens.len() < max_new {
            if let Some((m, classes)) = &mask {
                if !m.apply(classes, &mut logits) {
                    end = End::Stop;
                    break;
                }
            }
            let next = sampler.sample(&logits);
            tokens.push(next);
            if let Some((m, classes)) = &mut mask {
                m.advance(classes[next as usize]);
            }
            end = self.end_after(&tokens, sampling, mask.as_ref().map(|m| &m.0));
            if end != End::Length || tokens.len() == max_new {
                break;
            }
            logits = self.next(next, &mut state)?;
        }
        let finish_reason = if end == End::Length { "length" } else { "stop" }.to_string();
        let text = match end {
            End::StopSequence(cut) => cut,
            _ => self.tokenizer.decode(&tokens),
        };
        Ok(Generation {
            text,
            prompt_tokens: prompt.len(),
            finish_reason,
            prefill_s,
            decode_s: t1.elapsed().as_secs_f64(),
            tokens,
        })
    }

    /// Whether the reply ends after `tokens`: on an end-of-turn or control token, a stop
    /// sequence (the text before it), or the mask's last line.
    fn end_after(&self, tokens: &[u32], sampling: &Sampling, mask: Option<&MaskState>) -> End {
        let last = tokens.last().copied().unwrap_or_default();
        if last == self.tokenizer.eos() || self.tokenizer.is_special(last) {
            return End::Stop;
        }
        let mut stops = sampling.stop.iter().filter(|s| !s.is_empty()).peekable();
        if stops.peek().is_some() {
            let so_far = self.tokenizer.decode(tokens);
            if let Some(cut) = stops.filter_map(|s| so_far.find(s.as_str())).min() {
                return End::StopSequence(so_far[..cut].to_string());
            }
        }
        if mask.is_some_and(MaskState::done) {
            return End::Stop;
        }
        End::Length
    }

    /// The mask classes of the vocabulary, computed on first use.
    fn token_classes(&self) -> &[TokenClass] {
        self.classes
            .get_or_init(|| TokenClasses(TokenClass::vocabulary(&self.tokenizer)))
            .0
            .as_slice()
    }

    /// Next-token logits after each of the last `n` positions of `ids`, from one batched pass
    /// (teacher forcing): row `i` predicts `ids[len - n + i + 1]`.
    pub fn sequence_logits(&self, ids: &[u32], n: usize) -> Result<Vec<Vec<f32>>> {
        if ids.is_empty() || n == 0 || n > ids.len() {
            return Err(Error::config(
                "sequence",
                format!("{n} positions asked of {} tokens", ids.len()),
            ));
        }
        self.check_len(ids.len())?;
        Ok(self.logits_of(ids, n, &mut self.model.cache()))
    }

    /// `n` greedy steps after `prompt`, with each step's logit margin over the runner-up
    /// (end-of-turn tokens do not stop it). Used to compare against llama.cpp.
    pub fn greedy_trace(&self, prompt: &[u32], n: usize) -> Result<Vec<GreedyStep>> {
        if prompt.is_empty() {
            return Err(Error::config("prompt", "is empty"));
        }
        self.check_len(prompt.len() + n)?;
        let (mut logits, mut state) = self.start(prompt)?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let token = argmax(&logits);
            let logit = logits[token as usize];
            let mut rest = logits.clone();
            rest[token as usize] = f32::NEG_INFINITY;
            let runner_up = argmax(&rest);
            out.push(GreedyStep {
                token,
                logit,
                runner_up,
                margin: logit - rest[runner_up as usize],
            });
            if i + 1 < n {
                logits = self.next(token, &mut state)?;
            }
        }
        Ok(out)
    }
}
