//! What several commands share: the embedded chat model, the mentor of a run, and the backend
//! jobs of `run` and `sweep` (`RunJob`) and of `run --resume` (`ResumeJob`).

use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};

use super::workers::{Work, Workers};
use crate::cli::args::MentorOpts;
use tandem::assets::{Assets, SMOLLM2};
use tandem::backend::{BackendJob, BackendKind};
use tandem::decoder::ChatLlm;
use tandem::engine::RunConfig;
use tandem::mentor::{HttpMentor, HttpMentorConfig, LocalMentor, Mentor};
use tandem::task::{resolve, TaskSpec};
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
    /// Print what each run would spend (calibrated on this machine) and run nothing.
    pub dry_run: bool,
    /// The asset cache.
    pub assets: Assets,
    /// Runs side by side (each worker with its own mentor).
    pub jobs: usize,
}

impl BackendJob for RunJob {
    /// Each run's result and folder.
    type Output = Vec<(tandem::engine::RunResult, PathBuf)>;

    fn run<B: AutodiffBackend>(
        self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        // Every run's configuration is resolved and checked before the first one starts.
        let planned = self.plan(kind)?;
        if self.dry_run {
            let needs_mentor = planned.iter().any(|(_, c)| c.schedule.mentor.is_some());
            // A dry run times only the embedded mentor: a served one may be paid for.
            let mut mentor = match needs_mentor && self.mentor.base_url.is_none() {
                true => Some(make_mentor::<B::InnerBackend>(
                    &self.mentor,
                    &self.assets,
                    kind,
                    &device,
                )?),
                false => None,
            };
            print!(
                "{}",
                dry_run::<B>(&planned, &self.assets, &device, &mut mentor, self.jobs)?
            );
            return Ok(Vec::new());
        }
        let progress = indicatif::MultiProgress::new();
        let total = planned.len();
        let mut results: Vec<Option<(tandem::engine::RunResult, PathBuf)>> = vec![None; total];
        let mut work = Vec::new();
        for (i, (spec, config)) in planned.into_iter().enumerate() {
            let name = format!(
                "{}-{}-s{}",
                spec.name, config.schedule.name, config.task.seed
            );
            let label = format!("[{}/{total}] {name}", i + 1);
            match self.folder(&name, &label, &progress)? {
                Folder::Done(r, path) => results[i] = Some((*r, path)),
                Folder::New(dir) => work.push(Work {
                    index: i,
                    config,
                    dir,
                }),
            }
        }
        let workers = Workers::<B> {
            job: &self,
            kind,
            device: &device,
            progress: &progress,
        };
        for (i, r) in workers.run(&work)? {
            results[i] = Some(r);
        }
        Ok(results.into_iter().flatten().collect())
    }
}

/// Prints `line` above the progress bars, or to stderr where no bars are drawn (a log file).
pub(super) fn say(progress: &indicatif::MultiProgress, line: &str) {
    if progress.is_hidden() {
        eprintln!("{line}");
    } else {
        let _ = progress.println(line);
    }
}

/// Where a planned run goes: a sweep's finished run, or a folder to run in.
enum Folder {
    Done(Box<tandem::engine::RunResult>, PathBuf),
    New(tandem::run::RunDir),
}

impl RunJob {
    /// Every run's configuration: resolved, overridden and validated, before any run starts.
    fn plan(&self, kind: BackendKind) -> tandem::Result<Vec<(TaskSpec, RunConfig)>> {
        use tandem::engine::Schedule;
        let present: Vec<&str> = SECTIONS
            .iter()
            .copied()
            .filter(|section| {
                self.runs
                    .iter()
                    .any(|(_, s, _)| Schedule::resolve(s).is_ok_and(|s| has_section(&s, section)))
            })
            .collect();
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
            let sets = sets_for(&config.schedule, &self.sets, &present)?;
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
        check_families(&planned)?;
        Ok(planned)
    }

    /// The run folder of `name`: in a sweep, a finished run is reported and skipped.
    fn folder(
        &self,
        name: &str,
        label: &str,
        progress: &indicatif::MultiProgress,
    ) -> tandem::Result<Folder> {
        let dir = if self.sweep {
            let path = self.out.join(name);
            if let Ok(text) = std::fs::read_to_string(path.join("results.json")) {
                if let Ok(r) = serde_json::from_str::<tandem::engine::RunResult>(&text) {
                    say(progress, &format!("{label}: done before"));
                    return Ok(Folder::Done(Box::new(r), path));
                }
            }
            tandem::run::RunDir::create(path)?
        } else {
            tandem::run::RunDir::fresh(&self.out, name)?
        };
        say(progress, &format!("{label}: {}", dir.path().display()));
        Ok(Folder::New(dir))
    }
}

