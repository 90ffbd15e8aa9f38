//! Schedules: how gradient stages, mentor stages and selection alternate. A schedule is data: it
//! serializes to YAML and back unchanged, so a run's resolved schedule is part of its
//! `config.yaml`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mentor::Sampling;

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
}

/// One mentor stage: what the mentor is shown and asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MentorStage {
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
}

impl Default for MentorStage {
    fn default() -> Self {
        Self {
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
        }
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
}

/// The names of the built-in schedules.
pub const BUILTIN_SCHEDULES: &[&str] = &[
    "gradient-only",
    "random-restarts",
    "mentor-only",
    "catalyst",
    "catalyst-no-trajectory",
    "reference-compat",
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
            // The reference code: one long stage, one mentor call, restart from the best.
            "reference-compat" => crate::schedule! {
                name: "reference-compat",
                rounds: 1,
                steps_per_round: 80,
                final_steps: 20,
                restart: best,
                mentor: { template: "catalyst" },
            },
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

    /// Gradient steps the schedule spends in all.
    pub fn gradient_steps(&self) -> usize {
        self.rounds * self.steps_per_round + self.final_steps
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_fair_and_round_trip_through_yaml() {
        for name in BUILTIN_SCHEDULES {
            let s = Schedule::builtin(name).unwrap();
            s.validate(5).unwrap();
            assert_eq!(s.gradient_steps(), 100, "{name}");
            let yaml = serde_yaml::to_string(&s).unwrap();
            assert_eq!(serde_yaml::from_str::<Schedule>(&yaml).unwrap(), s);
        }
        let e = Schedule::builtin("catalist").unwrap_err().to_string();
        assert!(e.contains("catalist") && e.contains("catalyst"), "{e}");
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
