//! `kill -9` at spread-out points of a real `tandem run` (catalyst with the embedded mentor on
//! small tasks: a built-in corpus on MiniLM, `mr` on the SmolLM2 decoder with the verbalizer, a
//! user's JSONL file declared in YAML), then `tandem run --resume`: every trial ends with the
//! uninterrupted run's record, byte for byte. A half-written checkpoint is never read:
//! checkpoints are swapped in by renames. The decoder runs on burn-flex, so that a resumed run
//! is also checked to continue on the backend it was started on (`config.yaml` names it; the
//! resume command here gives no `--backend`); the encoder and the file task on burn-ndarray.
//!
//! Its own test binary (it only spawns the CLI, so links neither the library nor burn). The kill
//! points follow the run's progress, not the clock: a reference run is watched for its
//! milestones (the run folder's config, each checkpoint, the results), and each trial waits for
//! one milestone, then for a fraction of the time the reference took to the next one. Kill
//! points taken as fractions of the reference's wall time missed on a faster machine (CI: 4 of
//! 10 kills after the end).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One task's trials: its `tandem run` arguments and the kills.
struct Case {
    name: &'static str,
    task: &'static str,
    backend: &'static str,
    sets: &'static [&'static str],
    trials: usize,
}

const SCHEDULE: &[&str] = &[
    "schedule.rounds=2",
    "schedule.steps_per_round=4",
    "schedule.final_steps=3",
    "schedule.mentor.sample=2",
    "schedule.mentor.sampling.max_tokens=24",
    "task.gradient.record_every=2",
];

const CASES: &[Case] = &[
    Case {
        name: "encoder, built-in corpus",
        task: "uci-imdb",
        backend: "ndarray",
        sets: &[
            "task.prompt_len=3",
            "task.split.max_test=60",
            "task.split.max_selection=40",
            "task.split.shots=4",
            "task.gradient.batch_size=4",
            "task.max_len=40",
        ],
        trials: 10,
    },
    Case {
        name: "decoder",
        task: "examples/tasks/mr-smollm2.yaml",
        backend: "flex",
        sets: &[
            "task.prompt_len=2",
            "task.split.max_test=6",
            "task.split.max_selection=6",
            "task.split.shots=2",
            "task.gradient.batch_size=2",
            "task.gradient.lr=0.003",
            "task.max_len=24",
        ],
        trials: 5,
    },
    Case {
        name: "file task",
        task: "examples/tasks/topics.yaml",
        backend: "ndarray",
        sets: &["task.gradient.batch_size=4", "task.max_len=40"],
        trials: 5,
    },
];

fn args(case: &Case, out: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        case.task,
        "--schedule",
        "catalyst",
        "--seed",
        "2",
        "--backend",
        case.backend,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for set in SCHEDULE.iter().chain(case.sets) {
        a.push("--set".into());
        a.push(set.to_string());
    }
    a.push("--out".into());
    a.push(out.display().to_string());
    a
}

fn tandem() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The one run folder under `out`.
fn run_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// The records a finished run leaves, wall time left out: `results.json` and every line of
/// `trajectory.jsonl` and `rounds.jsonl`.
fn record(dir: &Path) -> Vec<serde_json::Value> {
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    results["wall_seconds"] = serde_json::Value::Null;
    let mut record = vec![results];
    for file in ["trajectory.jsonl", "rounds.jsonl"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        record.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    record
}

/// The first place where `a` and `b` differ.
fn differs(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value::*;
    match (a, b) {
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| differs(x, y, &format!("{at}[{i}]"))),
        (Object(x), Object(y)) if x.len() == y.len() => {
            x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => differs(v, w, &format!("{at}.{k}")),
                None => Some(format!("{at}.{k}: missing")),
            })
        }
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

