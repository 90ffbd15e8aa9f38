//! `tandem eval`: zero-shot metrics of a hand-written prompt on the task's backbone.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use crate::cli::args::EvalArgs;
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::readout::ReadoutConfig;
use tandem::task::{resolve, TaskSpec};
use tandem::tune::zero_shot;

impl EvalArgs {
    /// `tandem eval TASK [--prompt TEXT]`.
    pub fn exec(self, assets: Assets) -> Result<()> {
        let EvalArgs {
            task,
            prompt,
            seed,
            backend,
        } = self;
        let spec = resolve(&task)?;
        let prompt = match prompt.or_else(|| spec.init_text().map(String::from)) {
            Some(p) => p,
            None => anyhow::bail!(
                "task `{task}` starts from a random prompt: pass the text to evaluate with --prompt"
            ),
        };
        let kind: BackendKind = backend.parse()?;
        let (sel, test) = dispatch(
            kind,
            EvalJob {
                config: eval_config(&spec, seed, kind),
                prompt: prompt.clone(),
                assets,
            },
        )?;
        println!("zero-shot prompt \"{prompt}\" ({}) on {kind}", spec.name);
        println!(
            "  selection accuracy {:.4}  macro-F1 {:.4}  MCC {:.4}  loss {:.4}  (n={})",
            sel.accuracy, sel.macro_f1, sel.mcc, sel.loss, sel.count
        );
        println!(
            "  test      accuracy {:.4}  macro-F1 {:.4}  MCC {:.4}  loss {:.4}  (n={})",
            test.accuracy, test.macro_f1, test.mcc, test.loss, test.count
        );
        Ok(())
    }
}

/// The configuration a zero-shot evaluation scores: the task's, except that an input-head task
/// is scored by class prompts (its head is untrained).
fn eval_config(spec: &TaskSpec, seed: u64, kind: BackendKind) -> tandem::tune::TuneConfig {
    let mut config = spec.tune_config();
    config.seed = seed;
    config.backend = kind;
    if config.readout == ReadoutConfig::InputHead {
        config.readout = ReadoutConfig::default();
    }
    config
}

struct EvalJob {
    config: tandem::tune::TuneConfig,
    prompt: String,
    assets: Assets,
}

impl BackendJob for EvalJob {
    type Output = (tandem::readout::Metrics, tandem::readout::Metrics);
    fn run<B: AutodiffBackend>(
        self,
        _kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        zero_shot::<B>(&self.config, &self.prompt, &self.assets, &device)
    }
}
