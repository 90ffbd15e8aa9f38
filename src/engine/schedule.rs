//! Schedules: how gradient stages, mentor stages and selection alternate. A schedule is data: it
//! serializes to YAML and back unchanged, so a run's resolved schedule is part of its
//! `config.yaml`.

use serde::{Deserialize, Serialize};

use crate::decoder::LineMask;
use crate::error::{Error, Result};
use crate::mentor::{Protocol, Sampling};

/// What the next round starts from after a round's selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// The best on the selection split among the continuous prompt and every candidate.
    Best,
    /// Always the continuous prompt (candidates are only scored).
    Continue,
    /// A fresh random-vocabulary prompt every round (the random-restarts baseline); the best
    /// prompt seen on selection is kept for the final stage.
    Random,
    /// The winner of the round's probe (its prompt after the probe's steps, with its own
    /// optimizer state): proposals judged as starting points, not as raw texts.
    Probe,
    /// The first parsed candidate, unconditionally and unscored, keeping the optimizer's state:
    /// what the reference code (LLM-catalyst's `trainer_base.py`) does.
    Reference,
}

/// Where a probe's proposal arms come from (the continuous prompt is always an arm too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArmSource {
    /// The mentor's candidates; slots it leaves empty (fewer candidates parsed than asked) get
    /// random-vocabulary prompts, recorded as `random-fill`, so the budget stays exact.
    Mentor,
    /// Random vocabulary tokens: the control for "any restart helps".
    Random,
    /// The round's projected trajectory texts, spread over the round (no LLM).
    Projected,
    /// Copies of the continuous prompt with a fresh optimizer: the control for the staging
    /// itself (the same steps, evaluations and optimizer restarts, no new starting point).
    Restart,
}

/// A probe: every arm (the continuous prompt with its optimizer state, and `proposals` arms
/// from `arms`) takes `steps` gradient steps from its own start, all on the same batches, and is
/// scored on the selection split; successive halving keeps the best `keep` of the arms and
/// gives them `1/keep` times more steps, for `rungs` rungs. The round restarts from the winner;
/// a proposal must beat the continuous arm by `margin` (in the task's metric) to win.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Probe {
    /// Gradient steps of every arm in the first rung.
    pub steps: usize,
    /// Fraction of the arms kept after each rung (0 < keep ≤ 1).
    pub keep: f64,
    /// Rungs of successive halving (at least 1).
    pub rungs: usize,
    /// Where the proposal arms come from.
    pub arms: ArmSource,
    /// Proposal arms per round, besides the continuous prompt.
    pub proposals: usize,
    /// How much a proposal must beat the continuous arm by, in the task's metric (0: any
    /// strict win, ties broken by the lower loss).
    pub margin: f64,
    /// A cheap screen before the probe: more proposals than `proposals` are scored as they
    /// start on a subsample of the selection split, and the best `proposals` enter the probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<Screen>,
}

/// The screen of a probe's proposals: `candidates` proposals (the source's first ones, random
/// vocabulary where it has fewer) scored untrained on `examples` selection examples drawn
/// for the round; every scoring is counted ([`Budget::screen_evals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Screen {
    /// Proposals screened per round (at least the probe's `proposals`, at most 32).
    pub candidates: usize,
    /// Selection examples each is scored on (the whole split when it has fewer).
    pub examples: usize,
}

impl Default for Screen {
    /// 16 proposals on 100 examples, as the built-in screen family.
    fn default() -> Self {
        Self {
            candidates: 16,
            examples: 100,
        }
    }
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            steps: 1,
            keep: 0.5,
            rungs: 2,
            arms: ArmSource::Mentor,
            proposals: 3,
            margin: 0.0,
            screen: None,
        }
    }
}

/// One rung of a probe: how many arms run, and how many steps each takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Arms in the rung.
    pub arms: usize,
    /// Gradient steps of each arm.
    pub steps: usize,
}

impl Probe {
    /// The rungs: `1 + proposals` arms first, then the best `⌈keep·n⌉` (at least 1), each
    /// rung's steps `steps / keep^r` rounded.
    pub fn rungs(&self) -> Vec<Rung> {
        let mut arms = 1 + self.proposals;
        let mut out = Vec::with_capacity(self.rungs);
        for r in 0..self.rungs {
            let steps = (self.steps as f64 / self.keep.powi(r as i32)).round() as usize;
            out.push(Rung { arms, steps });
            arms = ((arms as f64 * self.keep).ceil() as usize).clamp(1, arms);
        }
        out
    }

    /// Proposal arms built per round: the screened ones, or the probe's `proposals`.
    pub fn drawn(&self) -> usize {
        self.screen.map_or(self.proposals, |s| s.candidates)
    }

    /// Gradient steps one probe spends.
    pub fn gradient_steps(&self) -> usize {
        self.rungs().iter().map(|r| r.arms * r.steps).sum()
    }

    /// Scorings of the selection split one probe spends (every arm after every rung it runs).
    pub fn selection_evals(&self) -> usize {
        self.rungs().iter().map(|r| r.arms).sum()
    }

