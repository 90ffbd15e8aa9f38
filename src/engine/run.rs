//! The alternating engine: gradient stage → sample of the trajectory → projected texts scored on
//! the selection split → mentor → every candidate and the continuous prompt evaluated on the
//! selection split → restart from the best → … → final stage → test accuracy.

use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, CheckpointState, Phase, RngState};
use super::schedule::{Restart, Schedule};
use crate::assets::Assets;
use crate::backbone::Backbone;
use crate::data::Splits;
use crate::error::Result;
use crate::gradient::{GradientConfig, GradientStage, PromptOptimizer, TrajectoryPoint};
use crate::mentor::{
    parse_reply, Cassette, ChatRequest, ChatResponse, Dropped, Mentor, Message, MetaPromptContext,
    MetaPromptTemplate, ParserConfig, ScoredPrompt, Source,
};
use crate::prompt::{fit_to_len, Projector, PromptInit, SoftPrompt};
use crate::readout::{
    evaluate_valid, ClassPromptReadout, EncodedData, InputHeadReadout, Metrics, PromptModel,
    ReadoutConfig, SplitName,
};
use crate::run::RunDir;
use crate::task::lookup;
use crate::tune::{AnyReadout, TuneConfig};

/// A whole run: the task settings (as `tandem tune`) and the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Task, readout, prompt, split and gradient settings (`gradient.steps` is set per stage).
    pub task: TuneConfig,
    /// How stages alternate.
    pub schedule: Schedule,
}

/// One scored prompt the engine considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// `projected`, `candidate` or `continuous`.
    pub kind: String,
    /// The text (empty for the continuous prompt).
    pub text: String,
    /// Metrics on the selection split.
    pub selection: Metrics,
}

/// One mentor call, as sent and received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MentorExchange {
    /// The request.
    pub request: ChatRequest,
    /// The response.
    pub response: ChatResponse,
    /// Live or replayed from a cassette.
    pub source: Source,
    /// Candidates the parser kept.
    pub candidates: Vec<String>,
    /// Lines the parser dropped, with the reason.
    pub dropped: Vec<Dropped>,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round index (the final stage is round `rounds`).
    pub round: usize,
    /// Global step count after the round's gradient stage.
    pub step: usize,
    /// Every prompt scored in the round.
    pub scored: Vec<Scored>,
    /// The rendered meta-prompt, when the round had a mentor stage.
    pub meta_prompt: Option<String>,
    /// The mentor transcript of the round: the exact request (endpoint, model, messages, every
    /// sampling setting), the response (model id, tokens, finish reason), where it came from,
    /// and what the parser kept and dropped.
    pub mentor: Option<MentorExchange>,
    /// The mentor's raw reply.
    pub reply: Option<String>,
    /// What the next round starts from.
    pub restart_from: String,
    /// Divergences (non-finite loss or gradient) the round's gradient stage rolled back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollbacks: Vec<crate::gradient::Rollback>,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Task.
    pub task: String,
    /// Schedule name.
    pub schedule: String,
    /// Run seed.
    pub seed: u64,
    /// Gradient steps taken.
    pub gradient_steps: usize,
    /// LLM calls and tokens.
    pub llm_calls: u64,
    /// Prompt plus completion tokens of the mentor.
    pub llm_tokens: u64,
    /// Final prompt on the selection split.
    pub selection: Metrics,
    /// Final prompt on the test split.
    pub test: Metrics,
    /// The final prompt projected to tokens.
    pub final_text: String,
    /// Wall time, seconds.
    pub wall_seconds: f64,
}

fn text_model<B: AutodiffBackend>(
    backbone: &Backbone<B>,
    text: &str,
    len: usize,
    head: Option<crate::readout::Head<B>>,
) -> Option<PromptModel<B>> {
    let ids = backbone.tokenizer.encode(text);
    if ids.is_empty() {
        return None;
    }
    let rows = SoftPrompt::token_rows(&backbone.encoder, &fit_to_len(&ids, len));
    Some(PromptModel {
        prompt: SoftPrompt::from_tensor(rows),
        head,
    })
}