/// The optional sections of a schedule whose knobs an override can set.
const SECTIONS: &[&str] = &["mentor", "probe"];

/// The optional section an override sets a knob of (`schedule.mentor.*`, `schedule.probe.*`).
fn section_of(set: &str) -> Option<&'static str> {
    let key = set.split_once('=').map_or(set, |(k, _)| k).trim();
    let rest = key.strip_prefix("schedule.")?;
    SECTIONS
        .iter()
        .find(|s| rest == **s || rest.starts_with(&format!("{s}.")))
        .copied()
}

/// Whether `schedule` has the optional `section`.
fn has_section(schedule: &tandem::engine::Schedule, section: &str) -> bool {
    match section {
        "mentor" => schedule.mentor.is_some(),
        _ => schedule.probe.is_some(),
    }
}

/// The overrides that apply to `schedule`: a knob of the mentor stage or the probe only to
/// schedules with that section (setting one on `gradient-only` would give it a mentor stage,
/// and a comparison against it would no longer be against gradient descent alone). When no
/// schedule of the job has the section (it is not in `present`), such an override is an
/// error naming it.
fn sets_for(
    schedule: &tandem::engine::Schedule,
    sets: &[String],
    present: &[&str],
) -> tandem::Result<Vec<String>> {
    let mut kept = Vec::new();
    for set in sets {
        match section_of(set) {
            Some(section) if !has_section(schedule, section) => {
                if !present.contains(&section) {
                    return Err(tandem::Error::config(
                        format!("override `{set}`"),
                        format!(
                            "schedule `{}` has no {section} section (and no schedule of this \
                             run has one): choose a schedule with one, e.g. --schedule {}",
                            schedule.name,
                            if section == "mentor" {
                                "catalyst"
                            } else {
                                "catalyst-probe"
                            }
                        ),
                    ));
                }
            }
            _ => kept.push(set.clone()),
        }
    }
    Ok(kept)
}

/// The runs of one task whose schedules are built-ins of one family must spend the same budget
/// after the overrides; an error names the schedule that differs.
fn check_families(planned: &[(TaskSpec, RunConfig)]) -> tandem::Result<()> {
    use tandem::engine::{Schedule, BUILTIN_FAMILIES};
    for (_, members) in BUILTIN_FAMILIES {
        let mut by_task: std::collections::BTreeMap<(&str, u64), Vec<&RunConfig>> =
            Default::default();
        for (spec, c) in planned {
            if members.contains(&c.schedule.name.as_str()) {
                let key = (spec.name.as_ref(), c.task.seed);
                by_task.entry(key).or_default().push(c);
            }
        }
        for configs in by_task.values() {
            let schedules: Vec<Schedule> = configs.iter().map(|c| c.schedule.clone()).collect();
            let g = &configs[0].task.gradient;
            Schedule::check_same_budget(&schedules, g.record_every, g.keep_best)?;
        }
    }
    Ok(())
}

/// The table of `tandem run --dry-run`: each run's planned budget, mentor calls and tokens,
/// and its wall time from a calibration of its task on this machine and backend.
fn dry_run<B: AutodiffBackend>(
    planned: &[(TaskSpec, RunConfig)],
    assets: &Assets,
    device: &B::Device,
    mentor: &mut Option<Box<dyn Mentor>>,
    jobs: usize,
) -> tandem::Result<String> {
    use std::fmt::Write;
    use tandem::engine::estimate::{calibrate, Calibration, RunEstimate};
    let mut cals: Vec<(String, Calibration)> = Vec::new();
    let mut s = String::from(
        "| run | gradient steps | selection evals | LLM calls | LLM tokens (est.) | wall s (est.) |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut total = 0.0;
    for (spec, config) in planned {
        let cal = match cals.iter().find(|(t, _)| *t == spec.name) {
            Some((_, c)) => *c,
            None => {
                // Once per task, on a run of it with a mentor stage when it has one.
                let timed = planned
                    .iter()
                    .find(|(s, c)| s.name == spec.name && c.schedule.mentor.is_some())
                    .map_or(config, |(_, c)| c);
                let m = match timed.schedule.mentor {
                    Some(_) => mentor.as_mut().map(|m| m.as_mut() as &mut dyn Mentor),
                    None => None,
                };
                let c = calibrate::<B>(timed, assets, device, m)?;
                cals.push((spec.name.to_string(), c));
                c
            }
        };
        let e = RunEstimate::of(config)?;
        let secs = e.seconds(&cal);
        total += secs;
        let untimed = if e.llm_calls > 0 && cal.token_seconds.is_none() {
            " + mentor"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "| {}-{}-s{} | {} | {} | {} | {} | {secs:.0}{untimed} |",
            spec.name,
            config.schedule.name,
            config.task.seed,
            e.budget.gradient_steps,
            screened(e.budget.selection_evals, e.budget.screen_evals),
            e.llm_calls,
            e.llm_tokens
        );
    }
    for (task, c) in &cals {
        let tokens = c.token_seconds.map_or(String::new(), |t| {
            format!(", {:.0} ms a mentor token", 1e3 * t)
        });
        let _ = writeln!(
            s,
            "\ncalibration of {task}: setup {:.1} s, {:.0} ms a gradient step, {:.0} ms a selection scoring{tokens}",
            c.setup_seconds,
            1e3 * c.step_seconds,
            1e3 * c.eval_seconds
        );
    }
    let side_by_side = match jobs.min(planned.len()) {
        0 | 1 => String::new(),
        j => format!(" one after the other ({j} side by side share the machine's cores)"),
    };
    let _ = writeln!(
        s,
        "\n{} runs, about {:.0} min in all{side_by_side}; nothing was run or written",
        planned.len(),
        total / 60.0
    );
    Ok(s)
}

/// Runs `config` in `dir` with `mentor` (when its schedule has mentor stages), continuing from
/// the newest checkpoint when `resume`; its progress bar is drawn in `progress`.
pub(super) fn run_in<B: AutodiffBackend>(
    config: &tandem::engine::RunConfig,
    assets: &Assets,
    device: &B::Device,
    mentor: &mut Option<Box<dyn Mentor>>,
    dir: &tandem::run::RunDir,
    resume: bool,
    progress: &indicatif::MultiProgress,
) -> tandem::Result<tandem::engine::RunResult> {
    let bar = indicatif::ProgressBar::new(config.schedule.gradient_steps() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>22} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let bar = progress.add(bar);
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
        let progress = indicatif::MultiProgress::new();
        run_in::<B>(
            &config,
            &self.assets,
            &device,
            &mut mentor,
            &dir,
            true,
            &progress,
        )
    }
}

