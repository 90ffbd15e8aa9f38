use tandem::task::TaskSpec;

const WRONG_CLASSES: TaskSpec = tandem::task! {
    name: "My Task",
    description: "",
    data: rotten_tomatoes,
    classes: ["bad", "good", "bad"],
    readout: class_prompt { scale: 0.0 },
    prompt: { length: 0, init: "  " },
    shots: 0,
    split: { selection: 0, tests: 200 },
};

const UNKNOWN: TaskSpec = tandem::task! {
    name: "x",
    description: "a task",
    data: imdb,
    classes: ["negative", 1],
    backbone: gpt2,
    readout: input_head { scale: 2.0 },
    metric: f1,
    prompt: { length: 8, init: random },
    shots: some,
};

const MISSING: TaskSpec = tandem::task! {
    name: "y",
    data: subj,
};

fn main() {
    let _ = (WRONG_CLASSES, UNKNOWN, MISSING);
}
