//! Lester-style prompt tuning of a frozen decoder with a verbalizer: the sequence is
//! soft prompt ⊕ input tokens ⊕ a cue ("\nSentiment:") (or, with the prompt placed after the
//! input, input ⊕ prompt ⊕ cue, the input's states computed once: [`super::input_cache`]), and
//! the class scores come from the
//! decoder's next-token predictions of each class word after the cue. When every class word is
//! one token, the scores are those tokens' next-token logits (their softmax over the classes is
//! the decoder's distribution renormalised to the class words); when some word has several
//! tokens, each class is scored by the log-likelihood of its whole word (teacher-forced, one
//! sequence per class). Gradients flow through the frozen decoder (constant weights) to the
//! prompt only.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::batch::{per_row, split_rows};
use super::host_loss::{affine, affine_input_gradient, cross_entropy_host, HostLoss};
use super::input_cache::{InputCache, SplitInputs, SplitStates};
use super::{EncodedData, PromptModel, PromptPosition, Readout, SplitName};
use crate::decoder::{DecoderTokenizer, FrozenDecoder, Llama, Past, Seq};
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
    /// Every token of each class word, in label order.
    #[module(skip)]
    words: Vec<Vec<u32>>,
    /// Longest input kept (tokens); longer inputs keep their beginning.
    max_input: usize,
    /// Where the prompt goes: before the input or after it.
    #[module(skip)]
    position: PromptPosition,
    /// The input's states, when the prompt comes after the input.
    #[module(skip)]
    input_cache: Arc<InputCache>,
    /// Each split's inputs cut to `max_input` (train, selection, test), when the prompt comes
    /// after the input: cut and fingerprinted once, not per call.
    #[module(skip)]
    cut: Arc<[SplitInputs; 3]>,
    /// The decoder's layers on the host, for passes that need no gradient on a CPU backend.
    #[module(skip)]
    frozen: Option<Arc<FrozenDecoder>>,
}

impl<B: Backend> VerbalizerReadout<B> {
    /// Builds the readout. `class_words` are scored as continuations of `cue` (a leading space
    /// is added, as they follow a colon); they must tokenize differently.
    pub fn new(
        decoder: Llama<B>,
        tokenizer: &DecoderTokenizer,
        data: EncodedData,
        cue: &str,
        class_words: &[String],
        max_input: usize,
        position: PromptPosition,
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
        let mut words: Vec<Vec<u32>> = Vec::with_capacity(class_words.len());
        for w in class_words {
            let ids = tokenizer.encode_plain(&format!(" {}", w.trim()))?;
            if ids.is_empty() {
                return Err(Error::config(format!("class word `{w}`"), "has no tokens"));
            }
            if words.contains(&ids) {
                return Err(Error::config(
                    format!("class word `{w}`"),
                    "tokenizes like another class word",
                ));
            }
            words.push(ids);
        }
        let verbalizers: Vec<u32> = words.iter().map(|w| w[0]).collect();
        let cue = tokenizer.encode_plain(cue)?;
        if max_input == 0 {
            return Err(Error::config("max input tokens", "must be positive"));
        }
        let cut = Arc::new(Self::cut_inputs(&data, max_input, position));
        Ok(Self {
            decoder,
            data,
            cue,
            verbalizers,
            words,
            max_input,
            position,
            input_cache: Arc::default(),
            cut,
            frozen: None,
        })
    }

    /// Each split's inputs cut to `max_input` (none with the prompt first, which never caches).
    fn cut_inputs(
        data: &EncodedData,
        max_input: usize,
        position: PromptPosition,
    ) -> [SplitInputs; 3] {
        [SplitName::Train, SplitName::Selection, SplitName::Test].map(|split| match position {
            PromptPosition::Prefix => SplitInputs::default(),
            PromptPosition::Suffix => SplitInputs::new(
                data.split(split)
                    .tokens
                    .iter()
                    .map(|t| t[..t.len().min(max_input)].to_vec())
                    .collect(),
            ),
        })
    }

    /// The readout keeping its input states in `cache` (one shared with other readouts over
    /// the same decoder: [`super::input_cache::shared`]).
    pub fn with_input_cache(mut self, cache: Arc<InputCache>) -> Self {
        self.input_cache = cache;
        self
    }

    /// The readout scoring on the host with `frozen` (the same decoder's layers) whenever no
    /// gradient is needed: for CPU backends, where it is several times faster.
    pub fn with_frozen(mut self, frozen: Arc<FrozenDecoder>) -> Self {
        self.frozen = Some(frozen);
        self
    }

