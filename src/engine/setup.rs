//! Everything a run builds before its first step, for any backbone: the data, the frozen model
//! behind its readout, the vocabulary the prompt lives in, the projector, the initial prompt.
//! Shared by `tandem tune` and the engine.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::assets::{Assets, SMOLLM2};
use crate::backbone::{Backbone, FrozenEncoder, Vocabulary, WordEmbeddings};
use crate::data::{Dataset, SplitManifest, Splits};
use crate::decoder::{DecoderTokenizer, GgufFile, Llama};
use crate::error::{Error, Result};
use crate::prompt::{fit_to_len, Projector, SoftPrompt};
use crate::readout::{
    input_cache, ClassPromptReadout, EncodedData, Head, HostLoss, InputHeadReadout, PromptModel,
    Readout, ReadoutConfig, SplitName, VerbalizerReadout,
};
use crate::task::BackboneSpec;
use crate::tune::TuneConfig;

/// A readout of any kind, behind one type.
#[derive(Module, Debug)]
pub enum AnyReadout<B: Backend> {
    /// CoOp-style class prompts on an encoder.
    Class(ClassPromptReadout<B>),
    /// Lester-style input prompt and head on an encoder.
    Input(InputHeadReadout<B>),
    /// Lester-style input prompt and class words on a decoder.
    Verbalizer(VerbalizerReadout<B>),
}

impl<B: Backend> Readout<B> for AnyReadout<B> {
    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2> {
        match self {
            AnyReadout::Class(r) => r.logits(model, split, idx),
            AnyReadout::Input(r) => r.logits(model, split, idx),
            AnyReadout::Verbalizer(r) => r.logits(model, split, idx),
        }
    }
    fn host_loss(
        &self,
        model: &PromptModel<B>,
        split: SplitName,
        idx: &[usize],
    ) -> Option<HostLoss<B>> {
        match self {
            AnyReadout::Class(r) => r.host_loss(model, split, idx),
            AnyReadout::Input(r) => r.host_loss(model, split, idx),
            AnyReadout::Verbalizer(r) => r.host_loss(model, split, idx),
        }
    }
    fn data(&self) -> &EncodedData {
        match self {
            AnyReadout::Class(r) => r.data(),
            AnyReadout::Input(r) => r.data(),
            AnyReadout::Verbalizer(r) => r.data(),
        }
    }
    fn eval_chunk(&self) -> usize {
        match self {
            AnyReadout::Class(r) => r.eval_chunk(),
            AnyReadout::Input(r) => r.eval_chunk(),
            AnyReadout::Verbalizer(r) => r.eval_chunk(),
        }
    }
    fn logits_stacked(
        &self,
        prompts: Tensor<B, 3>,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Option<Vec<Tensor<B, 2>>> {
        match self {
            AnyReadout::Class(r) => r.logits_stacked(prompts, models, split, idx),
            AnyReadout::Input(r) => r.logits_stacked(prompts, models, split, idx),
            AnyReadout::Verbalizer(r) => r.logits_stacked(prompts, models, split, idx),
        }
    }
    fn eval_chunk_each(&self, k: usize) -> usize {
        match self {
            AnyReadout::Class(r) => r.eval_chunk_each(k),
            AnyReadout::Input(r) => r.eval_chunk_each(k),
            AnyReadout::Verbalizer(r) => r.eval_chunk_each(k),
        }
    }
}

/// The vocabulary a soft prompt lives in: the backbone's tokenizer and word-embedding table.
#[derive(Clone)]
pub struct PromptSpace<B: Backend> {
    /// The tokenizer.
    pub vocab: Arc<dyn Vocabulary>,
    /// The word-embedding table `[V, d]` (frozen).
    pub table: Tensor<B, 2>,
}

impl<B: Backend> PromptSpace<B> {
    /// A prompt model whose rows are the embeddings of `text`'s tokens, cycled or cut to `len`;
    /// `None` when the text has no tokens.
    pub fn text_model(
        &self,
        text: &str,
        len: usize,
        head: Option<Head<B>>,
    ) -> Option<PromptModel<B>> {
        self.ids_model(&self.vocab.encode_text(text), len, head)
    }

    /// A prompt model whose rows are the embeddings of `ids`, cycled or cut to `len`; `None`
    /// when there are none.
    pub fn ids_model(
        &self,
        ids: &[u32],
        len: usize,
        head: Option<Head<B>>,
    ) -> Option<PromptModel<B>> {
        if ids.is_empty() {
            return None;
        }
        let rows = SoftPrompt::token_rows(&self.table, &fit_to_len(ids, len));
        Some(PromptModel {
            prompt: SoftPrompt::from_tensor(rows),
            head,
        })
    }

    /// The text of token ids.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.vocab.decode_ids(ids)
    }
}

/// What `TaskSetup::new` built.
pub struct TaskSetup<B: AutodiffBackend> {
    /// The examples.
    pub dataset: Dataset,
    /// Every index of the split, for `split.json`.
    pub manifest: SplitManifest,
    /// The readout over the frozen backbone.
    pub readout: AnyReadout<B>,
    /// The prompt's vocabulary.
    pub space: PromptSpace<B>,
    /// Nearest-token projection over that vocabulary.
    pub projector: Projector<B>,
    /// The initial prompt (and head).
    pub model: PromptModel<B>,
    /// The run's RNG after initialisation.
    pub rng: ChaCha8Rng,
    /// sha256 of the backbone's weights.
    pub backbone_sha256: String,
    /// Seconds spent loading and caching.
    pub prepare_seconds: f64,
}

