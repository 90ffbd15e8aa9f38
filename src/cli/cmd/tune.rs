//! `tandem tune`: gradient-only prompt tuning of a task into a run folder.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::args::TuneArgs;
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::data::Splits;
use tandem::prompt::Metric;
use tandem::readout::ReadoutConfig;
use tandem::run::RunDir;
use tandem::task::resolve;
use tandem::tune::{tune, TuneConfig, TuneResult};

impl TuneArgs {
    /// `tandem tune TASK [options]`.
    pub fn exec(self, assets: &Assets) -> Result<()> {
        let config = self.resolve(assets)?;
        let run = RunDir::fresh(&self.out, &format!("{}-s{}", config.task, config.seed))?;
        let progress = ProgressBar::new(config.gradient.steps as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} tuning [{bar:30}] {pos}/{len} steps {msg} ({elapsed}, eta {eta})",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        eprintln!("run folder: {}", run.path().display());
        let (result, _) = dispatch(
            config.backend,
            TuneJob {
                config: config.clone(),
                assets: assets.clone(),
                run: run.clone(),
                progress,
            },
        )?;
        print_summary(&result);
        println!("records: {}", run.path().display());
        Ok(())
    }

    /// The run's configuration: the task's (or `--config`'s), then each option given.
    fn resolve(&self, assets: &Assets) -> Result<TuneConfig> {
        let spec = resolve(&self.task)?;
        let mut c = match &self.config {
            Some(path) => load_yaml(path, &spec.tune_config())?,
            None => spec.tune_config(),
        };
        c.task = spec.name.to_string();
        if let Some(r) = &self.readout {
            c.readout = r.parse::<ReadoutConfig>()?;
        }
        if self.full {
            c.split.shots = None;
        }
        if let Some(k) = self.shots {
            c.split.shots = Some(k);
        }
        if let Some(l) = self.prompt_len {
            c.prompt_len = l;
        }
        if let Some(i) = &self.init {
            c.init = i.parse()?;
        }
        if let Some(s) = self.steps {
            c.gradient.steps = s;
        }
        if let Some(lr) = self.lr {
            c.gradient.lr = lr;
        }
        if let Some(b) = self.batch_size {
            c.gradient.batch_size = b;
        }
        if let Some(r) = self.record_every {
            c.gradient.record_every = r;
        }
        if let Some(m) = &self.metric {
            c.gradient.metric = m.parse::<Metric>()?;
        }
        if let Some(s) = self.seed {
            c.seed = s;
        }
        if let Some(b) = &self.backend {
            c.backend = b.parse()?;
        }
        if let Some(epochs) = self.epochs {
            if epochs == 0 {
                anyhow::bail!("invalid --epochs: must be at least 1");
            }
            let dataset = spec.load(assets)?;
            let (splits, _) = Splits::new(&dataset, &c.split, c.seed)?;
            let per_epoch = splits.train.len().div_ceil(c.gradient.batch_size.max(1));
            c.gradient.steps = per_epoch * epochs;
        }
        c.validate()?;
        Ok(c)
    }
}

/// `base` with every key the YAML file at `path` sets replaced (nested maps merged).
fn load_yaml(path: &Path, base: &TuneConfig) -> Result<TuneConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let overlay: serde_yaml::Value = serde_yaml::from_str(&text)
        .with_context(|| format!("invalid config {}", path.display()))?;
    let mut merged = serde_yaml::to_value(base)?;
    merge(&mut merged, overlay);
    serde_yaml::from_value(merged).with_context(|| format!("invalid config {}", path.display()))
}

fn merge(base: &mut serde_yaml::Value, overlay: serde_yaml::Value) {
    match (base, overlay) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn print_summary(r: &TuneResult) {
    println!(
        "task {}  seed {}  backend {}  steps {}",
        r.task, r.seed, r.backend, r.steps
    );
    println!(
        "  initial prompt: selection acc {:.4}  test acc {:.4}",
        r.initial_selection.accuracy, r.initial_test.accuracy
    );
    println!(
        "  tuned prompt:   selection acc {:.4}  test acc {:.4}  (test loss {:.4})",
        r.selection.accuracy, r.test.accuracy, r.test.loss
    );
    println!("  projected: \"{}\"", r.final_text);
    println!(
        "  time: prepare {:.1}s  train {:.1}s  total {:.1}s",
        r.prepare_seconds, r.train_seconds, r.wall_seconds
    );
}

struct TuneJob {
    config: TuneConfig,
    assets: Assets,
    run: RunDir,
    progress: ProgressBar,
}

impl BackendJob for TuneJob {
    type Output = (TuneResult, Vec<tandem::gradient::TrajectoryPoint>);
    fn run<B: AutodiffBackend>(
        self,
        _kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        tune::<B>(
            &self.config,
            &self.assets,
            &device,
            Some(&self.run),
            &self.progress,
        )
    }
}
