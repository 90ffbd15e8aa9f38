//! `tandem mentor`: one mentor stage on a real trajectory: the meta-prompt, the mentor's reply
//! and its parsed candidates.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;

use super::jobs::load_llm;
use crate::cli::args::MentorArgs;
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::decoder::LineMask;
use tandem::engine::MentorStage;
use tandem::gradient::TrajectoryPoint;
use tandem::mentor::{
    ask, Answer, Cassette, HttpMentor, HttpMentorConfig, LocalMentor, Mentor, MetaPromptContext,
    MetaPromptTemplate, ParsedReply, ParserConfig, Protocol, Question, ReplayMode, ReplyCounts,
    Sampling, ScoredPrompt,
};
use tandem::task::resolve;
use tandem::tune::{tune, TuneConfig};

impl MentorArgs {
    /// `tandem mentor TASK [--run DIR] [options]`.
    pub fn exec(self, assets: Assets) -> Result<()> {
        let kind: BackendKind = self.backend.parse()?;
        resolve(&self.task)?;
        let trajectory = match &self.run {
            Some(dir) => Some(read_trajectory(dir)?),
            None => None,
        };
        dispatch(
            kind,
            MentorJob {
                args: self,
                assets,
                trajectory,
            },
        )?;
        Ok(())
    }
}

/// At most `n` scored prompts from a trajectory: duplicate texts keep their lowest loss, the
/// rest are spread evenly over the trajectory.
fn history_from(trajectory: &[TrajectoryPoint], n: usize) -> Vec<ScoredPrompt> {
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
    let spec = resolve(&a.task)?;
    let protocol: Protocol = a.protocol.parse()?;
    let trajectory = match &job.trajectory {
        Some(t) => t.clone(),
        None => short_stage::<B>(&job, &spec, kind, &device)?,
    };
    let history = history_from(&trajectory, a.history);
    if history.is_empty() {
        anyhow::bail!("the trajectory has no scored points (record with a selection check)");
    }
    let scored = history.len();
    let template_name = (a.template.clone()).unwrap_or_else(|| protocol.default_template().into());
    let description = spec.description.to_string();
    let Some(context) =
        protocol.context(&description, &history, a.candidates, a.word_limit, a.call)
    else {
        anyhow::bail!("no scored prompt to edit");
    };
    let mut session = Session {
        args: a,
        protocol,
        template: template(&template_name)?,
        context,
        mentor: mentor::<B>(a, &job.assets, kind, &device)?,
        cassette: match &a.cassette {
            Some(path) => Some(Cassette::open(path, a.replay.parse::<ReplayMode>()?)?),
            None => None,
        },
    };
    println!(
        "=== meta-prompt ({template_name} template, {protocol:?} protocol, {scored} scored prompts) ==="
    );
    let plain = session.ask(None, true)?;
    let stage = MentorStage {
        protocol,
        candidates: a.candidates,
        word_limit: a.word_limit,
        mask: a.mask,
        ..MentorStage::default()
    };
    if let Some(m) = stage.line_mask() {
        let masked = session.ask(Some(m), false)?;
        println!(
            "=== the mask ({} lines of at most {} words): candidates {} -> {}, off-task lines {} -> {} ===",
            m.lines, m.words, plain.candidates, masked.candidates, plain.off_task, masked.off_task
        );
    }
    Ok(())
}

/// A short gradient stage on the task, for a trajectory to show the mentor.
fn short_stage<B: AutodiffBackend>(
    job: &MentorJob,
    spec: &tandem::task::TaskSpec,
    kind: BackendKind,
    device: &B::Device,
) -> Result<Vec<TrajectoryPoint>> {
    let a = &job.args;
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
    Ok(tune::<B>(&config, &job.assets, device, None, &ProgressBar::hidden())?.1)
}

/// One meta-prompt asked of one mentor, once or several times.
struct Session<'a> {
    args: &'a MentorArgs,
    protocol: Protocol,
    template: MetaPromptTemplate,
    context: MetaPromptContext,
    mentor: Box<dyn Mentor>,
    cassette: Option<Cassette>,
}

impl Session<'_> {
    /// Asks under `mask`, prints the reply (and the meta-prompt first when `show_prompt`), and
    /// returns what the parser kept and dropped.
    fn ask(&mut self, mask: Option<LineMask>, show_prompt: bool) -> Result<ReplyCounts> {
        let a = self.args;
        let question = Question {
            protocol: self.protocol,
            template: &self.template,
            context: self.context.clone(),
            sampling: sampling(a),
            parser: ParserConfig {
                max_candidates: a.candidates,
                ..ParserConfig::default()
            },
            mask,
        };
        let answer = ask(self.mentor.as_mut(), self.cassette.as_mut(), question)?;
        if show_prompt {
            println!("{}", answer.meta_prompt);
        }
        print_answer(&answer);
        Ok(ReplyCounts::of(&answer.parsed))
    }
}

/// Prints a reply and its parse.
fn print_answer(answer: &Answer) {
    let response = &answer.response;
    let mask = match answer.request.mask {
        Some(m) => format!(", masked: {} lines of at most {} words", m.lines, m.words),
        None => String::new(),
    };
    println!(
        "=== reply of {} at {} ({:?}, {} + {} tokens, {}{mask}) ===",
        response.model_id,
        answer.request.endpoint,
        answer.source,
        response.prompt_tokens,
        response.completion_tokens,
        response.finish_reason
    );
    println!("{}", response.text);
    print_candidates(&answer.parsed);
}

/// A built-in meta-prompt template by name, or a `.hbs` file.
fn template(name: &str) -> Result<MetaPromptTemplate> {
    Ok(if name.ends_with(".hbs") {
        MetaPromptTemplate::from_file(Path::new(name))?
    } else {
        MetaPromptTemplate::builtin(name)?
    })
}

/// The sampling settings of the command line.
fn sampling(a: &MentorArgs) -> Sampling {
    Sampling {
        temperature: a.temperature,
        top_p: a.top_p,
        max_tokens: a.max_tokens,
        stop: Vec::new(),
        seed: a.seed,
    }
}

/// The HTTP mentor at `--base-url`, else the embedded one.
fn mentor<B: AutodiffBackend>(
    a: &MentorArgs,
    assets: &Assets,
    kind: BackendKind,
    device: &B::Device,
) -> Result<Box<dyn Mentor>> {
    Ok(match &a.base_url {
        Some(url) => Box::new(HttpMentor::new(HttpMentorConfig {
            base_url: url.clone(),
            model: a.model.clone(),
            api_key_env: a.api_key_env.clone(),
            ..HttpMentorConfig::default()
        })?),
        None => Box::new(LocalMentor::new(load_llm::<B::InnerBackend>(
            assets, kind, device,
        )?)),
    })
}

/// Prints the candidates, the lines dropped with why, and the counts.
fn print_candidates(parsed: &ParsedReply) {
    println!("=== candidates ===");
    for (i, c) in parsed.candidates.iter().enumerate() {
        println!("{}. {c}", i + 1);
    }
    for d in &parsed.dropped {
        println!("dropped line {}: {:?} ({:?})", d.line_no, d.text, d.reason);
    }
    let n = ReplyCounts::of(parsed);
    println!(
        "=== {} candidates; dropped {} on the task (too long, copies, duplicates, over the limit) and {} off it ===",
        n.candidates, n.on_task_dropped, n.off_task
    );
}
