//! The commands behind the arguments.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::{Cli, Command, TuneArgs};
use tandem::assets::{self, Assets, FileState};
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::data::Splits;
use tandem::prompt::Metric;
use tandem::readout::ReadoutConfig;
use tandem::run::RunDir;
use tandem::task::{all_tasks, lookup};
use tandem::tune::{tune, zero_shot, TuneConfig, TuneResult};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let assets = Assets::from_env();
    match cli.command {
        Command::Fetch { only, check } => fetch(&assets, &only, check),
        Command::Tasks => {
            for t in all_tasks() {
                println!("{:<12} {}", t.name, t.description);
            }
            Ok(())
        }
        Command::Tune(args) => tune_cmd(&assets, *args),
        Command::Run {
            task,
            resume,
            schedules,
            seed,
            sets,
            backend,
            out,
            mentor,
        } => match (resume, task) {
            (Some(dir), _) => super::mentor_cmd::resume(assets, dir, &backend, mentor),
            (None, Some(task)) => {
                let plan = super::mentor_cmd::Plan {
                    schedules,
                    sets,
                    out,
                    mentor,
                };
                super::mentor_cmd::run(assets, task, seed, &backend, plan)
            }
            (None, None) => anyhow::bail!("`tandem run` needs a TASK or --resume DIR"),
        },
        Command::Sweep {
            tasks,
            schedules,
            seeds,
            sets,
            backend,
            out,
            mentor,
        } => {
            let plan = super::mentor_cmd::Plan {
                schedules,
                sets,
                out,
                mentor,
            };
            super::mentor_cmd::sweep(assets, tasks, seeds, &backend, plan)
        }
        Command::Report { dir } => super::mentor_cmd::report(&dir),
        Command::Plot { dirs } => super::mentor_cmd::plot(&dirs),
        Command::Bench {
            backends,
            only,
            warmup,
            iters,
            json,
        } => super::bench_cmd::bench(assets, backends, only, warmup, iters, json),
        Command::Mentor(args) => super::mentor_cmd::mentor(assets, *args),
        Command::Serve {
            addr,
            backend,
            requests,
        } => super::mentor_cmd::serve(assets, addr, &backend, requests),
        Command::Eval {
            task,
            prompt,
            seed,
            backend,
        } => {
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
                    config: eval_config(&spec, seed, kind),
                    prompt: prompt.clone(),
                    assets,
                },
            )?;
            println!("zero-shot prompt \"{prompt}\" ({}) on {kind}", spec.name);
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
}

fn fetch(assets: &Assets, only: &[String], check: bool) -> Result<()> {
    let groups = if only.is_empty() {
        assets::ALL_GROUPS.to_vec()
    } else {
        only.iter()
            .map(|n| assets::group(n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut bad = 0;
    for g in &groups {
        if check {
            for (file, state) in assets.check(g)? {
                let path = assets.path(&file);
                match state {
                    FileState::Verified => println!("ok       {}", path.display()),
                    FileState::Missing => {
                        bad += 1;
                        println!("missing  {}", path.display())
                    }
                    FileState::Corrupt { actual } => {
                        bad += 1;
                        println!("corrupt  {} (sha256 {actual})", path.display())
                    }
                }
            }
        } else {
            let fetched = assets.ensure(g)?;
            println!(
                "{:<16} {} ({})",
                g.name,
                if fetched {
                    "fetched and verified"
                } else {
                    "verified"
                },
                g.package.spec()
            );
        }
    }
    if bad > 0 {
        anyhow::bail!(
            "{bad} asset file(s) missing or corrupt under {}: run `tandem fetch`",
            assets.root().display()
        );
    }
    Ok(())
}

fn resolve_config(assets: &Assets, a: &TuneArgs) -> Result<TuneConfig> {
    let spec = lookup(&a.task)?;
    let mut c = match &a.config {
        Some(path) => load_yaml(path)?,
        None => spec.tune_config(),
    };
    c.task = a.task.clone();
    if let Some(r) = &a.readout {
        c.readout = r.parse::<ReadoutConfig>()?;
    }
    if a.full {
        c.split.shots = None;
    }
    if let Some(k) = a.shots {
        c.split.shots = Some(k);
    }
    if let Some(l) = a.prompt_len {
        c.prompt_len = l;
    }
    if let Some(i) = &a.init {
        c.init = i.parse()?;
    }
    if let Some(s) = a.steps {
        c.gradient.steps = s;
    }
    if let Some(lr) = a.lr {
        c.gradient.lr = lr;
    }
    if let Some(b) = a.batch_size {
        c.gradient.batch_size = b;
    }
    if let Some(r) = a.record_every {
        c.gradient.record_every = r;
    }
    if let Some(m) = &a.metric {
        c.gradient.metric = m.parse::<Metric>()?;
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    if let Some(b) = &a.backend {
        c.backend = b.parse()?;
    }
    if let Some(epochs) = a.epochs {
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

fn load_yaml(path: &Path) -> Result<TuneConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
}

fn tune_cmd(assets: &Assets, args: TuneArgs) -> Result<()> {
    let config = resolve_config(assets, &args)?;
    let run = RunDir::fresh(&args.out, &format!("{}-s{}", config.task, config.seed))?;
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

/// The configuration a zero-shot evaluation scores: the task's, except that an input-head task
/// is scored by class prompts (its head is untrained).
fn eval_config(
    spec: &tandem::task::TaskSpec,
    seed: u64,
    kind: BackendKind,
) -> tandem::tune::TuneConfig {
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
