//! Gradient-only prompt tuning of a built-in task, end to end: data, backbone, readout, one
//! gradient stage, evaluation, and the run folder.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::assets::Assets;
use crate::backbone::{Backbone, DEFAULT_MAX_LEN};
use crate::backend::BackendKind;
use crate::data::{SplitConfig, Splits};
use crate::error::{Error, Result};
use crate::gradient::{GradientConfig, GradientStage, TrajectoryPoint};
use crate::prompt::{Projector, PromptInit, SoftPrompt};
use crate::readout::{
    evaluate_valid, ClassPromptReadout, EncodedData, InputHeadReadout, Metrics, PromptModel,
    Readout, ReadoutConfig, SplitName,
};
use crate::run::RunDir;
use crate::task::lookup;

/// Everything that defines a tuning run; written to the run folder as `config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuneConfig {
    /// Built-in task name.
    pub task: String,
    /// Readout and its settings.
    pub readout: ReadoutConfig,
    /// Number of soft-prompt vectors L.
    pub prompt_len: usize,
    /// Initialisation of the prompt.
    pub init: PromptInit,
    /// Run seed: k-shot sample, initialisation, batch order.
    pub seed: u64,
    /// Data split.
    pub split: SplitConfig,
    /// Gradient stage.
    pub gradient: GradientConfig,
    /// Maximum sequence length, prompt and special tokens included.
    pub max_len: usize,
    /// Backend.
    pub backend: BackendKind,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self {
            task: "mr".into(),
            readout: ReadoutConfig::default(),
            prompt_len: 8,
            init: PromptInit::Text("this movie review is".into()),
            seed: 0,
            split: SplitConfig::default(),
            gradient: GradientConfig::default(),
            max_len: DEFAULT_MAX_LEN,
            backend: BackendKind::Ndarray,
        }
    }
}

impl TuneConfig {
    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        lookup(&self.task)?;
        if !BackendKind::available().contains(&self.backend) {
            return Err(Error::BackendUnavailable {
                backend: self.backend.name().into(),
                feature: self.backend.name().into(),
            });
        }
        if self.prompt_len == 0 {
            return Err(Error::config("prompt_len", "must be at least 1"));
        }
        if self.max_len < self.prompt_len + 3 {
            return Err(Error::config(
                "max_len",
                format!(
                    "{} leaves no room for text after {} prompt vectors",
                    self.max_len, self.prompt_len
                ),
            ));
        }
        if let ReadoutConfig::ClassPrompt { scale } = self.readout {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(Error::config(
                    "readout.class-prompt.scale",
                    "must be positive",
                ));
            }
        }
        self.split.validate()?;
        self.gradient.validate()
    }
}

/// What a tuning run measured; written to the run folder as `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneResult {
    /// Task name.
    pub task: String,
    /// Run seed.
    pub seed: u64,
    /// Backend.
    pub backend: BackendKind,
    /// Readout.
    pub readout: ReadoutConfig,
    /// Metrics of the initial prompt on the selection split.
    pub initial_selection: Metrics,
    /// Metrics of the initial prompt on the test split.
    pub initial_test: Metrics,
    /// Metrics of the tuned prompt on the selection split.
    pub selection: Metrics,
    /// Metrics of the tuned prompt on the test split.
    pub test: Metrics,
    /// The tuned prompt projected to its nearest tokens.
    pub final_text: String,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Seconds spent building caches (tokenizing, frozen sample embeddings).
    pub prepare_seconds: f64,
    /// Seconds spent in the gradient stage.
    pub train_seconds: f64,
    /// Wall time of the whole run in seconds.
    pub wall_seconds: f64,
    /// sha256 of the backbone weights.
    pub backbone_sha256: String,
    /// tandem's version.
    pub tandem_version: String,
}

/// A readout of either kind, behind one type.
#[derive(Module, Debug)]
pub(crate) enum AnyReadout<B: Backend> {
    Class(ClassPromptReadout<B>),
    Input(InputHeadReadout<B>),
}

impl<B: Backend> Readout<B> for AnyReadout<B> {
    fn logits(
        &self,
        model: &PromptModel<B>,
        split: SplitName,
        idx: &[usize],
    ) -> burn::tensor::Tensor<B, 2> {
        match self {
            AnyReadout::Class(r) => r.logits(model, split, idx),
            AnyReadout::Input(r) => r.logits(model, split, idx),
        }
    }
    fn data(&self) -> &EncodedData {
        match self {
            AnyReadout::Class(r) => r.data(),
            AnyReadout::Input(r) => r.data(),
        }
    }
    fn eval_chunk(&self) -> usize {
        match self {
            AnyReadout::Class(r) => r.eval_chunk(),
            AnyReadout::Input(r) => r.eval_chunk(),
        }
    }
}

