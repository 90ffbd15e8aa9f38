//! What a run records: every prompt scored per round, the mentor's transcript, the outcome.

use serde::{Deserialize, Serialize};

use crate::mentor::{ChatRequest, ChatResponse, Dropped, Source};
use crate::readout::Metrics;

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
    /// The word limit the mentor was asked for (the stage's, or the length that fits the
    /// prompt); absent in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_limit: Option<usize>,
}

/// A proposal scored by a probe's screen, as it started, on the round's subsample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenRecord {
    /// Where it came from (as [`ArmRecord::origin`]).
    pub origin: String,
    /// Its starting text.
    pub text: String,
    /// Metrics on the subsample of the selection split.
    pub metrics: Metrics,
    /// Whether it entered the probe.
    pub kept: bool,
}

/// One arm of a probe: where it started and how it scored after each rung it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmRecord {
    /// Where it came from: `continuous`, `mentor`, `random`, `random-fill` (a slot the mentor
    /// left empty), `projected` or `restart`.
    pub origin: String,
    /// Its starting text (empty for the continuous prompt and its copies).
    pub text: String,
    /// Tokens of the starting text in the backbone's vocabulary before it was fitted to the
    /// prompt's length: more than the length means cut, fewer means cycled (text proposals
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// Metrics on the selection split after each rung it ran.
    pub rungs: Vec<Metrics>,
}

/// What a round's probe did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The arms, the continuous prompt first.
    pub arms: Vec<ArmRecord>,
    /// Index of the winning arm (what the next round starts from).
    pub winner: usize,
    /// The best arm of the last rung, when the margin rule kept the continuous prompt instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_margin: Option<usize>,
    /// Gradient steps the probe spent.
    pub gradient_steps: usize,
    /// Scorings of the selection split the probe spent.
    pub selection_evals: usize,
}

/// How far a probe under way got, as a checkpoint inside it stores it (each arm's prompt and
/// optimizer state lie beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeProgress {
    /// The round's record so far (the scored prompts, the mentor's reply).
    pub record: RoundRecord,
    /// Each arm: origin, text and metrics after each rung it ran.
    pub arms: Vec<ArmRecord>,
    /// Arms still in the running, best first.
    pub alive: Vec<usize>,
    /// Rungs finished.
    pub rungs_done: usize,
    /// Gradient steps and selection evaluations of the run when the probe started.
    pub before: (usize, usize),
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
    /// The round's probe, for schedules with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeRecord>,
    /// The round's further mentor calls, after the one in `mentor` (stages with `calls` > 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub further: Vec<MentorExchange>,
    /// The proposals the probe's screen scored, in the order they were drawn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screen: Vec<ScreenRecord>,
}

impl RoundRecord {
    /// A round with nothing scored yet, continuing from the continuous prompt.
    pub fn new(round: usize, step: usize, rollbacks: Vec<crate::gradient::Rollback>) -> Self {
        Self {
            round,
            step,
            scored: Vec::new(),
            meta_prompt: None,
            mentor: None,
            reply: None,
            restart_from: "continuous".into(),
            rollbacks,
            probe: None,
            further: Vec::new(),
            screen: Vec::new(),
        }
    }

    /// Every mentor exchange of the round, in the order they were asked.
    pub fn exchanges(&self) -> impl Iterator<Item = &MentorExchange> {
        self.mentor.iter().chain(&self.further)
    }
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
    /// Gradient steps taken, probes included.
    pub gradient_steps: usize,
    /// Scorings of the selection split that could choose a prompt (`keep_best` checkpoints,
    /// the continuous prompt each round, candidates and probe arms, the final pick); the
    /// projected texts scored only to show the mentor are not among them.
    #[serde(default)]
    pub selection_evals: usize,
    /// Scorings of a subsample of the selection split by probe screens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub screen_evals: usize,
    /// LLM calls and tokens.
    pub llm_calls: u64,
    /// Prompt plus completion tokens of the mentor.
    pub llm_tokens: u64,
    /// The metric that chose the final prompt.
    #[serde(default)]
    pub metric: crate::task::Metric,
    /// Final prompt on the selection split.
    pub selection: Metrics,
    /// Final prompt on the test split.
    pub test: Metrics,
    /// The final prompt projected to tokens.
    pub final_text: String,
    /// Wall time, seconds.
    pub wall_seconds: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
