//! Gradient-only prompt tuning of a task, end to end: data, backbone, readout, one
//! gradient stage, evaluation, and the run folder.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::assets::Assets;
use crate::backbone::DEFAULT_MAX_LEN;
use crate::backend::BackendKind;
use crate::data::SplitConfig;
use crate::engine::TaskSetup;
use crate::error::{Error, Result};
use crate::gradient::{GradientConfig, GradientStage, TrajectoryPoint};
use crate::prompt::PromptInit;
use crate::readout::{evaluate_valid, Metrics, ReadoutConfig, SplitName};
use crate::run::RunDir;
use crate::task::{validate_classes, validate_readout, BackboneSpec, Corpus, DataSource, Metric};

/// Everything that defines a tuning run; written to the run folder as `config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuneConfig {
    /// Task name (names run folders).
    pub task: String,
    /// One line describing the task, shown to the mentor.
    pub description: String,
    /// Where the examples come from.
    pub data: DataSource,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The frozen backbone.
    pub backbone: BackboneSpec,
    /// The metric that drives selection and best-checkpoint choice.
    pub metric: Metric,
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
            description:
                "sentiment of movie-review snippets (Rotten Tomatoes): negative or positive".into(),
            data: DataSource::Corpus(Corpus::RottenTomatoes),
            classes: vec!["negative".into(), "positive".into()],
            backbone: BackboneSpec::MiniLm,
            metric: Metric::Accuracy,
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
        validate_classes(&self.classes, &self.data)?;
        validate_readout(&self.readout, &self.backbone, &self.data)?;
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
        self.split.validate()?;
        self.gradient.validate()
    }
}

/// What a tuning run measured; written to the run folder as `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    let setup = TaskSetup::<B>::new(config, assets, device)?;
    if let Some(out) = out {
        out.write_yaml("config.yaml", config)?;
        out.write_json("split.json", &setup.manifest)?;
    }
    let readout = &setup.readout;
    let model = setup.model.clone();
    let mut rng = setup.rng.clone();
    let initial_selection = evaluate_valid(readout, &model, SplitName::Selection);
    let initial_test = evaluate_valid(readout, &model, SplitName::Test);
    let stage = GradientStage::new(
        readout,
        &setup.projector,
        setup.space.vocab.as_ref(),
        &config.gradient,
    );
    let mut optim = stage.optimizer();
    progress.set_length(config.gradient.steps as u64);
    let t_train = Instant::now();
    let outcome = stage.run(model, &mut optim, &mut rng, 0, progress)?;
    let train_seconds = t_train.elapsed().as_secs_f64();
    progress.finish_and_clear();

    let selection = evaluate_valid(readout, &outcome.model, SplitName::Selection);
    let test = evaluate_valid(readout, &outcome.model, SplitName::Test);
    let final_text = outcome
        .trajectory
        .last()
        .map(|p| p.text.clone())
        .unwrap_or_default();
    let result = TuneResult {
        task: config.task.clone(),
        seed: config.seed,
        backend: config.backend,
        readout: config.readout.clone(),
        initial_selection,
        initial_test,
        selection,
        test,
        final_text,
        steps: outcome.step_losses.len(),
        prepare_seconds: setup.prepare_seconds,
        train_seconds,
        wall_seconds: start.elapsed().as_secs_f64(),
        backbone_sha256: setup.backbone_sha256.clone(),
        tandem_version: env!("CARGO_PKG_VERSION").into(),
    };
    if let Some(out) = out {
        out.write_jsonl("trajectory.jsonl", &outcome.trajectory)?;
        out.write_json("results.json", &result)?;
    }
    Ok((result, outcome.trajectory))
}

/// Metrics (selection, test) of a hand-written prompt used as is (its natural token length),
/// without training: the zero-shot baseline of the task's readout on its backbone.
pub fn zero_shot<B: AutodiffBackend>(
    config: &TuneConfig,
    prompt_text: &str,
    assets: &Assets,
    device: &B::Device,
) -> Result<(Metrics, Metrics)> {
    let mut config = config.clone();
    config.init = PromptInit::Text(prompt_text.into());
    config.validate()?;
    let setup = TaskSetup::<B>::new(&config, assets, device)?;
    let len = setup.space.vocab.encode_text(prompt_text).len();
    let model = setup
        .space
        .text_model(prompt_text, len, setup.model.head.clone())
        .ok_or_else(|| Error::config(format!("prompt `{prompt_text}`"), "has no tokens"))?;
    Ok((
        evaluate_valid(&setup.readout, &model, SplitName::Selection),
        evaluate_valid(&setup.readout, &model, SplitName::Test),
    ))
}