    fn validate(&self, field: impl Fn(&str) -> String) -> Result<()> {
        if self.rungs == 0 {
            return Err(Error::config(field("probe.rungs"), "must be at least 1"));
        }
        if !(self.keep > 0.0 && self.keep <= 1.0) {
            return Err(Error::config(
                field("probe.keep"),
                format!("{} is not in (0, 1]", self.keep),
            ));
        }
        if self.proposals == 0 {
            return Err(Error::config(
                field("probe.proposals"),
                "must be at least 1 (the continuous prompt needs a rival)",
            ));
        }
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(Error::config(
                field("probe.margin"),
                format!("{} must be a number ≥ 0", self.margin),
            ));
        }
        if let Some(screen) = self.screen {
            if !(self.proposals..=MAX_CANDIDATES).contains(&screen.candidates) {
                return Err(Error::config(
                    field("probe.screen.candidates"),
                    format!(
                        "{} is not between the probe's {} proposals and {MAX_CANDIDATES}",
                        screen.candidates, self.proposals
                    ),
                ));
            }
            if screen.examples == 0 {
                return Err(Error::config(
                    field("probe.screen.examples"),
                    "must be at least 1",
                ));
            }
        }
        if self.gradient_steps() > 100_000 {
            return Err(Error::config(
                field("probe"),
                format!("{} gradient steps per probe", self.gradient_steps()),
            ));
        }
        Ok(())
    }
}

/// One mentor stage: what the mentor is shown and asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MentorStage {
    /// How the mentor is asked: a chat instruction, or a list it continues.
    #[serde(skip_serializing_if = "Protocol::is_instruction")]
    pub protocol: Protocol,
    /// Meta-prompt template: a built-in name or a `.hbs` path.
    pub template: String,
    /// Candidates asked for.
    pub candidates: usize,
    /// Most scored prompts shown (the best ones, sorted worst → best).
    pub history: usize,
    /// Trajectory points sampled per round (spread over the round, duplicates removed).
    pub sample: usize,
    /// Word limit per candidate.
    pub word_limit: usize,
    /// Sampling settings of the mentor call.
    pub sampling: Sampling,
    /// Show the mentor the scored prompts with their scores shuffled among them (a control:
    /// does the mentor use the scores?).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shuffle_scores: bool,
    /// Decode under the logit mask (embedded mentor only): one line per candidate, at most
    /// `word_limit` words each, no markup or control tokens.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mask: bool,
    /// Mentor calls per round, each with its own seed (and temperature, see `temperatures`);
    /// their candidates are pooled, later copies of earlier ones dropped as duplicates. Under
    /// the edit protocol the calls cycle through the edit operators.
    #[serde(skip_serializing_if = "is_one")]
    pub calls: usize,
    /// Sampling temperatures the calls cycle through (empty: every call at
    /// `sampling.temperature`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub temperatures: Vec<f32>,
    /// Ask for a length that fits the prompt: the word limit shown (and masked) becomes the
    /// words that fit the prompt's L tokens, at the backbone tokenizer's tokens per word on
    /// the task's training texts (never more than `word_limit`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fit: bool,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Most candidates a round may ask for or screen.
pub const MAX_CANDIDATES: usize = 32;

impl Default for MentorStage {
    fn default() -> Self {
        Self {
            protocol: Protocol::Instruction,
            template: "catalyst".into(),
            candidates: 3,
            history: 8,
            sample: 4,
            word_limit: 12,
            sampling: Sampling {
                temperature: 0.7,
                top_p: 0.95,
                max_tokens: 160,
                stop: Vec::new(),
                seed: 0,
            },
            shuffle_scores: false,
            mask: false,
            calls: 1,
            temperatures: Vec::new(),
            fit: false,
        }
    }
}

impl MentorStage {
    /// The logit mask of a masked stage: one line per candidate at most `word_limit` words
    /// long; under the list protocol the model writes a score line after each prompt, so it
    /// gets two lines per candidate but the last.
    pub fn line_mask(&self) -> Option<LineMask> {
        self.line_mask_of(self.word_limit)
    }

    /// [`Self::line_mask`] with the word limit actually asked for (see `fit`).
    pub fn line_mask_of(&self, words: usize) -> Option<LineMask> {
        let candidates = self.candidates as u32;
        let lines = match self.protocol {
            Protocol::Instruction | Protocol::Edit => candidates,
            Protocol::List => (2 * candidates).saturating_sub(1),
        };
        self.mask.then_some(LineMask {
            lines: lines.max(1),
            words: words as u32,
        })
    }

    /// The sampling of call `call` of `round` in a run of `seed`: the stage's seed moved by the
    /// run's seed and the round (the first call's, as with one call a round) and by the call,
    /// the temperature cycled through `temperatures`.
    pub fn call_sampling(&self, seed: u64, round: usize, call: usize) -> Sampling {
        let mut sampling = self.sampling.clone();
        sampling.seed = self
            .sampling
            .seed
            .wrapping_add(seed * 1000 + round as u64)
            .wrapping_add((call as u64) << 32);
        if !self.temperatures.is_empty() {
            sampling.temperature = self.temperatures[call % self.temperatures.len()];
        }
        sampling
    }
}

