//! The alternating engine: a short loop over the named stages of [`super::stage`] — gradient →
//! sample of the trajectory → projected texts scored on selection → mentor → selection among
//! its candidates → restart — then the final stage and the test split. One [`RunState`] is
//! carried through and checkpointed after every stage.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpointer, Phase};
use super::components::{Components, RunIo};
use super::records::{RoundRecord, RunResult, Scored};
use super::schedule::{Probe, Restart, Schedule};
use super::setup::TaskSetup;
use super::stage::restart::{Choice, OptimStart};
use super::stage::{
    arms::arms,
    gradient::gradient,
    mentor::mentor,
    probe::{self, PendingProbe},
    sample::sample,
    score::score,
    screen::screen,
    select::select,
};
use super::state::RunState;
use crate::assets::Assets;
use crate::error::{Error, Result};
use crate::readout::{evaluate_valid, SplitName};
use crate::tune::TuneConfig;

/// A whole run: the task settings (as `tandem tune`) and the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Task, readout, prompt, split and gradient settings (`gradient.steps` is set per stage).
    pub task: TuneConfig,
    /// How stages alternate.
    pub schedule: Schedule,
}

impl RunConfig {
    /// Checks the task settings, the schedule against them, and that a mentor is there when
    /// the schedule asks one.
    pub fn validate(&self, has_mentor: bool) -> Result<()> {
        self.task.validate()?;
        self.schedule.validate(self.task.gradient.record_every)?;
        if self.schedule.mentor.is_some() && !has_mentor {
            return Err(Error::config(
                format!("schedule `{}`", self.schedule.name),
                "has mentor stages but no mentor was given",
            ));
        }
        Ok(())
    }
}

/// Checkpointing and resumption of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunControl {
    /// Continue from the newest checkpoint in the run folder (a fresh start when none).
    pub resume: bool,
    /// Fault injection: stop with [`crate::Error::Halted`] right after this many checkpoints.
    pub halt_after: Option<usize>,
}

/// Runs `config`: asks `io.mentor` (through `io.cassette` when given) in mentor stages, and
/// with a run folder writes a checkpoint after every stage (`io.control.resume` continues from
/// the newest).
pub fn run_schedule<B: AutodiffBackend>(
    config: &RunConfig,
    assets: &Assets,
    device: &B::Device,
    mut io: RunIo<'_>,
) -> Result<(RunResult, Vec<RoundRecord>)> {
    let start = Instant::now();
    config.validate(io.mentor.is_some())?;
    let setup = TaskSetup::<B>::new(&config.task, assets, device)?;
    if let Some(out) = io.out {
        out.write_yaml("config.yaml", config)?;
        out.write_json("split.json", &setup.manifest)?;
    }
    let c = Components::new(config, &setup)?;
    let checkpointer = Checkpointer::new(io.out.map(|o| o.path()), io.control.halt_after);
    let mut state = RunState::new(setup.model.clone(), c.fresh_optimizer(), setup.rng.clone());
    if io.control.resume {
        state = checkpointer.restore(state, device)?;
    }
    io.progress
        .set_length(config.schedule.gradient_steps() as u64);
    io.progress.set_position(state.step as u64);
    while state.position.round <= config.schedule.rounds {
        if !state.position.gradient_done && gradient(&mut state, &c, &io.progress)? {
            checkpointer.save(&mut state, Phase::GradientDone)?;
        }
        if state.position.round == config.schedule.rounds {
            break;
        }
        let record = round(&mut state, &c, &mut io, &checkpointer)?;
        state.finish_round(record);
        checkpointer.save(&mut state, Phase::RoundDone)?;
    }
    io.progress.finish_and_clear();
    finish(state, &c, &io, start)
}

/// One round after its gradient stage: the continuous prompt and sampled projected texts
/// scored, the mentor asked, its candidates judged (raw, by a probe, or not at all under the
/// reference rule), the restart chosen. A probe restored from a checkpoint carries on.
fn round<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    io: &mut RunIo<'_>,
    checkpointer: &Checkpointer<'_>,
) -> Result<RoundRecord> {
    if let (Some(pending), Some(p)) = (state.probe.take(), &c.config.schedule.probe) {
        return probe_round(state, c, io, checkpointer, p, pending, false);
    }
    let rollbacks = std::mem::take(&mut state.round_rollbacks);
    let mut record = RoundRecord::new(state.position.round, state.step, rollbacks);
    let model = state.model.clone();
    let (metrics, continuous) = state.contend(c, &model);
    record.scored.push(Scored {
        kind: "continuous".into(),
        text: String::new(),
        selection: metrics,
    });
    let sched = &c.config.schedule;
    let mut candidates = Vec::new();
    if let Some(stage) = &sched.mentor {
        let texts = sample(&state.round_points, stage.sample, &c.config.task.init);
        super::stage::mentor::show(&io.progress, c, record.round, "scoring");
        io.progress
            .set_message(format!("{} projected texts", texts.len()));
        score(state, c, &mut record, texts);
        candidates = mentor(state, c, io, stage, &mut record)?;
    }
    let choice = match (&sched.probe, sched.restart) {
        (Some(p), _) => {
            let arms = arms(state, c, p, &candidates);
            let arms = screen(state, c, p, arms, &mut record);
            let pending = probe::start(state, record, arms);
            return probe_round(state, c, io, checkpointer, p, pending, true);
        }
        (None, Restart::Reference) => first_candidate(c, state, &candidates),
        (None, _) if sched.mentor.is_some() => {
            select(state, c, &mut record, candidates, continuous).map(Choice::from)
        }
        (None, _) => None,
    };
    sched.restart.apply(state, c, choice, &mut record)?;
    Ok(record)
}

