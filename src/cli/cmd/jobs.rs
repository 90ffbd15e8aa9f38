//! `tandem mentor` (one mentor stage on a real trajectory) and `tandem serve`.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use indicatif::ProgressBar;

use super::args::{MentorArgs, MentorOpts};
use tandem::assets::{Assets, SMOLLM2};
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::decoder::ChatLlm;
use tandem::gradient::TrajectoryPoint;
use tandem::mentor::{
    parse_reply, Cassette, ChatResponse, HttpMentor, HttpMentorConfig, LocalMentor, Mentor,
    Message, MetaPromptContext, MetaPromptTemplate, ParserConfig, ReplayMode, Sampling,
    ScoredPrompt, Source,
};
use tandem::serve::ChatServer;
use tandem::task::lookup;
use tandem::tune::{tune, TuneConfig};

/// Loads the embedded chat model on backend `B` (quantized host decoding on the CPU backend).
fn load_llm<B: Backend>(
    assets: &Assets,
    kind: BackendKind,
    device: &B::Device,
) -> tandem::Result<ChatLlm<B>> {
    assets.ensure(&SMOLLM2)?;
    let path = assets.path(&SMOLLM2.files[0]);
    eprintln!("loading {} ...", path.display());
    ChatLlm::load_with(&path, device, kind == BackendKind::Ndarray)
}

/// At most `n` scored prompts from a trajectory: duplicate texts keep their lowest loss, the
/// rest are spread evenly over the trajectory.
pub fn history_from(trajectory: &[TrajectoryPoint], n: usize) -> Vec<ScoredPrompt> {
    let mut unique: Vec<ScoredPrompt> = Vec::new();
    for p in trajectory {
        let Some(acc) = p.selection_accuracy else {
            continue;
        };
        let text = p.text.trim().to_string();
        if text.is_empty() {
            continue;
        }
        match unique.iter_mut().find(|s| s.text == text) {
            Some(s) if p.loss < s.loss => {
                s.loss = p.loss;
                s.accuracy = acc;
            }
            Some(_) => {}
            None => unique.push(ScoredPrompt {
                text,
                loss: p.loss,
                accuracy: acc,
            }),
        }
    }
    if n == 0 {
        return Vec::new();
    }
    if unique.len() <= n {
        return unique;
    }
    (0..n)
        .map(|i| unique[i * (unique.len() - 1) / (n - 1).max(1)].clone())
        .collect()
}

fn read_trajectory(run: &Path) -> Result<Vec<TrajectoryPoint>> {
    let path = run.join("trajectory.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the trajectory {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!("{} line {}: not a trajectory point", path.display(), i + 1)
            })
        })
        .collect()
}

struct MentorJob {
    args: MentorArgs,
    assets: Assets,
    trajectory: Option<Vec<TrajectoryPoint>>,
}

impl BackendJob for MentorJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, kind: BackendKind, device: B::Device) -> tandem::Result<()> {
        run_mentor::<B>(self, kind, device).map_err(|e| tandem::Error::Mentor {
            endpoint: "tandem mentor".into(),
            reason: format!("{e:#}"),
        })
    }
}

