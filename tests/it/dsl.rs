//! Schedules declared with the DSL are data: they equal the built-ins declared the same way,
//! serialize to YAML and back unchanged, and run through the engine's validation.

use tandem::engine::{ArmSource, MentorStage, Restart, Schedule, BUILTIN_SCHEDULES};
use tandem::mentor::{Protocol, Sampling};

#[test]
fn a_declared_schedule_is_the_value_it_reads_as() {
    let s = tandem::schedule! {
        name: "catalyst",
        rounds: 4,
        steps_per_round: 20,
        final_steps: 20,
        restart: best,
        mentor: { template: "catalyst", candidates: 3, history: 8, sample: 4, word_limit: 12 },
    };
    // Every field spelled out: the macro's defaults (history, sampling) are checked, not
    // compared with another expansion of the same macro.
    let literal = Schedule {
        name: "catalyst".into(),
        rounds: 4,
        steps_per_round: 20,
        final_steps: 20,
        mentor: Some(MentorStage {
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
        }),
        restart: Restart::Best,
        probe: None,
    };
    assert_eq!(s, literal);
    assert_eq!(Schedule::builtin("catalyst").unwrap(), literal);
    let yaml = serde_yaml::to_string(&s).unwrap();
    assert_eq!(serde_yaml::from_str::<Schedule>(&yaml).unwrap(), s);
    let custom = tandem::schedule! {
        name: "two-rounds",
        rounds: 2,
        steps_per_round: 30,
        final_steps: 40,
        restart: best,
        record_every: 10,
        mentor: { template: "templates/opro.hbs", candidates: 5, sample: 3, temperature: 1.0, seed: 9 },
    };
    assert_eq!(custom.gradient_steps(), 100);
    assert_eq!(custom.restart, Restart::Best);
    let m = custom.mentor.as_ref().unwrap();
    assert_eq!((m.candidates, m.sample, m.history), (5, 3, 8));
    assert_eq!((m.sampling.temperature, m.sampling.seed), (1.0, 9));
    assert_eq!(m.template, "templates/opro.hbs");
    assert_eq!(m.protocol, Protocol::Instruction);
    custom.validate(10).unwrap();
    // The list protocol reads as itself, is saved by name and equals the built-in's stage.
    let listed = tandem::schedule! {
        name: "listed",
        rounds: 1,
        steps_per_round: 20,
        restart: best,
        mentor: { protocol: list, template: "list" },
    };
    let m = listed.mentor.as_ref().unwrap();
    assert_eq!((m.protocol, m.template.as_str()), (Protocol::List, "list"));
    let yaml = serde_yaml::to_string(&listed).unwrap();
    assert!(yaml.contains("protocol: list"), "{yaml}");
    assert!(!serde_yaml::to_string(&s).unwrap().contains("protocol"));
    assert_eq!(
        Schedule::builtin("list-probe").unwrap().mentor.as_ref(),
        Some(m)
    );
}

/// Probes and the new restarts read as the values they declare; every built-in (the probe
/// family declared through `schedule!` too) passes the engine's validation and survives YAML.
#[test]
fn a_declared_probe_is_the_value_it_reads_as() {
    let s = tandem::schedule! {
        name: "probed",
        rounds: 2,
        steps_per_round: 10,
        final_steps: 4,
        restart: probe,
        mentor: { template: "catalyst", candidates: 2, sample: 2, shuffle_scores: true, mask: true },
        probe: { steps: 2, keep: 0.5, rungs: 3, proposals: 4, margin: 0.02 },
    };
    let p = s.probe.as_ref().unwrap();
    assert_eq!((p.steps, p.keep, p.rungs, p.proposals), (2, 0.5, 3, 4));
    assert_eq!((p.arms, p.margin), (ArmSource::Mentor, 0.02));
    assert!(s.mentor.as_ref().unwrap().shuffle_scores);
    assert_eq!(
        s.mentor.as_ref().unwrap().line_mask(),
        Some(tandem::decoder::LineMask {
            lines: 2,
            words: 12
        })
    );
    assert_eq!(s.restart, Restart::Probe);
    // Rungs of 5, 3 and 2 arms at 2, 4 and 8 steps: 10 + 12 + 16 per round.
    assert_eq!(s.gradient_steps(), 2 * (10 + 38) + 4);
    s.validate(5).unwrap();
    let yaml = serde_yaml::to_string(&s).unwrap();
    assert!(
        yaml.contains("probe:")
            && yaml.contains("shuffle_scores: true")
            && yaml.contains("mask: true"),
        "{yaml}"
    );
    assert_eq!(serde_yaml::from_str::<Schedule>(&yaml).unwrap(), s);
    // Several calls of the edit protocol, fitted to the prompt, and a screen: the built-in
    // `edit-screen-probe` declared again.
    let screened = tandem::schedule! {
        name: "edit-screen-probe",
        rounds: 3,
        steps_per_round: 20,
        final_steps: 16,
        restart: probe,
        mentor: {
            protocol: edit, template: "edit", candidates: 2, calls: 8,
            temperatures: [0.7, 1], fit: true, mask: true,
        },
        probe: { arms: mentor, screen: { candidates: 16, examples: 100 } },
    };
    assert_eq!(screened, Schedule::builtin("edit-screen-probe").unwrap());
    let m = screened.mentor.as_ref().unwrap();
    assert_eq!((m.protocol, m.calls, m.fit), (Protocol::Edit, 8, true));
    assert_eq!(m.temperatures, [0.7, 1.0]);
    let screen = screened.probe.as_ref().unwrap().screen.unwrap();
    assert_eq!((screen.candidates, screen.examples), (16, 100));
    // A field left out of the screen takes `Screen::default()`'s.
    let partial = tandem::schedule! {
        name: "partial",
        rounds: 1,
        steps_per_round: 10,
        restart: probe,
        probe: { arms: random, screen: { candidates: 8 } },
    };
    let screen = partial.probe.as_ref().unwrap().screen.unwrap();
    assert_eq!((screen.candidates, screen.examples), (8, 100));
    let reference = tandem::schedule! {
        name: "ref",
        rounds: 1,
        steps_per_round: 5,
        restart: reference,
        mentor: { sample: 1 },
    };
    assert_eq!(reference.restart, Restart::Reference);
    assert!(reference.probe.is_none());
    for name in BUILTIN_SCHEDULES {
        let s = Schedule::builtin(name).unwrap();
        s.validate(5).unwrap();
        let yaml = serde_yaml::to_string(&s).unwrap();
        assert_eq!(
            serde_yaml::from_str::<Schedule>(&yaml).unwrap(),
            s,
            "{name}"
        );
    }
}