/// A schedule: `rounds` × (gradient stage of `steps_per_round` → optional mentor stage →
/// selection and restart), then a final gradient stage of `final_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Name, as in reports.
    pub name: String,
    /// Alternation rounds.
    pub rounds: usize,
    /// Gradient steps per round.
    pub steps_per_round: usize,
    /// Gradient steps of the final stage.
    pub final_steps: usize,
    /// The mentor stage of every round; none for gradient-only schedules.
    pub mentor: Option<MentorStage>,
    /// What each round restarts from.
    pub restart: Restart,
    /// The probe of every round, which judges proposals as starting points (`restart: probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// What a schedule spends: gradient steps and scorings of the selection split that can choose
/// a prompt (planned; a run records what it spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Gradient steps, probes included.
    pub gradient_steps: usize,
    /// Most scorings of the selection split that can choose a prompt: `keep_best` checkpoints,
    /// the continuous prompt each round, candidates and probe arms, the final pick.
    pub selection_evals: usize,
    /// Scorings of a subsample of the selection split by probe screens.
    pub screen_evals: usize,
}

/// The names of the built-in schedules.
pub const BUILTIN_SCHEDULES: &[&str] = &[
    "gradient-only",
    "random-restarts",
    "mentor-only",
    "catalyst",
    "catalyst-no-trajectory",
    "reference-compat",
    "staged",
    "random-probe",
    "projected-probe",
    "catalyst-probe",
    "catalyst-probe-no-trajectory",
    "shuffled-scores",
    "list-probe",
    "catalyst-probe-masked",
    "list-probe-masked",
    "edit-probe",
    "random-screen-probe",
    "catalyst-screen-probe",
    "edit-screen-probe",
];

/// Families of built-in schedules compared with each other: within one, every schedule spends
/// the same gradient steps and (for the probe family) the same selection evaluations.
pub const BUILTIN_FAMILIES: &[(&str, &[&str])] = &[
    (
        "probe",
        &[
            "staged",
            "random-probe",
            "projected-probe",
            "catalyst-probe",
            "catalyst-probe-no-trajectory",
            "shuffled-scores",
            "list-probe",
            "catalyst-probe-masked",
            "list-probe-masked",
            "edit-probe",
        ],
    ),
    (
        "screen",
        &[
            "random-screen-probe",
            "catalyst-screen-probe",
            "edit-screen-probe",
        ],
    ),
];

impl Schedule {
    /// A built-in schedule, declared with the [`crate::schedule!`] DSL. All spend 100 gradient
    /// steps, so comparisons are fair.
    pub fn builtin(name: &str) -> Result<Self> {
        Ok(match name {
            "gradient-only" => crate::schedule! {
                name: "gradient-only",
                rounds: 1,
                steps_per_round: 100,
                restart: continue,
            },
            "random-restarts" => crate::schedule! {
                name: "random-restarts",
                rounds: 4,
                steps_per_round: 20,
                final_steps: 20,
                restart: random,
            },
            // The mentor proposes from the initial prompt alone; gradient descent runs at the end.
            "mentor-only" => crate::schedule! {
                name: "mentor-only",
                rounds: 4,
                steps_per_round: 0,
                final_steps: 100,
                restart: best,
                mentor: { template: "catalyst" },
            },
            "catalyst" => crate::schedule! {
                name: "catalyst",
                rounds: 4,
                steps_per_round: 20,
                final_steps: 20,
                restart: best,
                mentor: { template: "catalyst", candidates: 3, history: 8, sample: 4, word_limit: 12 },
            },
            "catalyst-no-trajectory" => crate::schedule! {
                name: "catalyst-no-trajectory",
                rounds: 4,
                steps_per_round: 20,
                final_steps: 20,
                restart: best,
                mentor: { template: "no-trajectory" },
            },
            // The reference code's rule: a mentor call after each of 3 stages (its epochs 0-2),
            // the first parsed candidate taken unconditionally and unscored, AdamW's state kept.
            // Not reproduced: its learning rate runs on across restarts (it barely decays
            // there); here each stage restarts the schedule.
            "reference-compat" => crate::schedule! {
                name: "reference-compat",
                rounds: 3,
                steps_per_round: 25,
                final_steps: 25,
                restart: reference,
                mentor: { template: "catalyst" },
            },
            other => return Self::probe_family(other),
        })
    }

    /// The probe family: 3 rounds of 20 steps, each followed by a probe of 4 arms (1 step, then
    /// the best 2 for 2 more), then 16 final steps: 100 gradient steps in all, like the others.
    /// One declaration; the members differ only in where the proposal arms come from, so their
    /// budgets are equal by construction. The screen family adds a screen of 16 proposals on
    /// 100 selection examples before each probe.
    fn probe_family(name: &str) -> Result<Self> {
        let (arms, mentor) = Self::proposal_source(name)?;
        let mut s = crate::schedule! {
            name: "probe",
            rounds: 3,
            steps_per_round: 20,
            final_steps: 16,
            restart: probe,
            probe: { steps: 1, keep: 0.5, rungs: 2, arms: random, proposals: 3 },
        };
        s.name = name.into();
        s.mentor = mentor;
        if let Some(p) = s.probe.as_mut() {
            p.arms = arms;
            p.screen = name.contains("-screen-").then(Screen::default);
        }
        Ok(s)
    }