fn run_mentor<B: AutodiffBackend>(
    job: MentorJob,
    kind: BackendKind,
    device: B::Device,
) -> Result<()> {
    let a = &job.args;
    let spec = lookup(&a.task)?;
    let trajectory = match job.trajectory {
        Some(t) => t,
        None => {
            let mut config = TuneConfig {
                backend: kind,
                ..spec.tune_config()
            };
            config.gradient.steps = a.steps;
            config.gradient.record_every = 5;
            config.validate()?;
            eprintln!(
                "running a {}-step gradient stage on {} for a trajectory ...",
                a.steps, a.task
            );
            tune::<B>(&config, &job.assets, &device, None, &ProgressBar::hidden())?.1
        }
    };
    let history = history_from(&trajectory, a.history);
    if history.is_empty() {
        anyhow::bail!("the trajectory has no scored points (record with a selection check)");
    }
    let template = if a.template.ends_with(".hbs") {
        MetaPromptTemplate::from_file(Path::new(&a.template))?
    } else {
        MetaPromptTemplate::builtin(&a.template)?
    };
    let context = MetaPromptContext::new(spec.description, history, a.candidates, a.word_limit);
    let meta_prompt = template.render(&context)?;
    let sampling = Sampling {
        temperature: a.temperature,
        top_p: a.top_p,
        max_tokens: a.max_tokens,
        stop: Vec::new(),
        seed: a.seed,
    };
    let messages = vec![Message::user(meta_prompt.clone())];
    let mut mentor: Box<dyn Mentor> = match &a.base_url {
        Some(url) => Box::new(HttpMentor::new(HttpMentorConfig {
            base_url: url.clone(),
            model: a.model.clone(),
            api_key_env: a.api_key_env.clone(),
            ..HttpMentorConfig::default()
        })?),
        None => Box::new(LocalMentor::new(load_llm::<B::InnerBackend>(
            &job.assets,
            kind,
            &device,
        )?)),
    };
    let request = mentor.request(messages, sampling);
    let (response, source): (ChatResponse, Source) = match &a.cassette {
        Some(path) => {
            let mode: ReplayMode = a.replay.parse()?;
            Cassette::open(path, mode)?.call(&request, |r| mentor.send(r))?
        }
        None => (mentor.send(&request)?, Source::Live),
    };
    let parsed = parse_reply(
        &response.text,
        &ParserConfig {
            max_candidates: a.candidates,
            ..ParserConfig::default()
        },
    );
    println!(
        "=== meta-prompt ({} template, {} scored prompts) ===",
        a.template,
        context.history.len()
    );
    println!("{meta_prompt}");
    println!(
        "=== reply of {} at {} ({:?}, {} + {} tokens, {}) ===",
        response.model_id,
        request.endpoint,
        source,
        response.prompt_tokens,
        response.completion_tokens,
        response.finish_reason
    );
    println!("{}", response.text);
    println!("=== candidates ===");
    for (i, c) in parsed.candidates.iter().enumerate() {
        println!("{}. {c}", i + 1);
    }
    for d in &parsed.dropped {
        println!("dropped line {}: {:?} ({:?})", d.line_no, d.text, d.reason);
    }
    Ok(())
}

/// `tandem mentor`.
pub fn mentor(assets: Assets, args: MentorArgs) -> Result<()> {
    let kind: BackendKind = args.backend.parse()?;
    lookup(&args.task)?;
    let trajectory = match &args.run {
        Some(dir) => Some(read_trajectory(dir)?),
        None => None,
    };
    dispatch(
        kind,
        MentorJob {
            args,
            assets,
            trajectory,
        },
    )?;
    Ok(())
}

struct ServeJob {
    addr: String,
    assets: Assets,
    requests: Option<usize>,
}

impl BackendJob for ServeJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, kind: BackendKind, device: B::Device) -> tandem::Result<()> {
        let server = ChatServer::bind(&self.addr)?;
        let llm = load_llm::<B::InnerBackend>(&self.assets, kind, &device)?;
        let addr = server.addr().map_or(self.addr.clone(), |a| a.to_string());
        eprintln!(
            "serving {} at http://{addr}/v1 (POST /v1/chat/completions, GET /v1/models)",
            llm.name()
        );
        server.serve(&llm, self.requests)
    }
}

/// `tandem serve`.
pub fn serve(assets: Assets, addr: String, backend: &str, requests: Option<usize>) -> Result<()> {
    let kind: BackendKind = backend.parse()?;
    dispatch(
        kind,
        ServeJob {
            addr,
            assets,
            requests,
        },
    )?;
    Ok(())
}

/// What `run` and `sweep` share: schedules, overrides, output folder and mentor.
pub struct Plan {
    /// Schedule names or YAML files.
    pub schedules: Vec<String>,
    /// `KEY=VALUE` overrides applied to every run's resolved configuration.
    pub sets: Vec<String>,
    /// Output folder.
    pub out: std::path::PathBuf,
    /// The mentor.
    pub mentor: MentorOpts,
}

