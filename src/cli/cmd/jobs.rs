//! What several commands share: the embedded chat model, the mentor of a run, and the backend
//! jobs of `run` and `sweep` (`RunJob`) and of `run --resume` (`ResumeJob`).

use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::cli::args::MentorOpts;
use tandem::assets::{Assets, SMOLLM2};
use tandem::backend::{BackendJob, BackendKind};
use tandem::decoder::ChatLlm;
use tandem::mentor::{HttpMentor, HttpMentorConfig, LocalMentor, Mentor};
use tandem::task::resolve;
use tandem::tune::TuneConfig;

/// Loads the embedded chat model on backend `B` (quantized host decoding on the CPU backend).
pub fn load_llm<B: Backend>(
    assets: &Assets,
    kind: BackendKind,
    device: &B::Device,
) -> tandem::Result<ChatLlm<B>> {
    assets.ensure(&SMOLLM2)?;
    let path = assets.path(&SMOLLM2.files[0]);
    eprintln!("loading {} ...", path.display());
    ChatLlm::load_with(&path, device, kind.is_cpu())
}

/// The mentor a run asks: an OpenAI-compatible endpoint when `--base-url` is given, else the
/// embedded model; with the run's call and token budgets.
pub fn make_mentor<B: Backend>(
    opts: &MentorOpts,
    assets: &Assets,
    kind: BackendKind,
    device: &B::Device,
) -> tandem::Result<Box<dyn Mentor>> {
    Ok(match &opts.base_url {
        Some(url) => Box::new(HttpMentor::new(HttpMentorConfig {
            base_url: url.clone(),
            model: opts.model.clone(),
            api_key_env: opts.api_key_env.clone(),
            max_retries: opts.max_retries,
            max_calls: opts.max_calls,
            max_tokens: opts.max_tokens,
            ..HttpMentorConfig::default()
        })?),
        None => Box::new(
            LocalMentor::new(load_llm::<B>(assets, kind, device)?)
                .with_budgets(opts.max_calls, opts.max_tokens),
        ),
    })
}

/// Runs of `tandem run` (every schedule on one task) or `tandem sweep` (tasks × seeds ×
/// schedules), one after the other on one backend, sharing one mentor.
pub struct RunJob {
    /// (task, schedule, seed) of every run.
    pub runs: Vec<(String, String, u64)>,
    /// `KEY=VALUE` overrides applied to every run's resolved configuration.
    pub sets: Vec<String>,
    /// Folder under which the run folders are created.
    pub out: PathBuf,
    /// The mentor.
    pub mentor: MentorOpts,
    /// Sweep mode: fixed folder names, finished runs skipped.
    pub sweep: bool,
    /// The asset cache.
    pub assets: Assets,
}

impl BackendJob for RunJob {
    /// Each run's result and folder.
    type Output = Vec<(tandem::engine::RunResult, PathBuf)>;

    fn run<B: AutodiffBackend>(
        self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        use tandem::engine::{RunConfig, RunResult, Schedule};
        // Every run's configuration is resolved and checked before the first one starts.
        let any_mentor = self.runs.iter().any(|(_, s, _)| {
            tandem::engine::Schedule::resolve(s).is_ok_and(|s| s.mentor.is_some())
        });
        let mut planned = Vec::new();
        for (task, schedule, seed) in &self.runs {
            let spec = resolve(task)?;
            let config = RunConfig {
                task: TuneConfig {
                    seed: *seed,
                    backend: kind,
                    ..spec.tune_config()
                },
                schedule: Schedule::resolve(schedule)?,
            };
            let sets = sets_for(&config.schedule, &self.sets, any_mentor)?;
            let config = tandem::engine::apply_overrides(&config, &sets)?;
            if config.task.backend != kind {
                return Err(tandem::Error::config(
                    "task.backend",
                    format!(
                        "is {} but the run is on {kind}: choose the backend with --backend",
                        config.task.backend
                    ),
                ));
            }
            config.task.validate()?;
            config
                .schedule
                .validate(config.task.gradient.record_every)?;
            planned.push((spec, config));
        }
        let needs_mentor = planned.iter().any(|(_, c)| c.schedule.mentor.is_some());
        let mut mentor = if needs_mentor {
            Some(make_mentor::<B::InnerBackend>(
                &self.mentor,
                &self.assets,
                kind,
                &device,
            )?)
        } else {
            None
        };
        let mut results = Vec::new();
        for (i, (spec, config)) in planned.into_iter().enumerate() {
            let name = format!(
                "{}-{}-s{}",
                spec.name, config.schedule.name, config.task.seed
            );
            let dir = if self.sweep {
                let path = self.out.join(&name);
                if let Ok(text) = std::fs::read_to_string(path.join("results.json")) {
                    if let Ok(r) = serde_json::from_str::<RunResult>(&text) {
                        eprintln!("[{}/{}] {name}: done before", i + 1, self.runs.len());
                        results.push((r, path));
                        continue;
                    }
                }
                tandem::run::RunDir::create(path)?
            } else {
                tandem::run::RunDir::fresh(&self.out, &name)?
            };
            eprintln!(
                "[{}/{}] {name}: {}",
                i + 1,
                self.runs.len(),
                dir.path().display()
            );
            // Sweeps continue a run a crash interrupted; `run` starts fresh.
            let r = run_in::<B>(
                &config,
                &self.assets,
                &device,
                &mut mentor,
                &dir,
                self.sweep,
            )?;
            results.push((r, dir.path().to_path_buf()));
        }
        Ok(results)
    }
}

