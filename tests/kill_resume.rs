//! `kill -9` at spread-out points of a real `tandem run` (catalyst with the embedded mentor on a
//! small task), then `tandem run --resume`: every trial ends with the uninterrupted run's exact
//! record. A half-written checkpoint is never read: checkpoints are swapped in by renames.
//!
//! Its own test binary (it only spawns the CLI, so links neither the library nor burn): the kill
//! points are fractions of a reference run's wall time, which only holds while the load stays
//! the same. Beside the areas of `tests/it`, whose tests start and end during the trials, 6 of
//! 10 kills landed after the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TRIALS: usize = 10;

fn args(out: &Path) -> Vec<String> {
    let mut a: Vec<String> = ["run", "uci-imdb", "--schedule", "catalyst", "--seed", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for set in [
        "schedule.rounds=2",
        "schedule.steps_per_round=4",
        "schedule.final_steps=3",
        "schedule.mentor.sample=2",
        "schedule.mentor.sampling.max_tokens=24",
        "task.prompt_len=3",
        "task.split.max_test=60",
        "task.split.max_selection=40",
        "task.split.shots=4",
        "task.gradient.batch_size=4",
        "task.gradient.record_every=2",
        "task.max_len=40",
    ] {
        a.push("--set".into());
        a.push(set.into());
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

/// The records a finished run leaves, wall time left out.
fn record(dir: &Path) -> (serde_json::Value, String, String) {
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    results["wall_seconds"] = serde_json::Value::Null;
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (results, read("trajectory.jsonl"), read("rounds.jsonl"))
}

#[test]
fn kill_9_anywhere_then_resume_gives_the_uninterrupted_record() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let t = Instant::now();
    let status = tandem().args(args(&reference)).status().unwrap();
    assert!(status.success(), "the reference run failed");
    let wall = t.elapsed();
    let want = record(&run_dir(&reference).unwrap());

    let (mut mid_run, mut phases) = (0, Vec::new());
    for trial in 0..TRIALS {
        let out = tmp.path().join(format!("trial{trial}"));
        // Spread over the run, start-up included (a warm process runs faster than the first).
        let at = wall.mul_f64(0.1 + 0.65 * (trial as f64 + 0.5) / TRIALS as f64);
        let mut child = tandem().args(args(&out)).spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let Some(dir) = run_dir(&out) else {
            phases.push("before start".to_string());
            continue;
        };
        if dir.join("results.json").exists() {
            phases.push("after the end".to_string());
            continue;
        }
        mid_run += 1;
        let phase = std::fs::read_to_string(dir.join("checkpoint/state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .map(|v| format!("{} round {}", v["phase"], v["round"]))
            .unwrap_or_else(|| "no checkpoint yet".into());
        phases.push(phase);
        if !dir.join("config.yaml").exists() {
            continue;
        }
        let status = tandem()
            .args(["run", "--resume", &dir.display().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "trial {trial}: resume failed");
        assert!(
            record(&dir) == want,
            "trial {trial} ({}): the resumed record differs",
            phases.last().unwrap()
        );
    }
    eprintln!("kill points: {phases:?}");
    assert!(
        mid_run >= TRIALS - 2,
        "only {mid_run} kills landed mid-run: {phases:?}"
    );
}