    /// The readout without its host decoder: every pass through burn (the generic path).
    pub fn without_frozen(mut self) -> Self {
        self.frozen = None;
        self
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

    /// The tokens of each class word.
    pub fn words(&self) -> &[Vec<u32>] {
        &self.words
    }

    /// Whether every class word is a single token (scored by its next-token logit).
    pub fn single_token(&self) -> bool {
        self.words.iter().all(|w| w.len() == 1)
    }

    /// Each example's input, cut to `max_input`.
    fn input(&self, tokens: &[u32]) -> Vec<u32> {
        tokens[..tokens.len().min(self.max_input)].to_vec()
    }

    /// What follows the prompt in each example's sequence: input ⊕ cue (prompt first), or the
    /// cue alone (prompt after the input, whose states are cached).
    pub(crate) fn tails(&self, split: SplitName, idx: &[usize]) -> Vec<Vec<u32>> {
        let tokens = self.data.split(split).tokens_of(idx);
        tokens
            .iter()
            .map(|t| match self.position {
                PromptPosition::Prefix => [self.input(t), self.cue.clone()].concat(),
                PromptPosition::Suffix => self.cue.clone(),
            })
            .collect()
    }

    /// Hidden states `[n, L + T, d]` of prompt ⊕ each tail, sequence `i` with its own
    /// prompt rows `prompts[i]` (`[n, L, d]`), right-padded with id 0 (causal attention keeps
    /// the padding out of every real position); with the prompt after the input, sequence `i`
    /// continues the cached input of example `rows[i]` of `split`.
    fn hidden(
        &self,
        prompts: Tensor<B, 3>,
        split: SplitName,
        rows: &[usize],
        tails: &[Vec<u32>],
    ) -> Tensor<B, 3> {
        let n = tails.len();
        let device = prompts.device();
        let t = tails.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let ids: Vec<i64> = tails
            .iter()
            .flat_map(|s| (0..t).map(move |j| s.get(j).map_or(0, |&v| v as i64)))
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, t]), &device);
        let tokens = self.decoder.embed_tokens(ids);
        let x = Tensor::cat(vec![prompts, tokens], 1);
        let mut cache = match self.position {
            PromptPosition::Prefix => self.decoder.cache(),
            PromptPosition::Suffix => self.input_cache.states(
                &self.decoder,
                self.frozen.as_deref(),
                split,
                self.cut(split),
                rows,
            ),
        };
        self.decoder.forward(x, &mut cache)
    }

    /// A split's inputs as cut for the input cache.
    fn cut(&self, split: SplitName) -> &SplitInputs {
        match split {
            SplitName::Train => &self.cut[0],
            SplitName::Selection => &self.cut[1],
            SplitName::Test => &self.cut[2],
        }
    }

    /// The host pass of examples `idx` under each of `prompts` (`[K, L, d]`; model-major:
    /// every example under prompt 0, then prompt 1, …): each sequence is prompt ⊕ its tail
    /// ([`VerbalizerReadout::tails`]), continuing its cached input when the prompt follows the
    /// input. Packed, unpadded; `None` without the host decoder or with a class word of
    /// several tokens.
    fn host_pass(
        &self,
        prompts: &Tensor<B, 3>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<HostPass> {
        let frozen = self.frozen.clone()?;
        if !self.single_token() || idx.is_empty() {
            return None;
        }
        let states = match self.position {
            PromptPosition::Suffix => {
                Some(
                    self.input_cache
                        .kept(&self.decoder, Some(&frozen), split, self.cut(split))?,
                )
            }
            PromptPosition::Prefix => None,
        };
        let start = states.as_ref().map_or(0, |s| s.width);
        let d = frozen.config().hidden_size;
        let [_, prompt_rows, _] = prompts.dims();
        let tails = self.tails(split, idx);
        let longest = tails.iter().map(Vec::len).max().unwrap_or(0);
        if prompt_rows + longest == 0
            || start + prompt_rows + longest > frozen.config().max_position
        {
            return None;
        }
        let embedded = self.decoder.embed_on_host(&tails.concat());
        let mut tail_rows = Vec::with_capacity(tails.len());
        let mut at = 0;
        for t in &tails {
            tail_rows.push(&embedded[at * d..(at + t.len()) * d]);
            at += t.len();
        }
        let rows: Vec<f32> = prompts.clone().into_data().iter::<f32>().collect();
        let (mut x, mut seqs) = (Vec::new(), Vec::new());
        for prompt in rows.chunks(prompt_rows * d) {
            for (&e, tail) in idx.iter().zip(&tail_rows) {
                seqs.push(Seq {
                    row: x.len() / d,
                    len: prompt_rows + tail.len() / d,
                    position: start,
                    past: states.as_ref().map(|_| e),
                });
                x.extend_from_slice(prompt);
                x.extend_from_slice(tail);
            }
        }
        Some(HostPass {
            frozen,
            states,
            x,
            seqs,
            prompt_rows,
        })
    }

    /// Class logits `[n, C]` from the host decoder ([`VerbalizerReadout::host_pass`]) when the
    /// prompt needs no gradient; `None` where it does not apply ([`Readout::logits`] then runs
    /// on the backend).
    pub fn logits_on_host(
        &self,
        prompt: &Tensor<B, 2>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<Tensor<B, 2>> {
        self.host_logits(&prompt.clone().unsqueeze(), split, idx)
    }

    /// [`VerbalizerReadout::logits_on_host`] of examples `idx` under each of `prompts`
    /// (`[K, L, d]`) in one pass: `[K·n, C]`, model-major.
    fn host_logits(
        &self,
        prompts: &Tensor<B, 3>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<Tensor<B, 2>> {
        if prompts.is_require_grad() {
            return None;
        }
        let mut pass = self.host_pass(prompts, split, idx)?;
        let hidden = pass.frozen.forward(
            std::mem::take(&mut pass.x),
            &pass.seqs,
            pass.past(),
            &mut (),
        );
        let last = pass.last_rows(&hidden);
        let last = Tensor::<B, 2>::from_data(
            TensorData::new(last, [pass.seqs.len(), pass.d()]),
            &prompts.device(),
        );
        Some(last.matmul(self.word_head()))
    }

    /// The output head's columns of the class words, `[d, C]`.
    fn word_head(&self) -> Tensor<B, 2> {
        let words: Vec<i64> = self.verbalizers.iter().map(|&v| v as i64).collect();
        let device = self.decoder.word_embeddings().device();
        let words = Tensor::<B, 1, Int>::from_data(
            TensorData::new(words, [self.verbalizers.len()]),
            &device,
        );
        self.decoder.output_head_t().select(1, words)
    }

    /// Class scores `[n, C]`: the log-likelihood of each whole class word after input ⊕ cue,
    /// example `i` after its own prompt rows `prompts[i]` (`[n, L, d]`).
    fn word_log_likelihoods(
        &self,
        prompts: Tensor<B, 3>,
        split: SplitName,
        idx: &[usize],
    ) -> Tensor<B, 2> {
        let [n, l, d] = prompts.dims();
        let device = prompts.device();
        let classes = self.words.len();
        let inputs = self.tails(split, idx);
        // One sequence per (example, class): tail ⊕ the word but its last token.
        let mut seqs = Vec::with_capacity(inputs.len() * classes);
        let rows: Vec<usize> = idx
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, classes))
            .collect();
        for input in &inputs {
            for w in &self.words {
                seqs.push(
                    input
                        .iter()
                        .chain(&w[..w.len() - 1])
                        .copied()
                        .collect::<Vec<_>>(),
                );
            }
        }
        // Each example's prompt for each of its classes' sequences.
        let prompts = prompts
            .unsqueeze_dim::<4>(1)
            .expand([n, classes, l, d])
            .reshape([n * classes, l, d]);
        let hidden = self.hidden(prompts, split, &rows, &seqs);
        let len = hidden.dims()[1];
        // Position predicting token j of the word: the one before it.
        let (mut positions, mut targets, mut owner) = (Vec::new(), Vec::new(), Vec::new());
        for (i, input) in inputs.iter().enumerate() {
            for (c, w) in self.words.iter().enumerate() {
                let row = i * classes + c;
                for (j, &tok) in w.iter().enumerate() {
                    positions.push((row * len + l + input.len() - 1 + j) as i64);
                    targets.push(tok as i64);
                    owner.push(row);
                }
            }
        }
        let p = positions.len();
        let positions = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [p]), &device);
        let h = hidden.reshape([seqs.len() * len, d]).select(0, positions);
        let logp = log_softmax(h.matmul(self.decoder.output_head_t()), 1);
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [p, 1]), &device);
        let token_logp = logp.gather(1, targets);
        // Sum each word's tokens: a [n·C, P] 0/1 matrix times the token log-probabilities.
        let mut assign = vec![0f32; seqs.len() * p];
        for (k, &row) in owner.iter().enumerate() {
            assign[row * p + k] = 1.0;
        }
        let assign = Tensor::<B, 2>::from_data(TensorData::new(assign, [seqs.len(), p]), &device);
        assign.matmul(token_logp).reshape([inputs.len(), classes])
    }
}