/// Runs gradient-only tuning. Writes `config.yaml`, `split.json`, `trajectory.jsonl` and
/// `results.json` into `out` when given.
pub fn tune<B: AutodiffBackend>(
    config: &TuneConfig,
    assets: &Assets,
    device: &B::Device,
    out: Option<&RunDir>,
    progress: &ProgressBar,
) -> Result<(TuneResult, Vec<TrajectoryPoint>)> {
    config.validate()?;
    let start = Instant::now();
    B::seed(device, config.seed);
    let task = lookup(&config.task)?;
    let dataset = task.load(assets)?;
    let (splits, manifest) = Splits::with_manifest(&dataset, &config.split, config.seed)?;
    if let Some(out) = out {
        out.write_yaml("config.yaml", config)?;
        out.write_json("split.json", &manifest)?;
    }
    let backbone = Backbone::<B>::minilm(assets, device)?;
    let data = EncodedData::new(&dataset, &splits, &backbone.tokenizer);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let prompt = SoftPrompt::init(
        &config.init,
        config.prompt_len,
        &backbone.encoder,
        &backbone.tokenizer,
        &mut rng,
    )?;
    let (readout, head) = match config.readout {
        ReadoutConfig::ClassPrompt { scale } => (
            AnyReadout::Class(ClassPromptReadout::new(
                backbone.clone(),
                data,
                scale,
                config.max_len,
                Some(&assets.embedding_cache()),
            )),
            None,
        ),
        ReadoutConfig::InputHead => {
            let readout = InputHeadReadout::new(backbone.clone(), data, config.max_len);
            let head = readout.init_head(&mut rng);
            (AnyReadout::Input(readout), Some(head))
        }
    };
    let prepare_seconds = start.elapsed().as_secs_f64();
    let model = PromptModel { prompt, head };
    let initial_selection = evaluate_valid(&readout, &model, SplitName::Selection);
    let initial_test = evaluate_valid(&readout, &model, SplitName::Test);

    let projector = Projector::new(
        &backbone.encoder,
        &backbone.tokenizer,
        config.gradient.metric,
    );
    let stage = GradientStage::new(&readout, &projector, &backbone.tokenizer, &config.gradient);
    let mut optim = stage.optimizer();
    progress.set_length(config.gradient.steps as u64);
    let t_train = Instant::now();
    let outcome = stage.run(model, &mut optim, &mut rng, 0, progress)?;
    let train_seconds = t_train.elapsed().as_secs_f64();
    progress.finish_and_clear();

    let selection = evaluate_valid(&readout, &outcome.model, SplitName::Selection);
    let test = evaluate_valid(&readout, &outcome.model, SplitName::Test);
    let final_text = outcome
        .trajectory
        .last()
        .map(|p| p.text.clone())
        .unwrap_or_default();
    let result = TuneResult {
        task: config.task.clone(),
        seed: config.seed,
        backend: config.backend,
        readout: config.readout,
        initial_selection,
        initial_test,
        selection,
        test,
        final_text,
        steps: outcome.step_losses.len(),
        prepare_seconds,
        train_seconds,
        wall_seconds: start.elapsed().as_secs_f64(),
        backbone_sha256: backbone.weights_sha256.clone(),
        tandem_version: env!("CARGO_PKG_VERSION").into(),
    };
    if let Some(out) = out {
        out.write_jsonl("trajectory.jsonl", &outcome.trajectory)?;
        out.write_json("results.json", &result)?;
    }
    Ok((result, outcome.trajectory))
}

/// Accuracy of a hand-written class prompt used as is (its natural token length), without
/// training: the zero-shot baseline of the class-prompt readout.
pub fn zero_shot<B: AutodiffBackend>(
    task: &str,
    prompt_text: &str,
    scale: f32,
    split: &SplitConfig,
    seed: u64,
    assets: &Assets,
    device: &B::Device,
) -> Result<(Metrics, Metrics)> {
    let spec = lookup(task)?;
    let dataset = spec.load(assets)?;
    let (splits, _) = Splits::with_manifest(&dataset, split, seed)?;
    let backbone = Backbone::<B>::minilm(assets, device)?;
    let ids = backbone.tokenizer.encode(prompt_text);
    if ids.is_empty() {
        return Err(Error::config(
            format!("prompt `{prompt_text}`"),
            "has no tokens",
        ));
    }
    let data = EncodedData::new(&dataset, &splits, &backbone.tokenizer);
    let rows = SoftPrompt::token_rows(&backbone.encoder, &ids);
    let cache = assets.embedding_cache();
    let readout = ClassPromptReadout::new(backbone, data, scale, DEFAULT_MAX_LEN, Some(&cache));
    let model = PromptModel {
        prompt: SoftPrompt::from_tensor(rows),
        head: None,
    };
    Ok((
        evaluate_valid(&readout, &model, SplitName::Selection),
        evaluate_valid(&readout, &model, SplitName::Test),
    ))
}