impl<B: AutodiffBackend> TaskSetup<B> {
    /// Loads the data and the backbone of `config`, builds its readout and initial prompt.
    pub fn new(config: &TuneConfig, assets: &Assets, device: &B::Device) -> Result<Self> {
        let start = Instant::now();
        B::seed(device, config.seed);
        let dataset = config.data.load(assets, &config.classes)?;
        let (splits, manifest) = Splits::with_manifest(&dataset, &config.split, config.seed)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let built = match &config.backbone {
            BackboneSpec::MiniLm => encoder(
                config,
                Backbone::minilm(assets, device)?,
                &dataset,
                &splits,
                assets,
            )?,
            BackboneSpec::Bert(dir) => encoder(
                config,
                Backbone::from_dir(Path::new(dir.as_ref()), device)?,
                &dataset,
                &splits,
                assets,
            )?,
            BackboneSpec::SmolLm2 => {
                let path = assets.require(&SMOLLM2, SMOLLM2.files[0].dest)?;
                decoder(config, &path, &dataset, &splits, device)?
            }
            BackboneSpec::LlamaGguf(file) => {
                decoder(config, Path::new(file.as_ref()), &dataset, &splits, device)?
            }
        };
        let prompt = SoftPrompt::init(
            &config.init,
            config.prompt_len,
            &built.space.table,
            built.space.vocab.as_ref(),
            &mut rng,
        )?;
        let head = match &built.readout {
            AnyReadout::Input(r) => Some(r.init_head(&mut rng)),
            _ => None,
        };
        let projector = Projector::new(
            &built.space.table,
            built.space.vocab.as_ref(),
            config.gradient.metric,
        );
        Ok(Self {
            dataset,
            manifest,
            readout: built.readout,
            space: built.space,
            projector,
            model: PromptModel { prompt, head },
            rng,
            backbone_sha256: built.sha256,
            prepare_seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// A readout over a loaded backbone, with the prompt's vocabulary.
struct Built<B: Backend> {
    readout: AnyReadout<B>,
    space: PromptSpace<B>,
    sha256: String,
}

/// The class-prompt or input-head readout over a BERT-family encoder.
fn encoder<B: AutodiffBackend>(
    config: &TuneConfig,
    backbone: Backbone<B>,
    dataset: &Dataset,
    splits: &Splits,
    assets: &Assets,
) -> Result<Built<B>> {
    let data = EncodedData::new(dataset, splits, &backbone.tokenizer);
    let space = PromptSpace {
        vocab: Arc::new(backbone.tokenizer.clone()),
        table: backbone.encoder.table(),
    };
    let sha256 = backbone.weights_sha256.clone();
    // CPU backends take the training loss and its gradients on the host encoder.
    let frozen =
        (config.backend.is_cpu()).then(|| Arc::new(FrozenEncoder::from(&backbone.encoder)));
    let readout = match &config.readout {
        ReadoutConfig::ClassPrompt { scale } => {
            let cache = assets.embedding_cache();
            let r = ClassPromptReadout::new(backbone, data, *scale, config.max_len, Some(&cache));
            AnyReadout::Class(match frozen {
                Some(frozen) => r.with_frozen(frozen),
                None => r,
            })
        }
        ReadoutConfig::InputHead => {
            let r = InputHeadReadout::new(backbone, data, config.max_len);
            AnyReadout::Input(match frozen {
                Some(frozen) => r.with_frozen(frozen),
                None => r,
            })
        }
        ReadoutConfig::Verbalizer { .. } => {
            return Err(Error::config(
                "readout",
                "the `verbalizer` readout needs a decoder backbone (`smollm2` or `llama_gguf`)",
            ))
        }
    };
    Ok(Built {
        readout,
        space,
        sha256,
    })
}

/// The verbalizer readout over a llama decoder read from a GGUF file.
fn decoder<B: AutodiffBackend>(
    config: &TuneConfig,
    path: &Path,
    dataset: &Dataset,
    splits: &Splits,
    device: &B::Device,
) -> Result<Built<B>> {
    let ReadoutConfig::Verbalizer { cue, position } = &config.readout else {
        return Err(Error::config(
            "readout",
            "a decoder backbone is read out by `verbalizer` (its next-token logits of the class words)",
        ));
    };
    let file = GgufFile::open(path)?;
    let tokenizer = DecoderTokenizer::from_vocab(&file.vocab()?, path)?;
    let llama = Llama::<B>::from_gguf(&file, device)?;
    if llama.config().vocab_size != tokenizer.vocab_size() {
        return Err(Error::model(path, "tokenizer and embedding sizes differ"));
    }
    let newline = tokenizer.encode_plain("\n")?;
    let data = EncodedData::with_tokenizer(
        dataset,
        splits,
        |t| tokenizer.encode_plain(t).unwrap_or_default(),
        &newline,
    );
    let space = PromptSpace {
        vocab: Arc::new(tokenizer.clone()),
        table: llama.table(),
    };
    let max_input = config.max_len.saturating_sub(config.prompt_len).max(1);
    let sha256 = crate::assets::sha256_file(path)?;
    // CPU backends score on the host, where the pass is several times faster.
    let frozen = config
        .backend
        .is_cpu()
        .then(|| crate::decoder::shared_frozen(&sha256, || llama.frozen()));
    let readout = VerbalizerReadout::new(
        llama,
        &tokenizer,
        data,
        cue,
        &config.classes,
        max_input,
        *position,
    )?;
    let mut readout = readout.with_input_cache(input_cache::shared(&sha256, max_input));
    if let Some(frozen) = frozen {
        readout = readout.with_frozen(frozen);
    }
    Ok(Built {
        readout: AnyReadout::Verbalizer(readout),
        space,
        sha256,
    })
}
