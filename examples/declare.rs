//! Declares a task, a template and a schedule with tandem's DSL and prints the resolved run
//! configuration and the rendered meta-prompt.

use tandem::mentor::{MetaPromptContext, TypedTemplate};
use tandem::task::TaskSpec;

/// The task: corpus, class names, backbone, readout, prompt, what the mentor is told.
const MR: TaskSpec = tandem::task! {
    name: "mr-short",
    description: "sentiment of movie-review snippets: negative or positive",
    data: rotten_tomatoes,
    classes: ["negative", "positive"],
    backbone: minilm,
    readout: class_prompt { scale: 20.0 },
    prompt: { length: 4, init: "this movie review is" },
    metric: accuracy,
    shots: 16,
};

/// A meta-prompt bound to the engine's context; a variable the context lacks does not compile.
const TERSE: TypedTemplate<MetaPromptContext> = tandem::template! {
    name: "terse",
    file: "templates/opro.hbs",
    context: MetaPromptContext,
};

fn main() -> tandem::Result<()> {
    let schedule = tandem::schedule! {
        name: "two-rounds",
        rounds: 2,
        steps_per_round: 40,
        final_steps: 20,
        restart: best,
        mentor: { template: "templates/opro.hbs", candidates: 5, sample: 4, temperature: 0.7 },
    };
    // Known by name from now on, to `tune`, `run_schedule` and the CLI's lookups.
    tandem::task::register(MR);
    let config = tandem::engine::RunConfig {
        task: MR.tune_config(),
        schedule,
    };
    config
        .schedule
        .validate(config.task.gradient.record_every)?;
    // What the run would write as its config.yaml.
    print!(
        "{}",
        serde_yaml::to_string(&config).expect("a config serializes")
    );
    let context = MetaPromptContext::new(MR.description, Vec::new(), 5, 12);
    println!("{}", TERSE.render(&context)?);
    Ok(())
}