impl<B: Backend> VerbalizerReadout<B> {
    /// Class logits `[n, C]` on the backend, example `i` after its own prompt rows
    /// `prompts[i]` (`[n, L, d]`): the class words' next-token logits, or their whole
    /// log-likelihoods when some word has several tokens.
    fn backend_logits(
        &self,
        prompts: Tensor<B, 3>,
        split: SplitName,
        idx: &[usize],
    ) -> Tensor<B, 2> {
        if !self.single_token() {
            return self.word_log_likelihoods(prompts, split, idx);
        }
        let inputs = self.tails(split, idx);
        let [n, l, d] = prompts.dims();
        let device = prompts.device();
        let hidden = self.hidden(prompts, split, idx, &inputs);
        // The last real position of each sequence predicts the class word.
        let len = hidden.dims()[1];
        let last: Vec<i64> = inputs
            .iter()
            .enumerate()
            .map(|(i, s)| (i * len + l + s.len() - 1) as i64)
            .collect();
        let last = Tensor::<B, 1, Int>::from_data(TensorData::new(last, [n]), &device);
        let h = hidden.reshape([n * len, d]).select(0, last);
        h.matmul(self.word_head())
    }
}

/// One host pass of the verbalizer: each example's prompt ⊕ tail rows, packed.
struct HostPass {
    frozen: Arc<FrozenDecoder>,
    /// The inputs' cached states, when the prompt follows the input.
    states: Option<Arc<SplitStates>>,
    /// `[rows, d]`.
    x: Vec<f32>,
    seqs: Vec<Seq>,
    /// Prompt rows (the first of each sequence's).
    prompt_rows: usize,
}

