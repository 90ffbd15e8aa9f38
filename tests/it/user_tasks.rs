//! Experiments on the user's own data: a 4-class task on a JSONL file and a sentence-pair task
//! on a CSV file, declared in Rust with `task!` and as YAML files, tuned and run with `catalyst`
//! (the embedded SmolLM2 mentor) end to end. The YAML task and the `task!` give the same
//! `config.yaml`; the task's metric drives selection; every result carries all three metrics.

use tandem::assets::{MINILM, SMOLLM2};
use tandem::decoder::ChatLlm;
use tandem::engine::{run_schedule, RunConfig, RunIo, RunResult, Schedule};
use tandem::mentor::LocalMentor;
use tandem::run::RunDir;
use tandem::task::{Metric, TaskSpec};

use crate::support;

// The `task!` grammar for data files (`jsonl("…", text: …, label: …)`) is not in this release's
// macro yet; the same declarations are written as the constants the macro expands to.
use std::borrow::Cow;
use tandem::readout::ReadoutConfig;
use tandem::task::{BackboneSpec, DataSource, FileSource, InitSpec, PromptSpec, SelectionSplit};

/// News headlines of four topics, one JSON object per line.
const TOPICS: TaskSpec = TaskSpec {
    name: Cow::Borrowed("topics"),
    description: Cow::Borrowed(
        "the topic of a news headline: sports, politics, technology or food",
    ),
    data: DataSource::Jsonl(FileSource {
        path: Cow::Borrowed("tests/fixtures/tasks/topics.jsonl"),
        text: Cow::Borrowed("headline"),
        pair: None,
        label: Cow::Borrowed("topic"),
        labels: None,
        selection: SelectionSplit::Validation,
    }),
    classes: Cow::Borrowed(&[
        Cow::Borrowed("sports"),
        Cow::Borrowed("politics"),
        Cow::Borrowed("technology"),
        Cow::Borrowed("food"),
    ]),
    backbone: BackboneSpec::MiniLm,
    readout: ReadoutConfig::InputHead,
    prompt: PromptSpec {
        length: 3,
        init: InitSpec::Text(Cow::Borrowed("this headline is about")),
    },
    metric: Metric::MacroF1,
    shots: Some(4),
};

/// Sentence pairs, raw labels `1` (same meaning) and `0` renamed by the declared classes.
const PAIRS: TaskSpec = TaskSpec {
    name: Cow::Borrowed("paraphrase"),
    description: Cow::Borrowed("whether the second sentence says the same as the first"),
    data: DataSource::Csv(FileSource {
        path: Cow::Borrowed("tests/fixtures/tasks/pairs.csv"),
        text: Cow::Borrowed("first"),
        pair: Some(Cow::Borrowed("second")),
        label: Cow::Borrowed("same"),
        labels: Some(Cow::Borrowed(&[Cow::Borrowed("1"), Cow::Borrowed("0")])),
        selection: SelectionSplit::Validation,
    }),
    classes: Cow::Borrowed(&[Cow::Borrowed("paraphrase"), Cow::Borrowed("different")]),
    backbone: BackboneSpec::MiniLm,
    readout: ReadoutConfig::InputHead,
    prompt: PromptSpec {
        length: 3,
        init: InitSpec::Text(Cow::Borrowed("same meaning")),
    },
    metric: Metric::Mcc,
    shots: Some(4),
};

const TOPICS_YAML: &str = r#"
name: topics
description: "the topic of a news headline: sports, politics, technology or food"
data: !jsonl
  path: tests/fixtures/tasks/topics.jsonl
  text: headline
  label: topic
classes: [sports, politics, technology, food]
readout: input-head
prompt: { length: 3, init: !text "this headline is about" }
metric: macro_f1
shots: 4
"#;

const PAIRS_YAML: &str = r#"
name: paraphrase
description: "whether the second sentence says the same as the first"
data: !csv
  path: tests/fixtures/tasks/pairs.csv
  text: first
  pair: second
  label: same
  labels: ["1", "0"]
classes: [paraphrase, different]
readout: input-head
prompt: { length: 3, init: !text "same meaning" }
metric: mcc
shots: 4
"#;

/// A short catalyst schedule: 2 rounds of 4 steps and a final 4, two sampled texts, short replies.
fn catalyst() -> Schedule {
    let mut s = Schedule::builtin("catalyst").unwrap();
    s.rounds = 2;
    s.steps_per_round = 4;
    s.final_steps = 4;
    if let Some(m) = s.mentor.as_mut() {
        m.sample = 2;
        m.sampling.max_tokens = 40;
    }
    s
}

