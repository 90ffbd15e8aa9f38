//! What a run reads but never changes (its configuration and the frozen parts built for it),
//! and what it talks to (mentor, cassette, run folder, progress, control).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;

use super::run::{RunConfig, RunControl};
use super::schedule::MentorStage;
use super::setup::{AnyReadout, PromptSpace, TaskSetup};
use super::state::Score;
use crate::backbone::words_that_fit;
use crate::error::Result;
use crate::gradient::{GradientConfig, GradientStage, PromptOptimizer};
use crate::mentor::{Cassette, Mentor, MetaPromptTemplate};
use crate::prompt::Projector;
use crate::readout::{evaluate_valid, Metrics, PromptModel, Readout, SplitName};
use crate::run::RunDir;
use crate::task::Metric;

/// The read-only parts of a run.
pub struct Components<'a, B: AutodiffBackend> {
    /// The run's configuration.
    pub config: &'a RunConfig,
    /// The readout over the frozen backbone.
    pub readout: &'a AnyReadout<B>,
    /// The prompt's vocabulary.
    pub space: &'a PromptSpace<B>,
    /// Nearest-token projection.
    pub projector: &'a Projector<B>,
    /// The mentor's meta-prompt, for schedules with mentor stages.
    pub template: Option<MetaPromptTemplate>,
    /// The metric selection ranks by.
    pub metric: Metric,
    /// The word limit the mentor is asked for: the stage's, or under `fit` the words that fit
    /// the prompt's length (0 without a mentor stage).
    pub mentor_words: usize,
    round_stage: GradientConfig,
    final_stage: GradientConfig,
}

impl<'a, B: AutodiffBackend> Components<'a, B> {
    /// The components of `config` over what `setup` built.
    pub fn new(config: &'a RunConfig, setup: &'a TaskSetup<B>) -> Result<Self> {
        let sched = &config.schedule;
        let template = match &sched.mentor {
            Some(m) if m.template.ends_with(".hbs") => {
                Some(MetaPromptTemplate::from_file(Path::new(&m.template))?)
            }
            Some(m) => Some(MetaPromptTemplate::builtin(&m.template)?),
            None => None,
        };
        let stage = |steps| GradientConfig {
            steps,
            ..config.task.gradient.clone()
        };
        Ok(Self {
            config,
            readout: &setup.readout,
            space: &setup.space,
            projector: &setup.projector,
            template,
            metric: config.task.metric,
            mentor_words: sched
                .mentor
                .as_ref()
                .map_or(0, |m| mentor_words(m, config, setup)),
            round_stage: stage(sched.steps_per_round),
            final_stage: stage(sched.final_steps),
        })
    }

    /// The gradient stage of `round` (the final stage is round `rounds`).
    pub fn stage_config(&self, round: usize) -> &GradientConfig {
        if round == self.config.schedule.rounds {
            &self.final_stage
        } else {
            &self.round_stage
        }
    }

    /// A gradient stage with `config`.
    pub fn gradient_stage<'s>(
        &'s self,
        config: &'s GradientConfig,
    ) -> GradientStage<'s, B, AnyReadout<B>> {
        GradientStage::new(
            self.readout,
            self.projector,
            self.space.vocab.as_ref(),
            config,
        )
    }

    /// A fresh AdamW optimizer with the run's settings.
    pub fn fresh_optimizer(&self) -> PromptOptimizer<B> {
        self.gradient_stage(&self.round_stage).optimizer()
    }

    /// Metrics and score of `model` on the selection split.
    pub fn select_score(&self, model: &PromptModel<B>) -> (Metrics, Score) {
        let m = evaluate_valid(self.readout, model, SplitName::Selection);
        (m, Score::of(self.metric, &m))
    }

    /// [`Components::select_score`] of each of `models`, in order, in one batched pass over
    /// the selection split ([`Readout::evaluate_each_on`]).
    pub fn select_scores(&self, models: &[PromptModel<B>]) -> Vec<(Metrics, Score)> {
        let all: Vec<usize> = (0..self.readout.data().selection.len()).collect();
        let models: Vec<_> = models.iter().map(AutodiffModule::valid).collect();
        let metrics = self
            .readout
            .valid()
            .evaluate_each_on(&models, SplitName::Selection, &all);
        metrics
            .into_iter()
            .map(|m| (m, Score::of(self.metric, &m)))
            .collect()
    }
}

/// The word limit of `stage`: under `fit`, the words of the task's training and selection
/// texts (the first 200) that fit the prompt's tokens.
fn mentor_words<B: AutodiffBackend>(
    stage: &MentorStage,
    config: &RunConfig,
    setup: &TaskSetup<B>,
) -> usize {
    if !stage.fit {
        return stage.word_limit;
    }
    let splits = &setup.manifest.splits;
    let texts = (splits.train.iter().chain(&splits.selection))
        .filter_map(|&i| setup.dataset.examples.get(i))
        .take(200)
        .map(|e| e.text.as_str());
    words_that_fit(
        setup.space.vocab.as_ref(),
        texts,
        config.task.prompt_len,
        stage.word_limit,
    )
}

/// What a run talks to. `RunIo::default()` is a run without a mentor, folder or progress bar.
pub struct RunIo<'a> {
    /// The mentor of mentor stages.
    pub mentor: Option<&'a mut dyn Mentor>,
    /// Record/replay of the mentor's calls.
    pub cassette: Option<&'a mut Cassette>,
    /// The run folder (records, checkpoints, plots).
    pub out: Option<&'a RunDir>,
    /// Stage progress.
    pub progress: ProgressBar,
    /// Checkpointing and resumption.
    pub control: RunControl,
}

impl Default for RunIo<'_> {
    fn default() -> Self {
        Self {
            mentor: None,
            cassette: None,
            out: None,
            progress: ProgressBar::hidden(),
            control: RunControl::default(),
        }
    }
}
