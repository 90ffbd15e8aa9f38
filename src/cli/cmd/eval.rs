//! `tandem eval`: zero-shot accuracy of a hand-written class prompt.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use crate::cli::args::EvalArgs;
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::task::lookup;
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
        let spec = lookup(&task)?;
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
                task,
                prompt: prompt.clone(),
                seed,
                assets,
            },
        )?;
        println!("zero-shot class prompt \"{prompt}\" on {kind}");
        println!(
            "  selection accuracy {:.4}  loss {:.4}  (n={})",
            sel.accuracy, sel.loss, sel.count
        );
        println!(
            "  test      accuracy {:.4}  loss {:.4}  (n={})",
            test.accuracy, test.loss, test.count
        );
        Ok(())
    }
}

struct EvalJob {
    task: String,
    prompt: String,
    seed: u64,
    assets: Assets,
}

impl BackendJob for EvalJob {
    type Output = (tandem::readout::Metrics, tandem::readout::Metrics);
    fn run<B: AutodiffBackend>(
        self,
        _kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        let split = tandem::data::SplitConfig::default();
        zero_shot::<B>(
            &self.task,
            &self.prompt,
            20.0,
            &split,
            self.seed,
            &self.assets,
            &device,
        )
    }
}
