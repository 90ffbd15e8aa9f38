//! What the proposals of a sweep did, per task and schedule: the mentor's replies (lines
//! written, candidates kept, candidates on the task, lines dropped as something other than a
//! prompt) and every probe arm by origin (how many, how many beat the continuous arm on the
//! first rung, where all arms ran on the same batches, and how many won their probe).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::path::Path;

use crate::engine::{RoundRecord, RunResult, Score};
use crate::error::{Error, Result};

/// Arms of one origin (`mentor`, `random`, `random-fill`, `projected`, `restart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginStats {
    /// Arms started.
    pub arms: usize,
    /// Arms that scored above the continuous arm after the first rung.
    pub beat_continuous: usize,
    /// Arms that won their probe.
    pub won: usize,
    /// Proposals of this origin a probe's screen scored (those kept are among `arms`).
    pub screened: usize,
}

/// The mentor's replies and the probes' arms of one task and schedule, over its seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProposalRow {
    /// Task.
    pub task: String,
    /// Schedule.
    pub schedule: String,
    /// Finished runs.
    pub runs: usize,
    /// Mentor calls.
    pub calls: usize,
    /// Non-blank lines (or list elements) the mentor wrote.
    pub lines: usize,
    /// Candidates the parser kept.
    pub candidates: usize,
    /// Kept candidates within the stage's word limit: the proposals on the task.
    pub on_task: usize,
    /// Lines dropped as something other than a prompt (chatter, code, echoes, headings).
    pub off_task: usize,
    /// Probes run.
    pub probes: usize,
    /// Probes the continuous arm won.
    pub continuous_won: usize,
    /// The proposal arms, by origin.
    pub origins: BTreeMap<String, OriginStats>,
    /// Proposal arms started from a text (mentor candidates, projected texts) whose token
    /// count is recorded.
    pub text_arms: usize,
    /// Of those, texts longer than the prompt: cut to its length, the rest never seen.
    pub cut: usize,
    /// Of those, texts shorter than the prompt: cycled to its length.
    pub cycled: usize,
}

/// The proposal table of a sweep folder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProposalReport {
    rows: Vec<ProposalRow>,
}

impl ProposalReport {
    /// Reads every finished run of `dir` (`*/results.json` with its `rounds.jsonl` and the
    /// word limit of its `config.yaml`); errors name the file and line that cannot be read.
    pub fn load(dir: &Path) -> Result<Self> {
        let entries =
            fs::read_dir(dir).map_err(|e| Error::io("reading the sweep folder", dir, e))?;
        let mut runs: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        runs.sort();
        let mut groups: BTreeMap<(String, String), ProposalRow> = BTreeMap::new();
        for run in runs {
            let Ok(text) = fs::read_to_string(run.join("results.json")) else {
                continue;
            };
            let result: RunResult = serde_json::from_str(&text).map_err(|e| {
                Error::data(run.join("results.json"), format!("not a run result: {e}"))
            })?;
            let rounds = read_rounds(&run.join("rounds.jsonl"))?;
            let limits = Limits::of(&run.join("config.yaml"))?;
            let row = groups
                .entry((result.task.clone(), result.schedule.clone()))
                .or_insert_with(|| ProposalRow {
                    task: result.task.clone(),
                    schedule: result.schedule.clone(),
                    ..ProposalRow::default()
                });
            row.add(&result, &rounds, limits);
        }
        Ok(Self {
            rows: groups.into_values().collect(),
        })
    }

    /// The rows, by task and schedule.
    pub fn rows(&self) -> &[ProposalRow] {
        &self.rows
    }

    /// Rows of the schedules that asked a mentor or ran a probe, as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| task | schedule | runs | mentor calls | lines / call | kept / call | on task / call | off-task lines | probes won by the continuous arm | proposal arms: beat the continuous arm on rung 1 / won their probe / started | text arms cut / cycled to the prompt's length |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in self.rows.iter().filter(|r| r.calls > 0 || r.probes > 0) {
            let per_call = |n: usize| match r.calls {
                0 => "-".to_string(),
                c => format!("{:.1}", n as f64 / c as f64),
            };
            let arms: Vec<String> = r
                .origins
                .iter()
                .map(|(o, s)| {
                    let screened = match s.screened {
                        0 => String::new(),
                        n => format!(" (of {n} screened)"),
                    };
                    format!(
                        "{o} {} / {} / {}{screened}",
                        s.beat_continuous, s.won, s.arms
                    )
                })
                .collect();
            let fitted = match r.text_arms {
                0 => "-".to_string(),
                n => format!("{} / {} of {n}", r.cut, r.cycled),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} of {} | {} | {fitted} |",
                r.task,
                r.schedule,
                r.runs,
                r.calls,
                per_call(r.lines),
                per_call(r.candidates),
                per_call(r.on_task),
                r.off_task,
                r.continuous_won,
                r.probes,
                arms.join("; ")
            );
        }
        out
    }
}