/// Checkpointing and resumption of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunControl {
    /// Continue from the newest checkpoint in the run folder (a fresh start when none).
    pub resume: bool,
    /// Fault injection: stop with [`crate::Error::Halted`] right after this many checkpoints.
    pub halt_after: Option<usize>,
}

/// Up to `n` projected texts spread evenly over a round's trajectory, duplicates removed; a
/// round without gradient steps offers the initial text prompt instead.
fn sample_texts(points: &[TrajectoryPoint], n: usize, init: &PromptInit) -> Vec<String> {
    if points.is_empty() {
        return match init {
            PromptInit::Text(t) => vec![t.clone()],
            _ => Vec::new(),
        };
    }
    let mut texts: Vec<String> = Vec::new();
    for i in 0..n.min(points.len()) {
        let t = &points[i * (points.len() - 1) / (n - 1).max(1)].text;
        if !texts.contains(t) {
            texts.push(t.clone());
        }
    }
    texts
}

/// Records a text prompt's selection score in the round and in the pool the mentor sees.
fn record_score(
    record: &mut RoundRecord,
    pool: &mut Vec<ScoredPrompt>,
    kind: &str,
    text: &str,
    s: Metrics,
) {
    record.scored.push(Scored {
        kind: kind.into(),
        text: text.into(),
        selection: s,
    });
    pool.push(ScoredPrompt {
        text: text.into(),
        loss: s.loss,
        accuracy: s.accuracy,
    });
}