/// How far a run under `out` has come: `"config"` once its folder holds the config, then the
/// phase and round of each checkpoint, then `"results"`; `None` before the folder exists.
fn milestone(out: &Path) -> Option<String> {
    let dir = run_dir(out)?;
    if dir.join("results.json").exists() {
        return Some("results".into());
    }
    let checkpoint = std::fs::read_to_string(dir.join("checkpoint/state.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .map(|v| format!("{} round {}", v["phase"], v["round"]));
    checkpoint.or_else(|| dir.join("config.yaml").exists().then(|| "config".into()))
}

/// Runs `tandem` with `args` to the end, noting when each milestone was first seen.
fn watch(args: Vec<String>, out: &Path) -> Vec<(String, Duration)> {
    let mut child = tandem().args(args).spawn().unwrap();
    let (start, mut seen) = (Instant::now(), vec![("spawn".to_string(), Duration::ZERO)]);
    loop {
        let done = child.try_wait().unwrap();
        if let Some(m) = milestone(out) {
            if seen.last().is_none_or(|(last, _)| *last != m) {
                seen.push((m, start.elapsed()));
            }
        }
        if let Some(status) = done {
            assert!(status.success(), "the reference run failed");
            return seen;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the case's trials; returns where each kill landed.
fn trials(case: &Case, tmp: &Path) -> Vec<String> {
    let reference = tmp.join("reference");
    let seen = watch(args(case, &reference), &reference);
    assert_eq!(
        seen.last().map(|(m, _)| m.as_str()),
        Some("results"),
        "{}: the reference run ended without results: {seen:?}",
        case.name
    );
    let want = serde_json::Value::Array(record(&run_dir(&reference).unwrap()));
    // The stretches between milestones, the last one (to the results) included.
    let stretches = seen.len() - 1;
    let rank = |m: &Option<String>| {
        m.as_ref()
            .and_then(|m| seen.iter().position(|(s, _)| s == m))
            .unwrap_or(0)
    };

    let (mut mid_run, mut phases) = (0, Vec::new());
    for trial in 0..case.trials {
        let out = tmp.join(format!("trial{trial}"));
        // The trials spread evenly over the stretches laid end to end; the last stretch, whose
        // end is the process's, is cut short by a fifth against a faster trial.
        let at = (trial as f64 + 0.5) / case.trials as f64 * stretches as f64;
        let stretch = at as usize;
        let fraction = at.fract() * if stretch + 1 == stretches { 0.8 } else { 1.0 };
        let mut delay = (seen[stretch + 1].1 - seen[stretch].1).mul_f64(fraction);
        // On a loaded machine a trial can outrun the reference's timings and end before its
        // kill: it is run again, killed twice as early, at most twice.
        let mut out = out;
        for retry in 1..=3 {
            let mut child = tandem().args(args(case, &out)).spawn().unwrap();
            let mut reached = None;
            while child.try_wait().unwrap().is_none() {
                match reached {
                    None if rank(&milestone(&out)) >= stretch => reached = Some(Instant::now()),
                    Some(at) if at.elapsed() >= delay => break,
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            child.kill().ok(); // SIGKILL
            child.wait().unwrap();
            let ended = run_dir(&out).is_some_and(|d| d.join("results.json").exists());
            if !ended || retry == 3 {
                break;
            }
            out = tmp.join(format!("trial{trial}-retry{retry}"));
            delay /= 2;
        }
        let Some(dir) = run_dir(&out) else {
            phases.push("before start".to_string());
            continue;
        };
        if dir.join("results.json").exists() {
            phases.push("after the end".to_string());
            continue;
        }
        // A run folder with no config yet was killed before the run started: nothing to resume.
        if !dir.join("config.yaml").exists() {
            phases.push("before the config".to_string());
            continue;
        }
        mid_run += 1;
        let phase = milestone(&out).unwrap_or_else(|| "config".into());
        phases.push(format!("{phase} + {:.0}% of the stretch", fraction * 100.0));
        let status = tandem()
            .args(["run", "--resume", &dir.display().to_string()])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{} trial {trial}: resume failed",
            case.name
        );
        let got = serde_json::Value::Array(record(&dir));
        if let Some(diff) = differs(&got, &want, "record") {
            panic!(
                "{} trial {trial} ({}): the resumed record differs at {diff}",
                case.name,
                phases.last().unwrap()
            );
        }
    }
    assert!(
        mid_run + 2 >= case.trials,
        "{}: only {mid_run} kills landed mid-run: {phases:?} (milestones of the reference: \
         {seen:?})",
        case.name
    );
    phases
}

#[test]
fn kill_9_anywhere_then_resume_gives_the_uninterrupted_record() {
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let phases = trials(case, tmp.path());
        eprintln!("{}: kill points {phases:?}", case.name);
    }
}
