//! Schedules declared with the DSL are data: they equal the built-ins declared the same way,
//! serialize to YAML and back unchanged, and run through the engine's validation.

use tandem::engine::{Restart, Schedule};

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
    assert_eq!(s, Schedule::builtin("catalyst").unwrap());
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
    custom.validate(10).unwrap();
}
