//! `tandem mentor` (one mentor stage on a real trajectory) and `tandem serve`.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use indicatif::ProgressBar;

use super::args::MentorArgs;
use tandem::assets::{Assets, SMOLLM2};
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::decoder::ChatLlm;
use tandem::gradient::TrajectoryPoint;
use tandem::mentor::{
    parse_reply, Cassette, ChatResponse, HttpMentor, HttpMentorConfig, LocalMentor, Mentor,
    Message, MetaPromptContext, MetaPromptTemplate, ParserConfig, ReplayMode, Sampling,
    ScoredPrompt, Source,
};
use tandem::prompt::PromptInit;
use tandem::serve::ChatServer;
use tandem::task::builtin_task;
use tandem::tune::{tune, TuneConfig};

/// Loads the embedded chat model on backend `B` (quantized host decoding on the CPU backend).
fn load_llm<B: Backend>(
    assets: &Assets,
    kind: BackendKind,
    device: &B::Device,
) -> Result<ChatLlm<B>> {
    assets.ensure(&SMOLLM2)?;
    let path = assets.path(&SMOLLM2.files[0]);
    eprintln!("loading {} ...", path.display());
    Ok(ChatLlm::load_with(
        &path,
        device,
        kind == BackendKind::Ndarray,
    )?)
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
    let spec = builtin_task(&a.task)?;
    let trajectory = match job.trajectory {
        Some(t) => t,
        None => {
            let mut config = TuneConfig {
                task: a.task.clone(),
                init: PromptInit::Text(spec.zero_shot_prompt.into()),
                backend: kind,
                ..TuneConfig::default()
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
    builtin_task(&args.task)?;
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
        let llm = load_llm::<B::InnerBackend>(&self.assets, kind, &device).map_err(|e| {
            tandem::Error::Mentor {
                endpoint: self.addr.clone(),
                reason: format!("{e:#}"),
            }
        })?;
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

struct RunJob {
    task: String,
    schedules: Vec<String>,
    seed: u64,
    out: std::path::PathBuf,
    assets: Assets,
}

impl BackendJob for RunJob {
    type Output = Vec<tandem::engine::RunResult>;

    fn run<B: AutodiffBackend>(
        self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        use tandem::engine::{run_schedule, RunConfig, Schedule};
        let spec = builtin_task(&self.task)?;
        let schedules = self
            .schedules
            .iter()
            .map(|s| Schedule::builtin(s))
            .collect::<tandem::Result<Vec<_>>>()?;
        let needs_mentor = schedules.iter().any(|s| s.mentor.is_some());
        let mut mentor = if needs_mentor {
            let llm = load_llm::<B::InnerBackend>(&self.assets, kind, &device).map_err(|e| {
                tandem::Error::Mentor {
                    endpoint: "embedded".into(),
                    reason: format!("{e:#}"),
                }
            })?;
            Some(LocalMentor::new(llm))
        } else {
            None
        };
        let mut results = Vec::new();
        for schedule in schedules {
            let config = RunConfig {
                task: TuneConfig {
                    task: self.task.clone(),
                    init: PromptInit::Text(spec.zero_shot_prompt.into()),
                    seed: self.seed,
                    backend: kind,
                    ..TuneConfig::default()
                },
                schedule,
            };
            let dir = tandem::run::RunDir::fresh(
                &self.out,
                &format!("{}-{}-s{}", self.task, config.schedule.name, self.seed),
            )?;
            eprintln!("{}: {}", config.schedule.name, dir.path().display());
            let bar = indicatif::ProgressBar::new(config.schedule.gradient_steps() as u64);
            let m: Option<&mut dyn Mentor> = if config.schedule.mentor.is_some() {
                mentor.as_mut().map(|m| m as &mut dyn Mentor)
            } else {
                None
            };
            let (r, _) =
                run_schedule::<B>(&config, &self.assets, &device, m, None, Some(&dir), &bar)?;
            results.push(r);
        }
        Ok(results)
    }
}

/// `tandem run`.
pub fn run(
    assets: Assets,
    task: String,
    schedules: Vec<String>,
    seed: u64,
    backend: &str,
    out: std::path::PathBuf,
) -> Result<()> {
    let kind: BackendKind = backend.parse()?;
    let results = dispatch(
        kind,
        RunJob {
            task,
            schedules,
            seed,
            out,
            assets,
        },
    )?;
    println!("| schedule | gradient steps | LLM calls | LLM tokens | selection acc | test acc | wall s |");
    println!("|---|---|---|---|---|---|---|");
    for r in &results {
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