impl ProposalRow {
    /// Adds one run's rounds.
    fn add(&mut self, result: &RunResult, rounds: &[RoundRecord], limits: Limits) {
        let word_limit = limits.words;
        self.runs += 1;
        for round in rounds {
            for m in round.exchanges() {
                // The limit the mentor was asked for (fitted to the prompt), else the stage's.
                let limit = m.word_limit.or(word_limit);
                self.calls += 1;
                self.lines += m.candidates.len() + m.dropped.len();
                self.candidates += m.candidates.len();
                self.on_task += m
                    .candidates
                    .iter()
                    .filter(|c| limit.is_none_or(|w| c.split_whitespace().count() <= w))
                    .count();
                self.off_task += m.dropped.iter().filter(|d| !d.reason.is_on_task()).count();
            }
            for s in &round.screen {
                self.origins.entry(s.origin.clone()).or_default().screened += 1;
            }
            let Some(p) = &round.probe else { continue };
            self.probes += 1;
            let score = |i: usize| {
                p.arms
                    .get(i)
                    .and_then(|a| a.rungs.first())
                    .map(|m| Score::of(result.metric, m))
            };
            let continuous = score(0);
            if p.winner == 0 {
                self.continuous_won += 1;
            }
            for (i, arm) in p.arms.iter().enumerate().skip(1) {
                let s = self.origins.entry(arm.origin.clone()).or_default();
                s.arms += 1;
                s.won += usize::from(p.winner == i);
                let beat = matches!((score(i), continuous), (Some(a), Some(c)) if a.beats(&c));
                s.beat_continuous += usize::from(beat);
                if let (Some(t), Some(len)) = (arm.tokens, limits.prompt_len) {
                    self.text_arms += 1;
                    self.cut += usize::from(t > len);
                    self.cycled += usize::from(t < len);
                }
            }
        }
    }
}

/// The rounds of a run, one JSON object per line.
fn read_rounds(path: &Path) -> Result<Vec<RoundRecord>> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::data(path, format!("line {}: not a round record: {e}", i + 1)))
        })
        .collect()
}

/// What a run's `config.yaml` limits: the mentor stage's word limit (`None` without a mentor
/// stage) and the prompt's length in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Limits {
    words: Option<usize>,
    prompt_len: Option<usize>,
}