impl HostPass {
    fn d(&self) -> usize {
        self.frozen.config().hidden_size
    }

    fn past(&self) -> Option<&dyn Past> {
        self.states.as_deref().map(|s| s as &dyn Past)
    }

    /// The last row of each sequence, `[n, d]`.
    fn last_rows(&self, hidden: &[f32]) -> Vec<f32> {
        let d = self.d();
        self.seqs
            .iter()
            .flat_map(|s| hidden[(s.row + s.len - 1) * d..][..d].iter().copied())
            .collect()
    }
}

impl<B: Backend> Readout<B> for VerbalizerReadout<B> {
    /// On the host decoder: forward with a tape, the cross-entropy's gradient at the last
    /// rows, backward to the input rows, summed over the examples' prompt rows.
    fn host_loss(
        &self,
        model: &PromptModel<B>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<HostLoss<B>> {
        let prompt = model.prompt.rows();
        let mut pass = self.host_pass(&prompt.clone().unsqueeze(), split, idx)?;
        let (d, classes) = (pass.d(), self.verbalizers.len());
        let head: Vec<f32> = self.word_head().into_data().iter::<f32>().collect();
        let (hidden, tape) =
            pass.frozen
                .forward_taped(std::mem::take(&mut pass.x), &pass.seqs, pass.past());
        let last = pass.last_rows(&hidden);
        let logits = affine(&last, &head, None, d, classes);
        let labels = self.data.split(split).labels_of(idx);
        let (loss, dz) = cross_entropy_host(&logits, &labels, classes);
        // Only each sequence's last row reaches the loss: d hidden = dz · headᵀ there.
        let d_last = affine_input_gradient(&dz, &head, d, classes);
        let mut d_hidden = vec![0f32; hidden.len()];
        for (s, g) in pass.seqs.iter().zip(d_last.chunks(d)) {
            d_hidden[(s.row + s.len - 1) * d..][..d].copy_from_slice(g);
        }
        let dx = pass
            .frozen
            .input_gradient(&tape, &pass.seqs, pass.past(), &d_hidden);
        let l = pass.prompt_rows;
        let mut grad = vec![0f32; l * d];
        for s in &pass.seqs {
            for (g, v) in grad.iter_mut().zip(&dx[s.row * d..][..l * d]) {
                *g += v;
            }
        }
        Some(HostLoss::of_prompt(loss, prompt, grad))
    }

    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        let prompt = model.prompt.rows();
        if let Some(logits) = self.logits_on_host(&prompt, split, idx) {
            return logits;
        }
        let [l, d] = prompt.dims();
        let prompts = prompt.unsqueeze::<3>().expand([idx.len(), l, d]);
        self.backend_logits(prompts, split, idx)
    }

    /// The examples under every prompt in one decoder pass (`K·n` sequences, on the host when
    /// it applies).
    fn logits_stacked(
        &self,
        prompts: Tensor<B, 3>,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Option<Vec<Tensor<B, 2>>> {
        let k = models.len();
        let logits = match self.host_logits(&prompts, split, idx) {
            Some(logits) => logits,
            None => self.backend_logits(per_row(prompts, idx.len()), split, &idx.repeat(k)),
        };
        Some(split_rows(logits, k))
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }

    fn eval_chunk(&self) -> usize {
        match self.position {
            PromptPosition::Prefix => 16,
            PromptPosition::Suffix => 64,
        }
    }
}