/// The mentor a run asks: an OpenAI-compatible endpoint when `--base-url` is given, else the
/// embedded model; with the run's call and token budgets.
fn make_mentor<B: Backend>(
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

struct RunJob {
    /// (task, schedule, seed) of every run.
    runs: Vec<(String, String, u64)>,
    /// `KEY=VALUE` overrides applied to every run's resolved configuration.
    sets: Vec<String>,
    out: std::path::PathBuf,
    mentor: MentorOpts,
    /// Sweep mode: fixed folder names, finished runs skipped.
    sweep: bool,
    assets: Assets,
}

impl BackendJob for RunJob {
    /// Each run's result and folder.
    type Output = Vec<(tandem::engine::RunResult, std::path::PathBuf)>;

    fn run<B: AutodiffBackend>(
        self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        use tandem::engine::{RunConfig, RunResult, Schedule};
        // Every run's configuration is resolved and checked before the first one starts.
        let mut planned = Vec::new();
        for (task, schedule, seed) in &self.runs {
            let spec = lookup(task)?;
            let config = RunConfig {
                task: TuneConfig {
                    seed: *seed,
                    backend: kind,
                    ..spec.tune_config()
                },
                schedule: Schedule::resolve(schedule)?,
            };
            let config = tandem::engine::apply_overrides(&config, &self.sets)?;
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

/// `tandem run`.
pub fn run(assets: Assets, task: String, seed: u64, backend: &str, plan: Plan) -> Result<()> {
    let kind: BackendKind = backend.parse()?;
    let runs = plan
        .schedules
        .into_iter()
        .map(|s| (task.clone(), s, seed))
        .collect();
    let results = dispatch(
        kind,
        RunJob {
            runs,
            sets: plan.sets,
            out: plan.out,
            mentor: plan.mentor,
            sweep: false,
            assets,
        },
    )?;
    for (r, dir) in &results {
        print_summary(r, dir);
    }
    println!();
    println!("| schedule | gradient steps | LLM calls | LLM tokens | selection acc | test acc | wall s |");
    println!("|---|---|---|---|---|---|---|");
    for (r, _) in &results {
        println!(
            "| {} | {} | {} | {} | {:.4} | {:.4} | {:.1} |",
            r.schedule,
            r.gradient_steps,
            r.llm_calls,
            r.llm_tokens,
            r.selection.accuracy,
            r.test.accuracy,
            r.wall_seconds
        );
    }
    Ok(())
}

/// `tandem sweep`.
pub fn sweep(
    assets: Assets,
    tasks: Vec<String>,
    seeds: u64,
    backend: &str,
    plan: Plan,
) -> Result<()> {
    let kind: BackendKind = backend.parse()?;
    let out = plan.out;
    let schedules = if plan.schedules.is_empty() {
        tandem::engine::BUILTIN_SCHEDULES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        plan.schedules
    };
    let mut runs = Vec::new();
    for t in &tasks {
        for seed in 0..seeds {
            for s in &schedules {
                runs.push((t.clone(), s.clone(), seed));
            }
        }
    }
    dispatch(
        kind,
        RunJob {
            runs,
            sets: plan.sets,
            out: out.clone(),
            mentor: plan.mentor,
            sweep: true,
            assets,
        },
    )?;
    report(&out)
}

/// `tandem report`: mean ± std over seeds per task and schedule, Markdown on stdout and
/// `report.csv` in the folder.
pub fn report(dir: &Path) -> Result<()> {
    use std::collections::BTreeMap;
    use tandem::engine::RunResult;
    let mut groups: BTreeMap<(String, String), Vec<RunResult>> = BTreeMap::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the sweep folder {}", dir.display()))?;
    for e in entries.flatten() {
        let path = e.path().join("results.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let r: RunResult = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run result", path.display()))?;
        groups
            .entry((r.task.clone(), r.schedule.clone()))
            .or_default()
            .push(r);
    }
    if groups.is_empty() {
        anyhow::bail!(
            "{} holds no finished run (no */results.json)",
            dir.display()
        );
    }
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        (mean, var.sqrt())
    };
    let mut csv = String::from(
        "task,schedule,seeds,test_acc_mean,test_acc_std,selection_acc_mean,gradient_steps,llm_calls_mean,llm_tokens_mean,wall_s_mean\n",
    );
    println!("| task | schedule | seeds | test accuracy, % | selection accuracy, % | gradient steps | LLM calls | LLM tokens | wall s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((task, schedule), rs) in &groups {
        let test: Vec<f64> = rs.iter().map(|r| 100.0 * r.test.accuracy).collect();
        let sel: Vec<f64> = rs.iter().map(|r| 100.0 * r.selection.accuracy).collect();
        let (tm, ts) = stats(&test);
        let (sm, _) = stats(&sel);
        let mean = |f: &dyn Fn(&RunResult) -> f64| rs.iter().map(f).sum::<f64>() / rs.len() as f64;
        let calls = mean(&|r| r.llm_calls as f64);
        let tokens = mean(&|r| r.llm_tokens as f64);
        let wall = mean(&|r| r.wall_seconds);
        let steps = rs[0].gradient_steps;
        println!(
            "| {task} | {schedule} | {} | {tm:.2} ± {ts:.2} | {sm:.2} | {steps} | {calls:.1} | {tokens:.0} | {wall:.1} |",
            rs.len()
        );
        csv.push_str(&format!(
            "{task},{schedule},{},{tm:.4},{ts:.4},{sm:.4},{steps},{calls:.2},{tokens:.1},{wall:.2}\n",
            rs.len()
        ));
    }
    let path = dir.join("report.csv");
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
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
    let (r, _) = tandem::engine::run_schedule::<B>(
        config,
        assets,
        device,
        m,
        None,
        Some(dir),
        &bar,
        control,
    )?;
    Ok(r)
}

struct ResumeJob {
    dir: std::path::PathBuf,
    assets: Assets,
    mentor: MentorOpts,
}

impl BackendJob for ResumeJob {
    type Output = tandem::engine::RunResult;

    fn run<B: AutodiffBackend>(
        self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        use tandem::engine::RunConfig;
        let path = self.dir.join("config.yaml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| tandem::Error::io("reading", &path, e))?;
        let config: RunConfig = serde_yaml::from_str(&text)
            .map_err(|e| tandem::Error::config(path.display().to_string(), e.to_string()))?;
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

/// `tandem run --resume DIR`.
pub fn resume(
    assets: Assets,
    dir: std::path::PathBuf,
    backend: &str,
    mentor: MentorOpts,
) -> Result<()> {
    let kind: BackendKind = backend.parse()?;
    let r = dispatch(
        kind,
        ResumeJob {
            dir: dir.clone(),
            assets,
            mentor,
        },
    )?;
    print_summary(&r, &dir);
    Ok(())
}

/// Reads a JSON Lines record file of a run folder; errors name the file and line.
fn read_jsonl<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a valid record", path.display(), i + 1))
        })
        .collect()
}

/// Prints a finished run's one-screen summary, from its folder's records.
fn print_summary(result: &tandem::engine::RunResult, dir: &std::path::Path) {
    let rounds = read_jsonl(&dir.join("rounds.jsonl")).unwrap_or_default();
    print!("{}", tandem::report::run_summary(dir, result, &rounds));
}

/// `tandem plot DIR...`.
pub fn plot(dirs: &[std::path::PathBuf]) -> Result<()> {
    for dir in dirs {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (is {} a finished run folder?)",
                path.display(),
                dir.display()
            )
        })?;
        let result: tandem::engine::RunResult = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run result", path.display()))?;
        let trajectory: Vec<tandem::gradient::TrajectoryPoint> =
            read_jsonl(&dir.join("trajectory.jsonl"))?;
        let rounds: Vec<tandem::engine::RoundRecord> = read_jsonl(&dir.join("rounds.jsonl"))?;
        let title = format!(
            "{} · {} · seed {}",
            result.task, result.schedule, result.seed
        );
        tandem::report::plot_run(dir, &title, &trajectory, &rounds)?;
        print!("{}", tandem::report::run_summary(dir, &result, &rounds));
    }
    Ok(())
}