    /// Where a probe-family member's proposals come from, and its mentor stage.
    fn proposal_source(name: &str) -> Result<(ArmSource, Option<MentorStage>)> {
        let mentor = |protocol: Protocol, template: &str, shuffle_scores: bool| {
            Some(MentorStage {
                protocol,
                template: template.into(),
                shuffle_scores,
                ..MentorStage::default()
            })
        };
        let masked = |m: Option<MentorStage>| m.map(|m| MentorStage { mask: true, ..m });
        // Several masked calls of a length that fits the prompt, at two temperatures.
        let many = |m: Option<MentorStage>, calls: usize, candidates: usize| {
            masked(m).map(|m| MentorStage {
                calls,
                candidates,
                fit: true,
                temperatures: vec![0.7, 1.0],
                ..m
            })
        };
        let instruction = Protocol::Instruction;
        let edit = || mentor(Protocol::Edit, "edit", false);
        Ok(match name {
            "staged" => (ArmSource::Restart, None),
            "random-probe" | "random-screen-probe" => (ArmSource::Random, None),
            "projected-probe" => (ArmSource::Projected, None),
            "catalyst-probe" => (ArmSource::Mentor, mentor(instruction, "catalyst", false)),
            "catalyst-probe-no-trajectory" => (
                ArmSource::Mentor,
                mentor(instruction, "no-trajectory", false),
            ),
            "shuffled-scores" => (ArmSource::Mentor, mentor(instruction, "catalyst", true)),
            "list-probe" => (ArmSource::Mentor, mentor(Protocol::List, "list", false)),
            "catalyst-probe-masked" => (
                ArmSource::Mentor,
                masked(mentor(instruction, "catalyst", false)),
            ),
            "list-probe-masked" => (
                ArmSource::Mentor,
                masked(mentor(Protocol::List, "list", false)),
            ),
            // One call per operator: paraphrase the best, mutate it, cross the best two over.
            "edit-probe" => (ArmSource::Mentor, many(edit(), 3, 1)),
            "catalyst-screen-probe" => (
                ArmSource::Mentor,
                many(mentor(instruction, "catalyst", false), 4, 4),
            ),
            "edit-screen-probe" => (ArmSource::Mentor, many(edit(), 8, 2)),
            other => {
                return Err(Error::config(
                    format!("schedule `{other}`"),
                    format!(
                        "unknown; built-in schedules: {}",
                        BUILTIN_SCHEDULES.join(", ")
                    ),
                ))
            }
        })
    }

    /// A built-in name, or a YAML file holding a schedule (every field, as in a run's
    /// `config.yaml`); errors name the file and the offending key.
    pub fn resolve(name_or_file: &str) -> Result<Self> {
        if name_or_file.ends_with(".yaml") || name_or_file.ends_with(".yml") {
            let path = std::path::Path::new(name_or_file);
            let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
            return serde_yaml::from_str(&text).map_err(|e| {
                Error::config(format!("schedule file {name_or_file}"), e.to_string())
            });
        }
        Self::builtin(name_or_file)
    }

    /// Gradient steps the schedule spends in all, probes included.
    pub fn gradient_steps(&self) -> usize {
        let probe = self.probe.as_ref().map_or(0, Probe::gradient_steps);
        self.rounds * (self.steps_per_round + probe) + self.final_steps
    }

    /// The planned budget under the task's gradient settings: `keep_best` scores the selection
    /// split at every trajectory point (every `record_every` steps and after a stage's last).
    pub fn budget(&self, record_every: usize, keep_best: bool) -> Budget {
        let points = |steps: usize| match (keep_best, steps) {
            (false, _) | (_, 0) => 0,
            _ => steps.div_ceil(record_every.max(1)),
        };
        let per_round = 1 + match (&self.probe, &self.mentor, self.restart) {
            (Some(p), _, _) => p.selection_evals(),
            (None, _, Restart::Reference) | (None, None, _) => 0,
            (None, Some(m), _) => m.candidates * m.calls,
        };
        Budget {
            gradient_steps: self.gradient_steps(),
            selection_evals: self.rounds * (points(self.steps_per_round) + per_round)
                + points(self.final_steps)
                + 1,
            screen_evals: self.rounds
                * self
                    .probe
                    .as_ref()
                    .and_then(|p| p.screen)
                    .map_or(0, |s| s.candidates),
        }
    }

