//! `tune` end to end on a small real task (UCI IMDB sentences): the run folder holds a config
//! that round-trips, the split manifest, the trajectory and the results.

use indicatif::ProgressBar;
use tandem::assets::{Assets, MINILM, UCI_SENTIMENT};
use tandem::data::SplitConfig;
use tandem::gradient::{GradientConfig, TrajectoryPoint};
use tandem::prompt::PromptInit;
use tandem::readout::ReadoutConfig;
use tandem::run::RunDir;
use tandem::tune::{tune, TuneConfig, TuneResult};

use crate::support;

fn small_config(readout: ReadoutConfig) -> TuneConfig {
    TuneConfig {
        readout,
        prompt_len: 4,
        init: PromptInit::Text("this movie review is".into()),
        seed: 3,
        split: SplitConfig {
            max_test: 120,
            max_selection: 60,
            shots: Some(8),
            ..Default::default()
        },
        gradient: GradientConfig {
            steps: 6,
            batch_size: 8,
            record_every: 3,
            ..Default::default()
        },
        max_len: 48,
        ..tandem::task::lookup("uci-imdb").unwrap().tune_config()
    }
}

fn run_tune(
    config: &TuneConfig,
    assets: &Assets,
    out: Option<&RunDir>,
) -> (TuneResult, Vec<TrajectoryPoint>) {
    tune::<support::CpuAd>(
        config,
        assets,
        &Default::default(),
        out,
        &ProgressBar::hidden(),
    )
    .unwrap()
}

#[test]
fn tune_writes_a_complete_reproducible_run_folder() {
    let assets = support::assets(&[MINILM, UCI_SENTIMENT]);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path().join("run")).unwrap();
    let config = small_config(ReadoutConfig::default());
    let (result, trajectory) = run_tune(&config, &assets, Some(&run));

    let yaml = std::fs::read_to_string(run.path().join("config.yaml")).unwrap();
    let back: TuneConfig = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(back, config, "config.yaml round-trips");

    let lines: Vec<TrajectoryPoint> = std::fs::read_to_string(run.path().join("trajectory.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, trajectory);
    assert_eq!(lines.iter().map(|p| p.step).collect::<Vec<_>>(), [3, 6]);
    assert!(lines
        .iter()
        .all(|p| p.token_ids.len() == 4 && p.distances.len() == 4));

    let saved: TuneResult =
        serde_json::from_slice(&std::fs::read(run.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(saved, result, "results.json holds the returned result");
    assert_eq!(saved.steps, 6);
    // The caps of the split config: 120 test and 60 selection examples of UCI IMDB's 1000.
    assert_eq!((saved.test.count, saved.selection.count), (120, 60));
    assert!(run.path().join("split.json").exists());

    // The same config gives the same result (same seed, same backend).
    let (again, _) = run_tune(&config, &assets, None);
    assert_eq!(again.test, result.test);
    assert_eq!(again.final_text, result.final_text);
}

#[test]
fn input_head_readout_runs_end_to_end() {
    let assets = support::assets(&[MINILM, UCI_SENTIMENT]);
    let mut config = small_config(ReadoutConfig::InputHead);
    config.split.max_test = 40;
    config.split.max_selection = 20;
    config.gradient.steps = 3;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path().join("run")).unwrap();
    let (result, trajectory) = run_tune(&config, &assets, Some(&run));
    assert_eq!(result.steps, 3);
    assert_eq!(trajectory.last().unwrap().step, 3);
    assert_eq!(result.readout, ReadoutConfig::InputHead);
    let yaml = std::fs::read_to_string(run.path().join("config.yaml")).unwrap();
    let back: TuneConfig = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(back.readout, ReadoutConfig::InputHead, "{yaml}");
    let saved: TuneResult =
        serde_json::from_slice(&std::fs::read(run.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(saved, result);
    // Training moved the model: the tuned prompt and head score differently from the initial.
    assert!(result.test.loss.is_finite());
    assert_ne!(result.test.loss, result.initial_test.loss);
    assert_ne!(result.selection.loss, result.initial_selection.loss);
}