impl Limits {
    fn of(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let config: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a run configuration: {e}")))?;
        let number = |v: &serde_yaml::Value| v.as_u64().map(|n| n as usize);
        Ok(Self {
            words: number(&config["schedule"]["mentor"]["word_limit"]),
            prompt_len: number(&config["task"]["prompt_len"]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::{ArmRecord, MentorExchange, ProbeRecord};
    use crate::mentor::{
        ChatRequest, ChatResponse, DropReason, Dropped, Message, RequestMode, Sampling, Source,
    };
    use crate::readout::Metrics;
    use crate::run::RunDir;

    fn metrics(accuracy: f64, loss: f64) -> Metrics {
        Metrics {
            loss,
            accuracy,
            macro_f1: accuracy,
            mcc: 0.0,
            count: 100,
        }
    }

    fn result(seed: u64) -> RunResult {
        RunResult {
            task: "mr".into(),
            schedule: "catalyst-probe".into(),
            seed,
            gradient_steps: 100,
            selection_evals: 38,
            screen_evals: 0,
            llm_calls: 1,
            llm_tokens: 10,
            metric: crate::task::Metric::Accuracy,
            selection: metrics(0.7, 0.5),
            test: metrics(0.7, 0.5),
            final_text: String::new(),
            wall_seconds: 1.0,
        }
    }

    /// One round: the mentor wrote 4 lines (2 kept, one over the word limit of 4; one line of
    /// code; one copy), and a probe of the continuous arm, 2 mentor arms (of 3 and 9 tokens,
    /// against a prompt of 4) and a random fill-in.
    fn round(mentor_wins: bool) -> RoundRecord {
        let mut r = RoundRecord::new(0, 20, Vec::new());
        let dropped = |reason| Dropped {
            line_no: 3,
            text: "x".into(),
            reason,
        };
        r.mentor = Some(MentorExchange {
            request: ChatRequest {
                endpoint: "embedded:0".into(),
                model: "m".into(),
                messages: vec![Message::user("list")],
                sampling: Sampling::default(),
                mode: RequestMode::Completion,
                mask: None,
            },
            response: ChatResponse {
                model_id: "m".into(),
                text: String::new(),
                prompt_tokens: 1,
                completion_tokens: 1,
                finish_reason: "stop".into(),
            },
            source: Source::Live,
            candidates: vec!["the film is".into(), "one two three four five".into()],
            dropped: vec![dropped(DropReason::Code), dropped(DropReason::Copy)],
            word_limit: None,
        });
        let arm = |origin: &str, tokens, rungs: Vec<Metrics>| ArmRecord {
            origin: origin.into(),
            text: String::new(),
            tokens,
            rungs,
        };
        r.probe = Some(ProbeRecord {
            arms: vec![
                arm("continuous", None, vec![metrics(0.70, 0.5)]),
                // Same accuracy, lower loss: beats the continuous arm.
                arm(
                    "mentor",
                    Some(3),
                    vec![metrics(0.70, 0.4), metrics(0.8, 0.3)],
                ),
                arm("mentor", Some(9), vec![metrics(0.60, 0.4)]),
                arm("random-fill", None, vec![metrics(0.75, 0.6)]),
            ],
            winner: if mentor_wins { 1 } else { 0 },
            within_margin: None,
            gradient_steps: 8,
            selection_evals: 6,
        });
        r
    }

    #[test]
    fn mentor_lines_and_probe_arms_are_counted_per_task_and_schedule() {
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..2 {
            let run =
                RunDir::create(dir.path().join(format!("mr-catalyst-probe-s{seed}"))).unwrap();
            run.write_json("results.json", &result(seed)).unwrap();
            let rounds = serde_json::to_string(&round(seed == 0)).unwrap();
            fs::write(run.path().join("rounds.jsonl"), format!("{rounds}\n")).unwrap();
            fs::write(
                run.path().join("config.yaml"),
                "task:\n  prompt_len: 4\nschedule:\n  mentor:\n    word_limit: 4\n",
            )
            .unwrap();
        }
        // An unfinished run is skipped.
        RunDir::create(dir.path().join("mr-catalyst-probe-s2")).unwrap();
        let report = ProposalReport::load(dir.path()).unwrap();
        let [row] = report.rows() else {
            panic!("{:?}", report.rows())
        };
        assert_eq!(
            (row.runs, row.calls, row.lines, row.candidates),
            (2, 2, 8, 4)
        );
        assert_eq!((row.on_task, row.off_task), (2, 2));
        assert_eq!((row.probes, row.continuous_won), (2, 1));
        let mentor = row.origins["mentor"];
        assert_eq!((mentor.arms, mentor.beat_continuous, mentor.won), (4, 2, 1));
        let fill = row.origins["random-fill"];
        assert_eq!((fill.arms, fill.beat_continuous, fill.won), (2, 2, 0));
        let md = report.markdown();
        assert!(
            md.contains("| mr | catalyst-probe | 2 | 2 | 4.0 | 2.0 | 1.0 | 2 | 1 of 2 |"),
            "{md}"
        );
        assert!(
            md.contains("mentor 2 / 1 / 4; random-fill 2 / 0 / 2 | 2 / 2 of 4 |"),
            "{md}"
        );
        assert_eq!((row.text_arms, row.cut, row.cycled), (4, 2, 2));
        // A broken round is named with its line.
        let bad = dir.path().join("mr-catalyst-probe-s0/rounds.jsonl");
        fs::write(&bad, "{}\nnot json\n").unwrap();
        let err = ProposalReport::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("rounds.jsonl") && err.contains("line 1"),
            "{err}"
        );
    }

    /// Every call of a round counts, each against the word limit it was asked for; the
    /// screen's proposals are counted by origin beside the arms that entered the probe.
    #[test]
    fn further_calls_fitted_limits_and_screens_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("mr-edit-screen-probe-s0")).unwrap();
        run.write_json("results.json", &result(0)).unwrap();
        let mut r = round(true);
        let first = r.mentor.as_mut().unwrap();
        // Asked for 5 words: "one two three four five" is on the task now.
        first.word_limit = Some(5);
        let mut second = first.clone();
        second.candidates = vec!["a b c d e f".into()];
        second.dropped.clear();
        r.further.push(second);
        let screened = |origin: &str, kept| crate::engine::records::ScreenRecord {
            origin: origin.into(),
            text: "t".into(),
            metrics: metrics(0.6, 0.5),
            kept,
        };
        r.screen = vec![
            screened("mentor", true),
            screened("mentor", false),
            screened("random-fill", false),
        ];
        let rounds = serde_json::to_string(&r).unwrap();
        fs::write(run.path().join("rounds.jsonl"), format!("{rounds}\n")).unwrap();
        fs::write(
            run.path().join("config.yaml"),
            "task:\n  prompt_len: 4\nschedule:\n  mentor:\n    word_limit: 4\n",
        )
        .unwrap();
        let report = ProposalReport::load(dir.path()).unwrap();
        let [row] = report.rows() else {
            panic!("{:?}", report.rows())
        };
        assert_eq!((row.calls, row.lines, row.candidates), (2, 5, 3));
        assert_eq!((row.on_task, row.off_task), (2, 1));
        assert_eq!(row.origins["mentor"].screened, 2);
        assert_eq!(row.origins["random-fill"].screened, 1);
        let md = report.markdown();
        assert!(
            md.contains("mentor 1 / 1 / 2 (of 2 screened); random-fill 1 / 0 / 1 (of 1 screened)"),
            "{md}"
        );
    }
}
