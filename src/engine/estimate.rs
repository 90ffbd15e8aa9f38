//! What a run will spend, known before it starts (`tandem run --dry-run`): the planned gradient
//! steps and selection evaluations of its schedule, its mentor calls and an estimate of their
//! tokens, and a wall time from a short calibration on this machine — a few gradient steps, a
//! scoring of the selection split and, for the embedded mentor, a few decoded tokens. Nothing is
//! written and no paid endpoint is called.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;

use super::components::Components;
use super::run::RunConfig;
use super::schedule::Budget;
use super::setup::TaskSetup;
use crate::assets::Assets;
use crate::error::Result;
use crate::mentor::{Mentor, Message, MetaPromptContext, MetaPromptTemplate, ScoredPrompt};
use crate::readout::{evaluate_valid, Readout, SplitName};

/// The spending of one run, planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunEstimate {
    /// Gradient steps and selection evaluations.
    pub budget: Budget,
    /// Mentor calls (one per round with a mentor stage).
    pub llm_calls: usize,
    /// Prompt tokens (the meta-prompt rendered with a full history, at about four characters
    /// a token) plus the most completion tokens, over all calls.
    pub llm_tokens: usize,
    /// Most completion tokens over all calls.
    pub completion_tokens: usize,
}

impl RunEstimate {
    /// The estimate of `config` (its template rendered with placeholder prompts).
    pub fn of(config: &RunConfig) -> Result<Self> {
        let s = &config.schedule;
        let g = &config.task.gradient;
        let (calls, prompt, completion) = match &s.mentor {
            None => (0, 0, 0),
            Some(m) => {
                let template = if m.template.ends_with(".hbs") {
                    MetaPromptTemplate::from_file(std::path::Path::new(&m.template))?
                } else {
                    MetaPromptTemplate::builtin(&m.template)?
                };
                let words = vec!["word"; config.task.prompt_len].join(" ");
                let shown = (0..m.history)
                    .map(|i| ScoredPrompt {
                        text: words.clone(),
                        loss: 0.5 + i as f64 / 100.0,
                        accuracy: 0.5,
                    })
                    .collect();
                let ctx = MetaPromptContext::new(
                    config.task.description.clone(),
                    shown,
                    m.candidates,
                    m.word_limit,
                );
                let chars = template.render(&ctx)?.chars().count();
                (
                    s.rounds * m.calls,
                    chars.div_ceil(4),
                    m.sampling.max_tokens as usize,
                )
            }
        };
        Ok(Self {
            budget: s.budget(g.record_every, g.keep_best),
            llm_calls: calls,
            llm_tokens: calls * (prompt + completion),
            completion_tokens: calls * completion,
        })
    }

    /// The wall time under `cal` (mentor decoding left out when it was not calibrated; a
    /// screen's scoring of a subsample counted as a whole scoring, an upper bound).
    pub fn seconds(&self, cal: &Calibration) -> f64 {
        self.budget.gradient_steps as f64 * cal.step_seconds
            + (self.budget.selection_evals + self.budget.screen_evals) as f64 * cal.eval_seconds
            + cal.token_seconds.unwrap_or(0.0) * self.completion_tokens as f64
            + cal.setup_seconds
    }
}

/// Costs measured on this machine and backend for one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Loading the data, the backbone and the readout.
    pub setup_seconds: f64,
    /// One gradient step (median of three).
    pub step_seconds: f64,
    /// One scoring of the selection split.
    pub eval_seconds: f64,
    /// One decoded mentor token (prompt processing included, spread over the tokens); `None`
    /// when the mentor was not timed.
    pub token_seconds: Option<f64>,
}

/// Times `config`'s task: setup, three gradient steps, one selection scoring; and, when a
/// `mentor` is given, 16 decoded tokens of a meta-prompt-sized request.
pub fn calibrate<B: AutodiffBackend>(
    config: &RunConfig,
    assets: &Assets,
    device: &B::Device,
    mentor: Option<&mut dyn Mentor>,
) -> Result<Calibration> {
    let start = Instant::now();
    let setup = TaskSetup::<B>::new(&config.task, assets, device)?;
    let c = Components::new(config, &setup)?;
    let setup_seconds = start.elapsed().as_secs_f64();
    let stage = c.gradient_stage(&config.task.gradient);
    let mut optim = stage.optimizer();
    let mut model = setup.model.clone();
    let mut rng = setup.rng.clone();
    let mut order: Vec<usize> = (0..setup.readout.data().train.len()).collect();
    order.shuffle(&mut rng);
    let batch: Vec<usize> = order
        .into_iter()
        .take(config.task.gradient.batch_size)
        .collect();
    let mut steps = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        model = stage
            .step(model, &mut optim, &batch, config.task.gradient.lr, i + 1)?
            .0;
        steps.push(t.elapsed().as_secs_f64());
    }
    steps.sort_by(f64::total_cmp);
    // The first scoring also builds what a readout keeps per split (a decoder's input
    // states): a one-time cost, counted with the setup.
    let mut evals = [0.0; 2];
    for e in &mut evals {
        let t = Instant::now();
        evaluate_valid(c.readout, &model, SplitName::Selection);
        *e = t.elapsed().as_secs_f64();
    }
    let eval_seconds = evals[1];
    let setup_seconds = setup_seconds + (evals[0] - evals[1]).max(0.0);
    let token_seconds = match (mentor, &config.schedule.mentor) {
        (Some(m), Some(stage)) => Some(time_tokens(m, config, stage)?),
        _ => None,
    };
    Ok(Calibration {
        setup_seconds,
        step_seconds: steps[1],
        eval_seconds,
        token_seconds,
    })
}

/// Seconds per completion token of a 16-token reply to a meta-prompt-sized request.
fn time_tokens(
    m: &mut dyn Mentor,
    config: &RunConfig,
    stage: &super::schedule::MentorStage,
) -> Result<f64> {
    let e = RunEstimate::of(config)?;
    let per_call = (e.llm_tokens - e.completion_tokens) / e.llm_calls.max(1);
    // About 11 tokens a sentence.
    let prompt = "Write a short prompt for a text classifier. ".repeat(per_call / 11 + 1);
    let mut sampling = stage.sampling.clone();
    sampling.max_tokens = 16;
    let request = m.request(vec![Message::user(prompt)], sampling);
    let t = Instant::now();
    let reply = m.send(&request)?;
    Ok(t.elapsed().as_secs_f64() / reply.completion_tokens.max(1) as f64)
}