fn run_config(spec: &TaskSpec) -> RunConfig {
    let mut task = spec.tune_config();
    task.gradient.batch_size = 4;
    task.gradient.record_every = 1;
    task.max_len = 40;
    RunConfig {
        task,
        schedule: catalyst(),
    }
}

fn run(config: &RunConfig, mentor: &mut LocalMentor<support::Cpu>, out: &RunDir) -> RunResult {
    let assets = support::assets(&[MINILM, SMOLLM2]);
    let io = RunIo {
        mentor: Some(mentor),
        out: Some(out),
        ..RunIo::default()
    };
    run_schedule::<support::CpuAd>(config, &assets, &Default::default(), io)
        .unwrap()
        .0
}

#[test]
fn file_tasks_declared_in_rust_and_yaml_run_catalyst_end_to_end() {
    let assets = support::assets(&[MINILM, SMOLLM2]);
    let llm = ChatLlm::<support::Cpu>::load(&assets.path(&SMOLLM2.files[0]), &Default::default())
        .unwrap();
    let mut mentor = LocalMentor::new(llm);
    let tmp = tempfile::tempdir().unwrap();
    for (spec, yaml, classes, metric) in [
        (TOPICS, TOPICS_YAML, 4, Metric::MacroF1),
        (PAIRS, PAIRS_YAML, 2, Metric::Mcc),
    ] {
        // The YAML file, written by the test, reads as the same task as the `task!`.
        let file = tmp.path().join(format!("{}.yaml", spec.name));
        std::fs::write(&file, yaml).unwrap();
        let from_yaml = tandem::task::resolve(file.to_str().unwrap()).unwrap();
        assert_eq!(from_yaml, spec);
        let (rust_cfg, yaml_cfg) = (run_config(&spec), run_config(&from_yaml));
        assert_eq!(
            serde_yaml::to_string(&rust_cfg).unwrap(),
            serde_yaml::to_string(&yaml_cfg).unwrap()
        );
        assert_eq!(rust_cfg.task.classes.len(), classes);
        let out = RunDir::create(tmp.path().join(spec.name.as_ref())).unwrap();
        let result = run(&yaml_cfg, &mut mentor, &out);
        assert_eq!(result.metric, metric);
        assert_eq!(result.gradient_steps, 12);
        assert_eq!(result.llm_calls, 2);
        for m in [result.selection, result.test] {
            assert!(m.count > 0);
            assert!((0.0..=1.0).contains(&m.accuracy) && (0.0..=1.0).contains(&m.macro_f1));
            assert!((-1.0..=1.0).contains(&m.mcc));
        }
        // The run folder records the task itself: its config.yaml is the configuration.
        let written = std::fs::read_to_string(out.path().join("config.yaml")).unwrap();
        assert_eq!(
            serde_yaml::from_str::<RunConfig>(&written).unwrap(),
            yaml_cfg
        );
        let split: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("split.json")).unwrap())
                .unwrap();
        assert_eq!(split["class_names"].as_array().unwrap().len(), classes);
        let rounds = std::fs::read_to_string(out.path().join("rounds.jsonl")).unwrap();
        assert_eq!(rounds.lines().count(), 2);
    }
}

/// The task's metric chooses the final prompt: selection by macro-F1 never ends below the best
/// macro-F1 of any prompt the run scored.
#[test]
fn selection_follows_the_tasks_metric() {
    let assets = support::assets(&[MINILM, SMOLLM2]);
    let llm = ChatLlm::<support::Cpu>::load(&assets.path(&SMOLLM2.files[0]), &Default::default())
        .unwrap();
    let mut mentor = LocalMentor::new(llm);
    let tmp = tempfile::tempdir().unwrap();
    let out = RunDir::create(tmp.path().join("topics")).unwrap();
    let result = run(&run_config(&TOPICS), &mut mentor, &out);
    let rounds = std::fs::read_to_string(out.path().join("rounds.jsonl")).unwrap();
    let best = rounds
        .lines()
        .map(|l| serde_json::from_str::<tandem::engine::RoundRecord>(l).unwrap())
        .flat_map(|r| r.scored)
        .map(|s| s.selection.macro_f1)
        .fold(f64::MIN, f64::max);
    assert!(
        result.selection.macro_f1 >= best - 1e-12,
        "final {} < best scored {best}",
        result.selection.macro_f1
    );
}
