//! CoOp-style readout: class embeddings from the prompt ⊕ class-name tokens, compared by cosine to
//! frozen sentence embeddings of the examples, which are computed once per split and cached.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::batch::per_row;
use super::class_prompt_host::ClassPass;
use super::host_loss::{host, HostLoss};
use super::pooled_pass::HostInputs;
use super::{EncodedData, PromptModel, Readout, SplitName};
use crate::backbone::{Backbone, EmbeddingCache, FrozenEncoder};

/// The class-prompt readout with its cache of normalised sample embeddings.
#[derive(Module, Debug)]
pub struct ClassPromptReadout<B: Backend> {
    backbone: Backbone<B>,
    #[module(skip)]
    data: EncodedData,
    #[module(skip)]
    class_tokens: Vec<Vec<u32>>,
    scale: f32,
    max_len: usize,
    /// Normalised sample embeddings of the train, selection and test splits; empty if uncached.
    cache: Vec<Tensor<B, 2>>,
    /// The encoder's layers on the host, for the prompt gradient on a CPU backend.
    #[module(skip)]
    frozen: Option<Arc<FrozenEncoder>>,
}

fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

impl<B: Backend> ClassPromptReadout<B> {
    /// Builds the readout and embeds every example of every split once (the cache), reading and
    /// filling `disk` when given.
    pub fn new(
        backbone: Backbone<B>,
        data: EncodedData,
        scale: f32,
        max_len: usize,
        disk: Option<&EmbeddingCache>,
    ) -> Self {
        let mut r = Self::uncached(backbone, data, scale, max_len);
        r.cache = [SplitName::Train, SplitName::Selection, SplitName::Test]
            .into_iter()
            .map(|s| r.embed_split(s, disk))
            .collect();
        r
    }

    /// The readout without a cache: sample embeddings are recomputed on every call (for
    /// measuring what the cache saves).
    pub fn uncached(backbone: Backbone<B>, data: EncodedData, scale: f32, max_len: usize) -> Self {
        let class_tokens = data
            .class_names
            .iter()
            .map(|c| backbone.tokenizer.encode(c))
            .collect();
        Self {
            backbone,
            data,
            class_tokens,
            scale,
            max_len,
            cache: Vec::new(),
            frozen: None,
        }
    }

    /// The readout computing its loss and prompt gradient on the host with `frozen` (the same
    /// encoder's layers): for CPU backends, where it is several times faster.
    pub fn with_frozen(mut self, frozen: Arc<FrozenEncoder>) -> Self {
        self.frozen = Some(frozen);
        self
    }

    fn embed_split(&self, split: SplitName, disk: Option<&EmbeddingCache>) -> Tensor<B, 2> {
        let seqs = &self.data.split(split).tokens;
        if seqs.is_empty() {
            return Tensor::zeros(
                [0, self.backbone.encoder.hidden_size()],
                &self.backbone.device(),
            );
        }
        let emb = match disk {
            Some(cache) => cache.embed(&self.backbone, seqs, self.max_len),
            None => self.backbone.embed(seqs, self.max_len, 64),
        };
        l2_normalize(emb).detach()
    }

    /// Normalised class embeddings `[classes, d]` for a prompt.
    pub fn class_embeddings(&self, model: &PromptModel<B>) -> Tensor<B, 2> {
        let seqs: Vec<&[u32]> = self.class_tokens.iter().map(|t| t.as_slice()).collect();
        l2_normalize(
            self.backbone
                .embed_with_prompt(model.prompt.rows(), &seqs, self.max_len),
        )
    }

    /// Normalised class embeddings `[K·classes, d]` of prompts `[K, L, d]` in one encoder
    /// pass, model-major (prompt 0's classes, then prompt 1's, …).
    fn class_embeddings_each(&self, prompts: Tensor<B, 3>) -> Tensor<B, 2> {
        let k = prompts.dims()[0];
        let seqs: Vec<&[u32]> = (0..k)
            .flat_map(|_| self.class_tokens.iter().map(|t| t.as_slice()))
            .collect();
        let prompts = per_row(prompts, self.class_tokens.len());
        l2_normalize(
            self.backbone
                .embed_with_prompts(prompts, &seqs, self.max_len),
        )
    }

    /// The backbone.
    pub fn backbone(&self) -> &Backbone<B> {
        &self.backbone
    }

    fn samples(&self, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        let device = self.backbone.device();
        match self.cache.as_slice() {
            [_, _, _] => {
                let i = match split {
                    SplitName::Train => 0,
                    SplitName::Selection => 1,
                    SplitName::Test => 2,
                };
                let ids: Tensor<B, 1, Int> = Tensor::from_data(
                    TensorData::new(
                        idx.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                        [idx.len()],
                    ),
                    &device,
                );
                self.cache[i].clone().select(0, ids)
            }
            _ => {
                let seqs: Vec<Vec<u32>> = self
                    .data
                    .split(split)
                    .tokens_of(idx)
                    .into_iter()
                    .map(<[u32]>::to_vec)
                    .collect();
                l2_normalize(self.backbone.embed(&seqs, self.max_len, 64)).detach()
            }
        }
    }
}

impl<B: Backend> Readout<B> for ClassPromptReadout<B> {
    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        let classes = self.class_embeddings(model);
        self.samples(split, idx)
            .matmul(classes.transpose())
            .mul_scalar(self.scale)
    }

    /// Every prompt's class embeddings in one encoder pass, then one `[n, d] x [d, K·C]`
    /// product against the cached sample embeddings.
    fn logits_stacked(
        &self,
        prompts: Tensor<B, 3>,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Option<Vec<Tensor<B, 2>>> {
        let classes = self.class_embeddings_each(prompts);
        let logits = self
            .samples(split, idx)
            .matmul(classes.transpose())
            .mul_scalar(self.scale);
        // `[n, K·C]`: prompt k's classes are columns k·C..(k+1)·C.
        let (n, c) = (idx.len(), self.class_tokens.len());
        let each = (0..models.len()).map(|k| logits.clone().slice([0..n, k * c..(k + 1) * c]));
        Some(each.collect())
    }

    /// On the host encoder when it is attached: the class sequences' taped pass, the loss
    /// and every stage's backward by hand (weights constant).
    fn host_loss(
        &self,
        model: &PromptModel<B>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<HostLoss<B>> {
        let frozen = self.frozen.as_deref()?;
        let prompt = model.prompt.rows();
        let l = prompt.dims()[0];
        let seqs: Vec<&[u32]> = self.class_tokens.iter().map(|t| t.as_slice()).collect();
        let inputs = HostInputs::shared(&self.backbone, prompt.clone(), &seqs, self.max_len);
        let pass = ClassPass::forward(frozen, inputs);
        let samples = host(self.samples(split, idx));
        let labels = self.data.split(split).labels_of(idx);
        let (loss, grad) = pass.prompt_gradient(frozen, &samples, &labels, self.scale, l);
        Some(HostLoss::of_prompt(loss, prompt, grad))
    }

    fn data(&self) -> &EncodedData {
        &self.data
    }

    fn eval_chunk(&self) -> usize {
        // Scoring is a [n, d] x [d, C] product once the class embeddings exist.
        4096
    }

    /// The class embeddings cost the same for any number of examples: all in one chunk.
    fn eval_chunk_each(&self, _k: usize) -> usize {
        self.eval_chunk()
    }
}