/// The round's probe, from where `pending` stands: checkpointed when it starts (`fresh`) and
/// after every rung but the last; then the restart from its winner.
fn probe_round<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    io: &RunIo<'_>,
    checkpointer: &Checkpointer<'_>,
    p: &Probe,
    mut pending: PendingProbe<B>,
    fresh: bool,
) -> Result<RoundRecord> {
    let round = pending.progress.record.round;
    super::stage::mentor::show(&io.progress, c, round, "probe");
    let rungs = p.rungs().len();
    if fresh {
        pending = checkpoint_probe(state, checkpointer, pending)?;
    }
    while pending.progress.rungs_done < rungs {
        probe::rung(state, c, p, &mut pending, &io.progress)?;
        if pending.progress.rungs_done < rungs {
            pending = checkpoint_probe(state, checkpointer, pending)?;
        }
    }
    let (mut record, choice) = probe::finish(state, c, p, pending);
    c.config
        .schedule
        .restart
        .apply(state, c, Some(choice), &mut record)?;
    Ok(record)
}

/// Checkpoints the run with the probe under way.
fn checkpoint_probe<B: AutodiffBackend>(
    state: &mut RunState<B>,
    checkpointer: &Checkpointer<'_>,
    pending: PendingProbe<B>,
) -> Result<PendingProbe<B>> {
    state.probe = Some(pending);
    let saved = checkpointer.save(state, Phase::Probe);
    let pending = state.probe.take();
    saved?;
    pending.ok_or_else(|| Error::config("probe", "lost while checkpointing"))
}

/// The reference code's rule: the first candidate with tokens, unscored, AdamW's state kept.
fn first_candidate<B: AutodiffBackend>(
    c: &Components<'_, B>,
    state: &RunState<B>,
    candidates: &[String],
) -> Option<Choice<B>> {
    candidates.iter().find_map(|text| {
        let model = c
            .space
            .text_model(text, c.config.task.prompt_len, state.model.head.clone())?;
        Some(Choice {
            model,
            optim: OptimStart::Keep,
            from: format!("first candidate: {text}"),
        })
    })
}

/// The run's end: the best prompt over the whole run on selection and test, the records and
/// plots written.
fn finish<B: AutodiffBackend>(
    mut state: RunState<B>,
    c: &Components<'_, B>,
    io: &RunIo<'_>,
    start: Instant,
) -> Result<(RunResult, Vec<RoundRecord>)> {
    let model = state.model.clone();
    state.contend(c, &model);
    let model = state.best.take().map_or(state.model, |b| b.model);
    let selection = evaluate_valid(c.readout, &model, SplitName::Selection);
    let test = evaluate_valid(c.readout, &model, SplitName::Test);
    let final_text = c
        .projector
        .project_many(&[model.prompt.rows()], 1)
        .first()
        .map(|p| c.space.decode(&p.nearest()))
        .unwrap_or_default();
    let tc = &c.config.task;
    let result = RunResult {
        task: tc.task.clone(),
        schedule: c.config.schedule.name.clone(),
        seed: tc.seed,
        gradient_steps: state.step,
        selection_evals: state.selection_evals,
        screen_evals: state.rounds.iter().map(|r| r.screen.len()).sum(),
        llm_calls: state.usage.calls,
        llm_tokens: state.usage.tokens,
        metric: tc.metric,
        selection,
        test,
        final_text,
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    if let Some(out) = io.out {
        out.write_jsonl("trajectory.jsonl", &state.trajectory)?;
        out.write_jsonl("rounds.jsonl", &state.rounds)?;
        out.write_json("results.json", &result)?;
        // Plots are a by-product: the run's records are already safe when they fail.
        let title = format!(
            "{} · {} · seed {}",
            result.task, result.schedule, result.seed
        );
        if let Err(e) =
            crate::report::plot_run(out.path(), &title, &state.trajectory, &state.rounds)
        {
            eprintln!("warning: {e}");
        }
    }
    Ok((result, state.rounds))
}