/// Runs `config`, asking `mentor` (through `cassette` when given) in mentor stages. With a run
/// folder, a checkpoint is written after every stage; `control.resume` continues from it.
#[allow(clippy::too_many_arguments)]
pub fn run_schedule<B: AutodiffBackend>(
    config: &RunConfig,
    assets: &Assets,
    device: &B::Device,
    mentor: Option<&mut dyn Mentor>,
    mut cassette: Option<&mut Cassette>,
    out: Option<&RunDir>,
    progress: &ProgressBar,
    control: RunControl,
) -> Result<(RunResult, Vec<RoundRecord>)> {
    let start = Instant::now();
    let tc = &config.task;
    let sched = &config.schedule;
    tc.validate()?;
    sched.validate(tc.gradient.record_every)?;
    if sched.mentor.is_some() && mentor.is_none() {
        return Err(crate::Error::config(
            format!("schedule `{}`", sched.name),
            "has mentor stages but no mentor was given",
        ));
    }
    let mut mentor = mentor;
    // Calls and tokens are counted per run, whatever the mentor spent before.
    let usage_before = mentor.as_deref().map(|m| m.usage()).unwrap_or_default();
    B::seed(device, tc.seed);
    let spec = lookup(&tc.task)?;
    let dataset = spec.load(assets)?;
    let (splits, manifest) = Splits::with_manifest(&dataset, &tc.split, tc.seed)?;
    if let Some(out) = out {
        out.write_yaml("config.yaml", config)?;
        out.write_json("split.json", &manifest)?;
    }
    let backbone = Backbone::<B>::minilm(assets, device)?;
    let data = EncodedData::new(&dataset, &splits, &backbone.tokenizer);
    let mut rng = ChaCha8Rng::seed_from_u64(tc.seed);
    let prompt = SoftPrompt::init(
        &tc.init,
        tc.prompt_len,
        &backbone.encoder,
        &backbone.tokenizer,
        &mut rng,
    )?;
    let (readout, head) = match tc.readout {
        ReadoutConfig::ClassPrompt { scale } => (
            AnyReadout::Class(ClassPromptReadout::new(
                backbone.clone(),
                data,
                scale,
                tc.max_len,
                Some(&assets.embedding_cache()),
            )),
            None,
        ),
        ReadoutConfig::InputHead => {
            let r = InputHeadReadout::new(backbone.clone(), data, tc.max_len);
            let head = r.init_head(&mut rng);
            (AnyReadout::Input(r), Some(head))
        }
    };
    let projector = Projector::new(&backbone.encoder, &backbone.tokenizer, tc.gradient.metric);
    let stage_config = |steps| GradientConfig {
        steps,
        ..tc.gradient.clone()
    };
    let mut model = PromptModel { prompt, head };
    let optim_config = stage_config(sched.steps_per_round.max(1));
    let mut step = 0;
    let mut trajectory: Vec<TrajectoryPoint> = Vec::new();
    let mut rounds = Vec::new();
    let mut pool: Vec<ScoredPrompt> = Vec::new();
    // The best prompt seen on the selection split over the whole run (accuracy, then lower
    // loss): the run ends with it, as a gradient stage keeps its best checkpoint.
    let mut overall: Option<(f64, f64, PromptModel<B>)> = None;
    let consider =
        |overall: &mut Option<(f64, f64, PromptModel<B>)>, m: &Metrics, model: &PromptModel<B>| {
            if overall
                .as_ref()
                .is_none_or(|(a, l, _)| (m.accuracy, -m.loss) > (*a, -*l))
            {
                *overall = Some((m.accuracy, m.loss, model.detached()));
            }
        };
    progress.set_length(sched.gradient_steps() as u64);
    let template = match &sched.mentor {
        Some(m) if m.template.ends_with(".hbs") => {
            Some(MetaPromptTemplate::from_file(Path::new(&m.template))?)
        }
        Some(m) => Some(MetaPromptTemplate::builtin(&m.template)?),
        None => None,
    };
    let stage_cfg_round = stage_config(sched.steps_per_round);
    let stage_cfg_final = stage_config(sched.final_steps);
    let mut optim =
        GradientStage::new(&readout, &projector, &backbone.tokenizer, &optim_config).optimizer();
    // Resumption: where the newest checkpoint left off.
    let mut prior_usage = crate::mentor::Usage::default();
    let mut checkpoints = 0;
    let mut start_round = 0;
    let mut resumed_points: Option<(Vec<TrajectoryPoint>, Vec<crate::gradient::Rollback>)> = None;
    if let (true, Some(dir)) = (control.resume, out) {
        if let Some(cp) = checkpoint::latest(dir.path()) {
            let (state, m, o, best) = checkpoint::load(&cp, model, optim, device)?;
            model = m;
            optim = o;
            overall = match (state.overall, best) {
                (Some((a, l)), Some(b)) => Some((a, l, b)),
                _ => None,
            };
            step = state.step;
            trajectory = state.trajectory;
            rounds = state.rounds;
            pool = state.pool;
            rng = state.rng.restore();
            prior_usage = state.usage;
            checkpoints = state.count;
            match state.phase {
                Phase::GradientDone => {
                    start_round = state.round;
                    resumed_points = Some((state.round_points, state.round_rollbacks));
                }
                Phase::RoundDone => start_round = state.round + 1,
            }
            progress.set_position(step as u64);
        }
    }
    let mut save = |phase: Phase,
                    round: usize,
                    step: usize,
                    model: &PromptModel<B>,
                    optim: &PromptOptimizer<B>,
                    overall: &Option<(f64, f64, PromptModel<B>)>,
                    trajectory: &[TrajectoryPoint],
                    round_points: &[TrajectoryPoint],
                    round_rollbacks: &[crate::gradient::Rollback],
                    rounds: &[RoundRecord],
                    pool: &[ScoredPrompt],
                    rng: &ChaCha8Rng,
                    usage: crate::mentor::Usage|
     -> Result<()> {
        let Some(dir) = out else { return Ok(()) };
        checkpoints += 1;
        let state = CheckpointState {
            round,
            phase,
            step,
            trajectory: trajectory.to_vec(),
            round_points: round_points.to_vec(),
            round_rollbacks: round_rollbacks.to_vec(),
            rounds: rounds.to_vec(),
            pool: pool.to_vec(),
            overall: overall.as_ref().map(|(a, l, _)| (*a, *l)),
            rng: RngState::of(rng),
            usage,
            count: checkpoints,
        };
        checkpoint::save(
            dir.path(),
            &state,
            model,
            optim,
            overall.as_ref().map(|o| &o.2),
        )?;
        if control.halt_after.is_some_and(|h| checkpoints >= h) {
            return Err(crate::Error::Halted { checkpoints });
        }
        Ok(())
    };
    let usage_now = |mentor: &Option<&mut dyn Mentor>| {
        let u = mentor.as_deref().map(|m| m.usage()).unwrap_or_default();
        crate::mentor::Usage {
            calls: prior_usage.calls + u.calls - usage_before.calls,
            tokens: prior_usage.tokens + u.tokens - usage_before.tokens,
        }
    };
    for round in start_round..=sched.rounds {
        let last = round == sched.rounds;
        let cfg = if last {
            &stage_cfg_final
        } else {
            &stage_cfg_round
        };
        let mut round_points = Vec::new();
        let mut rollbacks = Vec::new();
        if let Some((points, resumed_rollbacks)) = resumed_points.take() {
            round_points = points;
            rollbacks = resumed_rollbacks;
        } else if cfg.steps > 0 {
            progress.set_prefix(format!("round {round}/{}: gradient", sched.rounds));
            let stage = GradientStage::new(&readout, &projector, &backbone.tokenizer, cfg);
            let outcome = stage.run(model, &mut optim, &mut rng, step, progress)?;
            model = outcome.model;
            // Every attempted step counts against the budget, rolled-back ones included.
            step += cfg.steps;
            for r in &outcome.rollbacks {
                progress.println(format!(
                    "step {}: {}; rolled back to step {}, learning rate ×{:.0e}",
                    r.step, r.reason, r.back_to_step, r.lr_scale
                ));
            }
            rollbacks = outcome.rollbacks;
            round_points = outcome.trajectory;
            trajectory.extend(round_points.iter().cloned());
            save(
                Phase::GradientDone,
                round,
                step,
                &model,
                &optim,
                &overall,
                &trajectory,
                &round_points,
                &rollbacks,
                &rounds,
                &pool,
                &rng,
                usage_now(&mentor),
            )?;
        }
        if last {
            break;
        }
        let mut record = RoundRecord {
            round,
            step,
            scored: Vec::new(),
            meta_prompt: None,
            mentor: None,
            reply: None,
            restart_from: "continuous".into(),
            rollbacks,
        };
        let continuous = evaluate_valid(&readout, &model, SplitName::Selection);
        consider(&mut overall, &continuous, &model);
        record.scored.push(Scored {
            kind: "continuous".into(),
            text: String::new(),
            selection: continuous,
        });
        let mut best: (f64, f64, Option<PromptModel<B>>, String) = (
            continuous.accuracy,
            -continuous.loss,
            None,
            "continuous".into(),
        );
        if let (Some(ms), Some(template)) = (&sched.mentor, &template) {
            // Sample the round's projected texts (spread, deduplicated) and score them as prompts.
            let texts = sample_texts(&round_points, ms.sample, &tc.init);
            progress.set_prefix(format!("round {round}/{}: scoring", sched.rounds));
            progress.set_message(format!("{} projected texts", texts.len()));
            for t in texts {
                if pool.iter().any(|p| p.text == t) {
                    continue;
                }
                if let Some(m) = text_model(&backbone, &t, tc.prompt_len, model.head.clone()) {
                    let s = evaluate_valid(&readout, &m, SplitName::Selection);
                    record_score(&mut record, &mut pool, "projected", &t, s);
                }
            }
            // The best `history` prompts, shown worst → best.
            let mut shown = pool.clone();
            shown.sort_by(|a, b| a.loss.total_cmp(&b.loss));
            shown.truncate(ms.history);
            let ctx = MetaPromptContext::new(spec.description, shown, ms.candidates, ms.word_limit);
            let meta = template.render(&ctx)?;
            let mut sampling = ms.sampling.clone();
            sampling.seed = ms.sampling.seed.wrapping_add(tc.seed * 1000 + round as u64);
            let m = mentor.as_deref_mut().expect("checked above");
            let request = m.request(vec![Message::user(meta.clone())], sampling);
            progress.set_prefix(format!("round {round}/{}: mentor", sched.rounds));
            progress.set_message(format!(
                "{} candidates asked of {}",
                ms.candidates, request.endpoint
            ));
            let (response, source) = match cassette.as_deref_mut() {
                Some(c) => c.call(&request, |r| m.send(r))?,
                None => (m.send(&request)?, Source::Live),
            };
            let parsed = parse_reply(
                &response.text,
                &ParserConfig {
                    max_candidates: ms.candidates,
                    ..ParserConfig::default()
                },
            );
            progress.set_prefix(format!("round {round}/{}: scoring", sched.rounds));
            progress.set_message(format!("{} candidates", parsed.candidates.len()));
            for c in parsed.candidates.clone() {
                if let Some(cm) = text_model(&backbone, &c, tc.prompt_len, model.head.clone()) {
                    let s = evaluate_valid(&readout, &cm, SplitName::Selection);
                    record_score(&mut record, &mut pool, "candidate", &c, s);
                    consider(&mut overall, &s, &cm);
                    if (s.accuracy, -s.loss) > (best.0, best.1) {
                        best = (s.accuracy, -s.loss, Some(cm), c);
                    }
                }
            }
            record.meta_prompt = Some(meta);
            record.reply = Some(response.text.clone());
            record.mentor = Some(MentorExchange {
                request,
                response,
                source,
                candidates: parsed.candidates,
                dropped: parsed.dropped,
            });
        }
        match sched.restart {
            Restart::Best => {
                if let (Some(cm), text) = (best.2.take(), best.3.clone()) {
                    model = cm;
                    record.restart_from = format!("candidate: {text}");
                    optim = GradientStage::new(
                        &readout,
                        &projector,
                        &backbone.tokenizer,
                        &optim_config,
                    )
                    .optimizer();
                }
            }
            Restart::Continue => {}
            Restart::Random => {
                let rows = SoftPrompt::init(
                    &PromptInit::RandomVocab,
                    tc.prompt_len,
                    &backbone.encoder,
                    &backbone.tokenizer,
                    &mut rng,
                )?;
                model = PromptModel {
                    prompt: rows,
                    head: model.head,
                };
                record.restart_from = "random vocabulary".into();
                if round + 1 == sched.rounds {
                    // The final stage continues from the best prompt of all rounds.
                    if let Some((_, _, kept)) = &overall {
                        model = PromptModel {
                            prompt: SoftPrompt::from_tensor(kept.prompt.rows()),
                            head: kept.head.clone(),
                        };
                        record.restart_from = "best so far".into();
                    }
                }
                optim =
                    GradientStage::new(&readout, &projector, &backbone.tokenizer, &optim_config)
                        .optimizer();
            }
        }
        rounds.push(record);
        save(
            Phase::RoundDone,
            round,
            step,
            &model,
            &optim,
            &overall,
            &trajectory,
            &[],
            &[],
            &rounds,
            &pool,
            &rng,
            usage_now(&mentor),
        )?;
    }
    progress.finish_and_clear();
    let last = evaluate_valid(&readout, &model, SplitName::Selection);
    consider(&mut overall, &last, &model);
    if let Some((_, _, kept)) = overall {
        model = kept;
    }
    let selection = evaluate_valid(&readout, &model, SplitName::Selection);
    let test = evaluate_valid(&readout, &model, SplitName::Test);
    let final_text = projector
        .project_many(&[model.prompt.rows()], 1)
        .first()
        .map(|p| backbone.tokenizer.decode(&p.nearest()))
        .unwrap_or_default();
    let usage = usage_now(&mentor);
    let result = RunResult {
        task: tc.task.clone(),
        schedule: sched.name.clone(),
        seed: tc.seed,
        gradient_steps: step,
        llm_calls: usage.calls,
        llm_tokens: usage.tokens,
        selection,
        test,
        final_text,
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    if let Some(out) = out {
        out.write_jsonl("trajectory.jsonl", &trajectory)?;
        out.write_jsonl("rounds.jsonl", &rounds)?;
        out.write_json("results.json", &result)?;
        // Plots are a by-product: the run's records are already safe when they fail.
        let title = format!(
            "{} · {} · seed {}",
            result.task, result.schedule, result.seed
        );
        if let Err(e) = crate::report::plot_run(out.path(), &title, &trajectory, &rounds) {
            eprintln!("warning: {e}");
        }
    }
    Ok((result, rounds))
}