/// Whether an override sets a knob of the mentor stage.
fn is_mentor_knob(set: &str) -> bool {
    let key = set.split_once('=').map_or(set, |(k, _)| k).trim();
    key == "schedule.mentor" || key.starts_with("schedule.mentor.")
}

/// The overrides that apply to `schedule`: `schedule.mentor.*` ones only to schedules with a
/// mentor stage (setting one on `gradient-only` would give it a mentor stage, and a
/// comparison against it would no longer be against gradient descent alone). When no schedule
/// of the job has a mentor stage (`any_mentor` false), such an override is an error naming it.
fn sets_for(
    schedule: &tandem::engine::Schedule,
    sets: &[String],
    any_mentor: bool,
) -> tandem::Result<Vec<String>> {
    if schedule.mentor.is_some() {
        return Ok(sets.to_vec());
    }
    if let Some(set) = sets.iter().find(|s| is_mentor_knob(s)) {
        if !any_mentor {
            return Err(tandem::Error::config(
                format!("override `{set}`"),
                format!(
                    "schedule `{}` has no mentor stage (and no schedule of this run has one): \
                     choose a schedule with one, e.g. --schedule catalyst",
                    schedule.name
                ),
            ));
        }
    }
    Ok(sets
        .iter()
        .filter(|s| !is_mentor_knob(s))
        .cloned()
        .collect())
}

/// Runs `config` in `dir` with the embedded mentor (when its schedule has mentor stages),
/// continuing from the newest checkpoint when `resume`.
fn run_in<B: AutodiffBackend>(
    config: &tandem::engine::RunConfig,
    assets: &Assets,
    device: &B::Device,
    mentor: &mut Option<Box<dyn Mentor>>,
    dir: &tandem::run::RunDir,
    resume: bool,
) -> tandem::Result<tandem::engine::RunResult> {
    let bar = indicatif::ProgressBar::new(config.schedule.gradient_steps() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>22} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Ticks through mentor stages too, where no gradient step advances the bar.
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    let m = match config.schedule.mentor {
        Some(_) => mentor.as_mut().map(|m| m.as_mut() as &mut dyn Mentor),
        None => None,
    };
    let control = tandem::engine::RunControl {
        resume,
        halt_after: None,
    };
    let io = tandem::engine::RunIo {
        mentor: m,
        out: Some(dir),
        progress: bar,
        control,
        ..Default::default()
    };
    let (r, _) = tandem::engine::run_schedule::<B>(config, assets, device, io)?;
    Ok(r)
}

/// `tandem run --resume DIR`: the run in `dir` continued from its newest checkpoint.
pub struct ResumeJob {
    /// The run folder.
    pub dir: PathBuf,
    /// Its configuration, as written to its `config.yaml`.
    pub config: tandem::engine::RunConfig,
    /// The asset cache.
    pub assets: Assets,
    /// The mentor.
    pub mentor: MentorOpts,
}

impl ResumeJob {
    /// The run in `dir`, its configuration read from its `config.yaml`.
    pub fn open(dir: PathBuf, assets: Assets, mentor: MentorOpts) -> tandem::Result<Self> {
        let path = dir.join("config.yaml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| tandem::Error::io("reading", &path, e))?;
        let config = serde_yaml::from_str(&text)
            .map_err(|e| tandem::Error::config(path.display().to_string(), e.to_string()))?;
        Ok(Self {
            dir,
            config,
            assets,
            mentor,
        })
    }
}

impl BackendJob for ResumeJob {
    type Output = tandem::engine::RunResult;

    fn run<B: AutodiffBackend>(
        self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        let config = self.config;
        if config.task.backend != kind {
            return Err(tandem::Error::config(
                "task.backend",
                format!(
                    "is {} but the run would resume on {kind}",
                    config.task.backend
                ),
            ));
        }
        let mut mentor = match config.schedule.mentor {
            Some(_) => Some(make_mentor::<B::InnerBackend>(
                &self.mentor,
                &self.assets,
                kind,
                &device,
            )?),
            None => None,
        };
        let dir = tandem::run::RunDir::create(&self.dir)?;
        run_in::<B>(&config, &self.assets, &device, &mut mentor, &dir, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::engine::Schedule;

    #[test]
    fn mentor_overrides_skip_schedules_without_a_mentor_stage() {
        let sets: Vec<String> = ["schedule.rounds=2", "schedule.mentor.sample=2"]
            .map(String::from)
            .to_vec();
        let catalyst = Schedule::builtin("catalyst").unwrap();
        let gradient = Schedule::builtin("gradient-only").unwrap();
        assert_eq!(sets_for(&catalyst, &sets, true).unwrap(), sets);
        assert_eq!(
            sets_for(&gradient, &sets, true).unwrap(),
            ["schedule.rounds=2"]
        );
        let err = sets_for(&gradient, &sets, false).unwrap_err();
        assert!(
            err.to_string().contains("schedule.mentor.sample=2")
                && err.to_string().contains("no mentor stage"),
            "{err}"
        );
    }
}