/// Selection evaluations, with a probe screen's scorings of a subsample beside them.
fn screened(selection: usize, screen: usize) -> String {
    if screen > 0 {
        format!("{selection} + {screen} screened")
    } else {
        format!("{selection}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::engine::Schedule;

    #[test]
    fn section_overrides_skip_schedules_without_that_section() {
        let sets: Vec<String> = [
            "schedule.rounds=2",
            "schedule.mentor.sample=2",
            "schedule.probe.steps=3",
        ]
        .map(String::from)
        .to_vec();
        let catalyst = Schedule::builtin("catalyst").unwrap();
        let gradient = Schedule::builtin("gradient-only").unwrap();
        let probed = Schedule::builtin("catalyst-probe").unwrap();
        let random = Schedule::builtin("random-probe").unwrap();
        let all = ["mentor", "probe"];
        assert_eq!(sets_for(&probed, &sets, &all).unwrap(), sets);
        assert_eq!(
            sets_for(&catalyst, &sets, &all).unwrap(),
            ["schedule.rounds=2", "schedule.mentor.sample=2"]
        );
        assert_eq!(
            sets_for(&random, &sets, &all).unwrap(),
            ["schedule.rounds=2", "schedule.probe.steps=3"]
        );
        assert_eq!(
            sets_for(&gradient, &sets, &all).unwrap(),
            ["schedule.rounds=2"]
        );
        let err = sets_for(&gradient, &sets, &["probe"]).unwrap_err();
        assert!(
            err.to_string().contains("schedule.mentor.sample=2")
                && err.to_string().contains("no mentor section"),
            "{err}"
        );
        let err = sets_for(&catalyst, &sets, &["mentor"]).unwrap_err();
        assert!(err.to_string().contains("schedule.probe.steps=3"), "{err}");
        assert_eq!(section_of("schedule.mentors=1"), None);
        assert_eq!(section_of(" schedule.probe = {}"), Some("probe"));
    }

    #[test]
    fn a_family_whose_budgets_differ_after_overrides_is_refused() {
        use tandem::engine::apply_overrides;
        let spec = tandem::task::lookup("mr").unwrap();
        let config = |name: &str, sets: &[&str]| {
            let c = RunConfig {
                task: spec.tune_config(),
                schedule: Schedule::builtin(name).unwrap(),
            };
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            (spec.clone(), apply_overrides(&c, &sets).unwrap())
        };
        let same = vec![
            config("staged", &["schedule.rounds=2"]),
            config("catalyst-probe", &["schedule.rounds=2"]),
        ];
        check_families(&same).unwrap();
        let differ = vec![
            config("staged", &[]),
            config("catalyst-probe", &["schedule.probe.rungs=1"]),
        ];
        let err = check_families(&differ).unwrap_err().to_string();
        assert!(
            err.contains("catalyst-probe") && err.contains("staged"),
            "{err}"
        );
    }
}
