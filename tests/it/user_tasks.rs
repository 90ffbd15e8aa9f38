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

/// News headlines of four topics, one JSON object per line; selection by macro-F1.
const TOPICS: TaskSpec = tandem::task! {
    name: "topics",
    description: "the topic of a news headline: sports, politics, technology or food",
    data: jsonl("tests/fixtures/tasks/topics.jsonl", text: "headline", label: "topic"),
    classes: ["sports", "politics", "technology", "food"],
    readout: input_head,
    prompt: { length: 3, init: "this headline is about" },
    metric: macro_f1,
    shots: 4,
};

/// Sentence pairs, raw labels `1` (same meaning) and `0` renamed by the declared classes.
const PAIRS: TaskSpec = tandem::task! {
    name: "paraphrase",
    description: "whether the second sentence says the same as the first",
    data: csv(
        "tests/fixtures/tasks/pairs.csv",
        text: "first",
        pair: "second",
        label: "same",
        labels: [1, 0],
    ),
    classes: ["paraphrase", "different"],
    readout: input_head,
    prompt: { length: 3, init: "same meaning" },
    metric: mcc,
    shots: 4,
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
        // results.json holds the returned result; its counts are the split's sizes.
        let saved: tandem::engine::RunResult = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(saved, result);
        let split: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("split.json")).unwrap())
                .unwrap();
        let size = |name: &str| split["splits"][name].as_array().unwrap().len();
        assert_eq!(
            (result.selection.count, result.test.count),
            (size("selection"), size("test"))
        );
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

/// `mr` on the SmolLM2 decoder, as `examples/tasks/mr-smollm2.yaml` declares it.
const MR_SMOLLM2: TaskSpec = tandem::task! {
    name: "mr-smollm2",
    description: "sentiment of movie-review snippets (Rotten Tomatoes): negative or positive",
    data: rotten_tomatoes,
    classes: ["negative", "positive"],
    backbone: smollm2,
    readout: verbalizer { cue: "\nSentiment:" },
    prompt: { length: 4, init: "Movie review:" },
    shots: 8,
};

/// The example YAML files read as the `task!` declarations of the same tasks, and a decoder
/// without a readout gets the verbalizer with its default cue.
#[test]
fn task_macro_and_yaml_examples_declare_the_same_tasks() {
    assert_eq!(
        tandem::task::resolve("examples/tasks/mr-smollm2.yaml").unwrap(),
        MR_SMOLLM2
    );
    assert_eq!(
        tandem::task::resolve("examples/tasks/topics.yaml").unwrap(),
        TOPICS
    );
    // A relative path in `task!` is anchored at the crate root.
    let (_, file) = TOPICS.data.file().unwrap();
    assert_eq!(
        std::path::Path::new(file.path.as_ref()),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasks/topics.jsonl")
    );
    const DEFAULT_READOUT: TaskSpec = tandem::task! {
        name: "d",
        description: "a decoder task",
        data: subj,
        classes: ["subjective", "objective"],
        backbone: smollm2,
    };
    assert_eq!(
        DEFAULT_READOUT.readout,
        tandem::readout::ReadoutConfig::Verbalizer {
            cue: tandem::readout::DEFAULT_CUE.into(),
            position: tandem::readout::PromptPosition::Prefix,
        }
    );
    assert!(DEFAULT_READOUT.validate().is_ok());
    assert!(MR_SMOLLM2.validate().is_ok() && PAIRS.validate().is_ok());
}