/// A task of the program's own, declared like the built-ins in `tasks/`.
const TERSE_MR: tandem::task::TaskSpec = tandem::task! {
    name: "mr-terse",
    description: "movie review sentiment",
    data: rotten_tomatoes,
    classes: ["bad", "good"],
    readout: input_head,
    prompt: { length: 4, init: random_vocab },
    shots: all,
};

#[test]
fn declared_tasks_carry_every_field_into_the_tuning_config() {
    use tandem::prompt::PromptInit;
    use tandem::readout::ReadoutConfig;
    use tandem::task::{lookup, Corpus, DataSource, InitSpec};

    let mr = lookup("mr").unwrap();
    assert_eq!(mr.data, DataSource::Corpus(Corpus::RottenTomatoes));
    assert_eq!(mr.classes.as_ref(), ["negative", "positive"]);
    assert_eq!(
        mr.prompt.init,
        InitSpec::Text("this movie review is".into())
    );
    let c = mr.tune_config();
    assert_eq!(
        (c.task.as_str(), c.prompt_len, c.split.shots),
        ("mr", 8, Some(16))
    );
    assert_eq!(c.init, PromptInit::Text("this movie review is".into()));
    assert_eq!(c.readout, ReadoutConfig::ClassPrompt { scale: 20.0 });
    c.validate().unwrap();

    let t = TERSE_MR.tune_config();
    assert_eq!((t.prompt_len, t.split.shots), (4, None));
    assert_eq!(t.readout, ReadoutConfig::InputHead);
    assert_eq!(t.init, PromptInit::RandomVocab);
    assert!(
        lookup("mr-terse").is_err(),
        "unregistered tasks are unknown"
    );
    tandem::task::register(TERSE_MR);
    assert_eq!(lookup("mr-terse").unwrap(), TERSE_MR);
    t.validate().unwrap();
    let names: Vec<_> = tandem::task::all_tasks()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names[0], "mr-terse");
    assert!(names.contains(&"uci-amazon".to_string()));
}

/// A context of the program's own, with a nested list and a nested record.
#[derive(serde::Serialize)]
struct Review {
    title: String,
    notes: Vec<Note>,
    summary: Note,
}

#[derive(serde::Serialize)]
struct Note {
    text: String,
    score: f64,
}

const REVIEW: tandem::mentor::TypedTemplate<Review> = tandem::template! {
    name: "review",
    file: "tests/fixtures/review.hbs",
    context: Review,
};

#[test]
fn a_template_bound_to_its_context_renders_it() {
    let note = |text: &str, score| Note {
        text: text.into(),
        score,
    };
    let text = REVIEW
        .render(&Review {
            title: "two notes".into(),
            notes: vec![note("first", 0.5), note("second", 0.25)],
            summary: note("overall", 0.375),
        })
        .unwrap();
    assert_eq!(
        text,
        "# two notes\n0. first (0.50 of two notes)\n1. second (0.25 of two notes)\noverall: 37.5\n"
    );
    assert_eq!(REVIEW.name(), "review");
    for t in tandem::mentor::BUILTIN_TEMPLATES {
        assert_eq!(
            t.source(),
            std::fs::read_to_string(format!("templates/{}.hbs", t.name())).unwrap()
        );
    }
}