    /// Checks that `schedules` spend the same budget; an error names the first that differs.
    pub fn check_same_budget(
        schedules: &[Schedule],
        record_every: usize,
        keep_best: bool,
    ) -> Result<()> {
        let Some(first) = schedules.first() else {
            return Ok(());
        };
        let want = first.budget(record_every, keep_best);
        for s in &schedules[1..] {
            let got = s.budget(record_every, keep_best);
            if got != want {
                return Err(Error::config(
                    format!("schedule `{}`", s.name),
                    format!(
                        "spends {} gradient steps, {} selection evaluations and {} screen evaluations; `{}` spends {}, {} and {}",
                        got.gradient_steps, got.selection_evals, got.screen_evals, first.name,
                        want.gradient_steps, want.selection_evals, want.screen_evals
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the schedule against the trajectory the gradient stage records (`record_every`).
    pub fn validate(&self, record_every: usize) -> Result<()> {
        let field = |f: &str| format!("schedule `{}`: {f}", self.name);
        if self.rounds == 0 {
            return Err(Error::config(field("rounds"), "must be at least 1"));
        }
        if self.gradient_steps() == 0 {
            return Err(Error::config(
                field("steps"),
                "the schedule takes no gradient step",
            ));
        }
        if let Some(m) = &self.mentor {
            if m.candidates == 0 {
                return Err(Error::config(
                    field("mentor.candidates"),
                    "must be at least 1",
                ));
            }
            if m.history == 0 || m.sample == 0 {
                return Err(Error::config(
                    field("mentor.history/sample"),
                    "must be at least 1",
                ));
            }
            if m.calls == 0 || m.calls * m.candidates > MAX_CANDIDATES {
                return Err(Error::config(
                    field("mentor.calls"),
                    format!(
                        "{} calls of {} candidates: between 1 call and {MAX_CANDIDATES} candidates a round",
                        m.calls, m.candidates
                    ),
                ));
            }
            if let Some(t) = m
                .temperatures
                .iter()
                .find(|t| !(t.is_finite() && **t >= 0.0))
            {
                return Err(Error::config(
                    field("mentor.temperatures"),
                    format!("{t} is not a temperature ≥ 0"),
                ));
            }
            if m.mask && m.word_limit == 0 {
                return Err(Error::config(
                    field("mentor.word_limit"),
                    "must be at least 1 under the mask (a line of no words is never written)",
                ));
            }
            let points = self.steps_per_round / record_every.max(1);
            if self.steps_per_round > 0 && m.sample > points {
                return Err(Error::config(
                    field("mentor.sample"),
                    format!(
                        "{} points asked of a round that records {points} ({} steps, one point every {record_every})",
                        m.sample, self.steps_per_round
                    ),
                ));
            }
        } else if self.restart == Restart::Best && self.rounds > 1 {
            return Err(Error::config(
                field("restart"),
                "`best` needs a mentor stage",
            ));
        }
        self.validate_probe(&field)
    }

    /// The probe and the restart rules that go with it.
    fn validate_probe(&self, field: &impl Fn(&str) -> String) -> Result<()> {
        match (&self.probe, self.restart) {
            (Some(p), Restart::Probe) => {
                p.validate(field)?;
                if p.arms == ArmSource::Mentor && self.mentor.is_none() {
                    return Err(Error::config(
                        field("probe.arms"),
                        "`mentor` arms need a mentor stage",
                    ));
                }
                Ok(())
            }
            (Some(_), _) => Err(Error::config(
                field("restart"),
                "a schedule with a probe restarts from its winner: `restart: probe`",
            )),
            (None, Restart::Probe) => Err(Error::config(
                field("restart"),
                "`probe` needs a `probe` section",
            )),
            (None, Restart::Reference) if self.mentor.is_none() => Err(Error::config(
                field("restart"),
                "`reference` needs a mentor stage",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `keep_best` no trajectory point is scored: `catalyst` (4 rounds of 20 steps, 3
    /// candidates, 20 final steps) scores the continuous prompt and 3 candidates per round and
    /// the final pick, 17 in all; with it, a point every 5 steps adds 4 per stage, 37 in all.
    /// A mentor stage needs a history and a sample; `best` needs a mentor after the first round.
    #[test]
    fn budgets_without_keep_best_and_the_remaining_validation_bounds() {
        let s = Schedule::builtin("catalyst").unwrap();
        assert_eq!(s.budget(5, false).selection_evals, 17);
        assert_eq!(s.budget(5, true).selection_evals, 37);
        // Two calls a round score up to twice the candidates: 4 × 3 more.
        let mut two = s.clone();
        two.mentor.as_mut().unwrap().calls = 2;
        assert_eq!(two.budget(5, false).selection_evals, 29);
        for (history, sample) in [(0, 2), (8, 0)] {
            let mut t = s.clone();
            let m = t.mentor.as_mut().unwrap();
            (m.history, m.sample) = (history, sample);
            let e = t.validate(5).unwrap_err().to_string();
            assert!(e.contains("mentor.history/sample"), "{e}");
        }
        let mut plain = Schedule::builtin("gradient-only").unwrap();
        plain.restart = Restart::Best;
        plain.rounds = 1;
        plain.validate(5).unwrap();
        for rounds in [2, 3] {
            plain.rounds = rounds;
            let e = plain.validate(5).unwrap_err().to_string();
            assert!(e.contains("`best` needs a mentor stage"), "{e}");
        }
    }

    /// The mask asks for one line per candidate, two per candidate but the last under the list
    /// protocol (each prompt is followed by its score line), never none; a masked stage needs a
    /// word limit.
    #[test]
    fn the_mask_follows_the_protocol_and_needs_a_word_limit() {
        let stage = |protocol, candidates, mask| MentorStage {
            protocol,
            candidates,
            word_limit: 7,
            mask,
            ..MentorStage::default()
        };
        let lines = |p, c| stage(p, c, true).line_mask().map(|m| (m.lines, m.words));
        assert_eq!(lines(Protocol::Instruction, 3), Some((3, 7)));
        assert_eq!(lines(Protocol::List, 3), Some((5, 7)));
        assert_eq!(lines(Protocol::List, 1), Some((1, 7)));
        assert_eq!(stage(Protocol::List, 3, false).line_mask(), None);
        let mut s = Schedule::builtin("list-probe-masked").unwrap();
        s.validate(5).unwrap();
        s.mentor.as_mut().unwrap().word_limit = 0;
        let e = s.validate(5).unwrap_err().to_string();
        assert!(e.contains("mentor.word_limit") && e.contains("mask"), "{e}");
    }

    #[test]
    fn builtins_are_valid_fair_and_round_trip_through_yaml() {
        for name in BUILTIN_SCHEDULES {
            let s = Schedule::builtin(name).unwrap();
            s.validate(5).unwrap();
            assert_eq!(s.gradient_steps(), 100, "{name}");
            assert_eq!(s.budget(5, true).gradient_steps, 100, "{name}");
            let yaml = serde_yaml::to_string(&s).unwrap();
            assert_eq!(serde_yaml::from_str::<Schedule>(&yaml).unwrap(), s);
        }
        let e = Schedule::builtin("catalist").unwrap_err().to_string();
        assert!(e.contains("catalist") && e.contains("catalyst"), "{e}");
    }

    #[test]
    fn built_in_families_spend_the_same_budget_and_a_differing_one_is_named() {
        for (family, names) in BUILTIN_FAMILIES {
            let schedules: Vec<Schedule> = names
                .iter()
                .map(|n| Schedule::builtin(n).unwrap())
                .collect();
            for (every, keep_best) in [(5, true), (1, true), (5, false)] {
                Schedule::check_same_budget(&schedules, every, keep_best)
                    .unwrap_or_else(|e| panic!("{family}: {e}"));
            }
        }
        // The probe family's planned figures, by hand: 3 rounds × (4 checkpoints + the
        // continuous prompt + 4 + 2 arms) + 4 final checkpoints + the final pick.
        let p = Schedule::builtin("catalyst-probe").unwrap();
        assert_eq!(
            p.budget(5, true),
            Budget {
                gradient_steps: 100,
                selection_evals: 38,
                screen_evals: 0,
            }
        );
        let probe = p.probe.as_ref().unwrap();
        assert_eq!(
            probe.rungs(),
            vec![Rung { arms: 4, steps: 1 }, Rung { arms: 2, steps: 2 }]
        );
        let mut longer = Schedule::builtin("random-probe").unwrap();
        longer.probe.as_mut().unwrap().rungs = 3;
        let e = Schedule::check_same_budget(&[p, longer], 5, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("random-probe") && e.contains("catalyst-probe"),
            "{e}"
        );
    }

    #[test]
    fn successive_halving_keeps_at_least_one_arm_and_grows_the_steps() {
        let p = Probe {
            steps: 2,
            keep: 1.0 / 3.0,
            rungs: 4,
            proposals: 8,
            ..Probe::default()
        };
        let rungs = p.rungs();
        let arms: Vec<usize> = rungs.iter().map(|r| r.arms).collect();
        let steps: Vec<usize> = rungs.iter().map(|r| r.steps).collect();
        assert_eq!(arms, vec![9, 3, 1, 1]);
        assert_eq!(steps, vec![2, 6, 18, 54]);
        assert_eq!(p.gradient_steps(), 18 + 18 + 18 + 54);
        assert_eq!(p.selection_evals(), 14);
    }

    #[test]
    fn probe_rules_are_checked_with_the_field_named() {
        let mut s = Schedule::builtin("catalyst-probe").unwrap();
        s.restart = Restart::Best;
        assert!(s
            .validate(5)
            .unwrap_err()
            .to_string()
            .contains("restart: probe"));
        s.restart = Restart::Probe;
        s.mentor = None;
        let e = s.validate(5).unwrap_err().to_string();
        assert!(e.contains("probe.arms"), "{e}");
        let mut s = Schedule::builtin("random-probe").unwrap();
        for (field, edit) in [
            (
                "probe.keep",
                (|p: &mut Probe| p.keep = 0.0) as fn(&mut Probe),
            ),
            ("probe.rungs", |p| p.rungs = 0),
            ("probe.proposals", |p| p.proposals = 0),
            ("probe.margin", |p| p.margin = f64::NAN),
        ] {
            let mut bad = s.clone();
            edit(bad.probe.as_mut().unwrap());
            let e = bad.validate(5).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        s.probe = None;
        assert!(s
            .validate(5)
            .unwrap_err()
            .to_string()
            .contains("`probe` needs"));
        let mut r = Schedule::builtin("reference-compat").unwrap();
        r.mentor = None;
        assert!(r
            .validate(5)
            .unwrap_err()
            .to_string()
            .contains("`reference` needs"));
        let yaml = "name: x\nrounds: 1\nsteps_per_round: 5\nfinal_steps: 0\nmentor: null\nrestart: probe\nprobe: { arms: random, steps: 2, rungs: 1 }\n";
        let s: Schedule = serde_yaml::from_str(yaml).unwrap();
        s.validate(5).unwrap();
        assert_eq!(s.probe.as_ref().unwrap().proposals, 3);
        let typo = yaml.replace("rungs: 1", "rung: 1");
        let e = serde_yaml::from_str::<Schedule>(&typo)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rung"), "{e}");
    }

    /// A margin must be a finite number ≥ 0; a probe may spend up to 100,000 gradient steps.
    #[test]
    fn probe_limits_are_exact() {
        let s = Schedule::builtin("random-probe").unwrap();
        let with = |edit: fn(&mut Probe)| {
            let mut t = s.clone();
            edit(t.probe.as_mut().unwrap());
            t.validate(5)
        };
        for bad in [(|p: &mut Probe| p.margin = -0.01) as fn(&mut Probe), |p| {
            p.margin = f64::INFINITY
        }] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("probe.margin"), "{e}");
        }
        with(|p| p.margin = 0.0).unwrap();
        // One rung of 1 + 3 arms × 25,000 steps: exactly the limit; 11 × 9,091 is one over.
        let at = |p: &mut Probe| {
            (p.rungs, p.proposals, p.steps) = (1, 3, 25_000);
        };
        with(at).unwrap();
        let over = |p: &mut Probe| {
            (p.rungs, p.proposals, p.steps) = (1, 10, 9_091);
        };
        let e = with(over).unwrap_err().to_string();
        assert!(e.contains("100001 gradient steps"), "{e}");
    }

    /// The probe family's members differ only in their arms and their mentor stage, which is
    /// exactly what their names say.
    #[test]
    fn the_probe_family_asks_its_mentor_as_named() {
        let stage = |name: &str| Schedule::builtin(name).unwrap().mentor;
        for name in ["staged", "random-probe", "projected-probe"] {
            assert_eq!(stage(name), None, "{name}");
        }
        let want = |protocol, template: &str, shuffle_scores| MentorStage {
            protocol,
            template: template.into(),
            shuffle_scores,
            ..MentorStage::default()
        };
        let instruction = Protocol::Instruction;
        for (name, m) in [
            ("catalyst-probe", want(instruction, "catalyst", false)),
            (
                "catalyst-probe-no-trajectory",
                want(instruction, "no-trajectory", false),
            ),
            ("shuffled-scores", want(instruction, "catalyst", true)),
            ("list-probe", want(Protocol::List, "list", false)),
            (
                "catalyst-probe-masked",
                MentorStage {
                    mask: true,
                    ..want(instruction, "catalyst", false)
                },
            ),
            (
                "list-probe-masked",
                MentorStage {
                    mask: true,
                    ..want(Protocol::List, "list", false)
                },
            ),
        ] {
            assert_eq!(stage(name), Some(m), "{name}");
        }
        let many = |m: MentorStage, calls, candidates| MentorStage {
            mask: true,
            fit: true,
            calls,
            candidates,
            temperatures: vec![0.7, 1.0],
            ..m
        };
        let edit = want(Protocol::Edit, "edit", false);
        for (name, m, screen) in [
            ("edit-probe", many(edit.clone(), 3, 1), None),
            (
                "catalyst-screen-probe",
                many(want(instruction, "catalyst", false), 4, 4),
                Some(16),
            ),
            ("edit-screen-probe", many(edit, 8, 2), Some(16)),
        ] {
            let s = Schedule::builtin(name).unwrap();
            assert_eq!(s.mentor, Some(m), "{name}");
            let p = s.probe.unwrap();
            assert_eq!(p.screen.map(|s| s.candidates), screen, "{name}");
            assert_eq!(p.drawn(), screen.unwrap_or(3), "{name}");
        }
        let r = Schedule::builtin("random-screen-probe").unwrap();
        assert_eq!((r.mentor, r.probe.unwrap().arms), (None, ArmSource::Random));
    }

    /// Call 0 samples as a stage of one call did (cassettes recorded before keep their keys);
    /// later calls get their own seeds and cycle the temperatures.
    #[test]
    fn calls_get_their_own_seeds_and_cycle_the_temperatures() {
        let mut m = MentorStage::default();
        let first = m.call_sampling(3, 2, 0);
        assert_eq!(first.seed, 3002);
        assert_eq!(first.temperature, m.sampling.temperature);
        let seeds: Vec<u64> = (0..4).map(|c| m.call_sampling(3, 2, c).seed).collect();
        let mut distinct = seeds.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{seeds:?}");
        m.temperatures = vec![0.2, 1.1];
        let t: Vec<f32> = (0..3)
            .map(|c| m.call_sampling(3, 2, c).temperature)
            .collect();
        assert_eq!(t, [0.2, 1.1, 0.2]);
        assert_eq!(
            MentorStage {
                protocol: Protocol::Edit,
                mask: true,
                ..m
            }
            .line_mask_of(5),
            Some(LineMask { lines: 3, words: 5 })
        );
    }

    /// Calls, temperatures and the screen are checked with the field named; the screen's
    /// scorings are part of the budget, so a screened schedule is not the probe family's peer.
    #[test]
    fn calls_and_screens_are_bounded_and_budgeted() {
        let s = Schedule::builtin("edit-screen-probe").unwrap();
        s.validate(5).unwrap();
        let mentor = |edit: fn(&mut MentorStage)| {
            let mut t = s.clone();
            edit(t.mentor.as_mut().unwrap());
            t.validate(5).map_err(|e| e.to_string())
        };
        for (bad, field) in [
            (
                (|m: &mut MentorStage| m.calls = 0) as fn(&mut MentorStage),
                "mentor.calls",
            ),
            (|m| m.calls = 17, "mentor.calls"),
            (|m| m.temperatures = vec![0.5, -0.1], "mentor.temperatures"),
            (|m| m.temperatures = vec![f32::NAN], "mentor.temperatures"),
        ] {
            let e = mentor(bad).unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
        mentor(|m| m.calls = 16).unwrap();
        let probe = |edit: fn(&mut Probe)| {
            let mut t = s.clone();
            edit(t.probe.as_mut().unwrap());
            t.validate(5).map_err(|e| e.to_string())
        };
        for bad in [
            (|p: &mut Probe| p.screen.as_mut().unwrap().candidates = 2) as fn(&mut Probe),
            |p| p.screen.as_mut().unwrap().candidates = 33,
            |p| p.screen.as_mut().unwrap().examples = 0,
        ] {
            assert!(probe(bad).unwrap_err().contains("probe.screen"));
        }
        probe(|p| p.screen.as_mut().unwrap().candidates = 3).unwrap();
        probe(|p| p.screen.as_mut().unwrap().candidates = 32).unwrap();
        let budget = s.budget(5, true);
        assert_eq!(budget.screen_evals, 3 * 16);
        let plain = Schedule::builtin("edit-probe").unwrap().budget(5, true);
        assert_eq!(plain.screen_evals, 0);
        assert_eq!(
            (plain.gradient_steps, plain.selection_evals),
            (budget.gradient_steps, budget.selection_evals)
        );
        let e =
            Schedule::check_same_budget(&[Schedule::builtin("edit-probe").unwrap(), s], 5, true)
                .unwrap_err()
                .to_string();
        assert!(e.contains("48 screen evaluations"), "{e}");
        // Saved and loaded unchanged; fields at their defaults stay out of the YAML.
        let yaml = serde_yaml::to_string(&Schedule::builtin("edit-screen-probe").unwrap()).unwrap();
        assert!(
            yaml.contains("calls: 8") && yaml.contains("screen:"),
            "{yaml}"
        );
        let back: Schedule = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, Schedule::builtin("edit-screen-probe").unwrap());
        let plain = serde_yaml::to_string(&Schedule::builtin("catalyst-probe").unwrap()).unwrap();
        for absent in ["calls", "temperatures", "fit", "screen"] {
            assert!(!plain.contains(absent), "{absent}: {plain}");
        }
    }

    #[test]
    fn schedules_load_from_yaml_files_with_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Schedule::builtin("catalyst").unwrap();
        s.rounds = 2;
        let good = dir.path().join("two.yaml");
        std::fs::write(&good, serde_yaml::to_string(&s).unwrap()).unwrap();
        assert_eq!(Schedule::resolve(good.to_str().unwrap()).unwrap(), s);
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "name: x\nrounds: two\n").unwrap();
        let e = Schedule::resolve(bad.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.yaml") && e.contains("rounds"), "{e}");
        assert!(Schedule::resolve("/nonexistent/s.yaml")
            .unwrap_err()
            .to_string()
            .contains("s.yaml"));
    }

    #[test]
    fn impossible_schedules_are_named() {
        let mut s = Schedule::builtin("catalyst").unwrap();
        s.mentor.as_mut().unwrap().sample = 9;
        let e = s.validate(5).unwrap_err().to_string();
        assert!(
            e.contains("mentor.sample") && e.contains("records 4"),
            "{e}"
        );
        s.mentor.as_mut().unwrap().candidates = 0;
        s.mentor.as_mut().unwrap().sample = 2;
        assert!(s
            .validate(5)
            .unwrap_err()
            .to_string()
            .contains("candidates"));
        let bad = "name: x\nrounds: 1\nsteps_per_round: 5\nfinal_steps: 0\nmentor: null\nrestart: best\nlr: 3\n";
        assert!(serde_yaml::from_str::<Schedule>(bad)
            .unwrap_err()
            .to_string()
            .contains("lr"));
    }
}
