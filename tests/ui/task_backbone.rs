use tandem::task::TaskSpec;

// Model paths, and readouts that do not fit the backbone or the data.
const BERT_FOLDER: TaskSpec = tandem::task! {
    name: "a",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: bert("tests/ui/data/bert"),
};

const NOT_GGUF: TaskSpec = tandem::task! {
    name: "b",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: llama_gguf("tests/ui/data/model.gguf"),
};

const NO_MODEL: TaskSpec = tandem::task! {
    name: "c",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: bert("tests/ui/data/no-such-model"),
};

const DECODER_WITH_HEAD: TaskSpec = tandem::task! {
    name: "d",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: smollm2,
    readout: input_head,
};

const VERBALIZER_ON_ENCODER: TaskSpec = tandem::task! {
    name: "e",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    readout: verbalizer { cue: " " },
};

const PROMPT_IN_THE_MIDDLE: TaskSpec = tandem::task! {
    name: "m",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: smollm2,
    readout: verbalizer { cue: "\nAnswer:", position: middle },
};

const PAIRS_ON_CLASS_PROMPT: TaskSpec = tandem::task! {
    name: "f",
    description: "a task",
    data: jsonl("tests/ui/data/qa.jsonl", text: "question", pair: "answer", label: "answer"),
    classes: ["no", "yes"],
    readout: class_prompt,
};

const UNKNOWN: TaskSpec = tandem::task! {
    name: "g",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: gpt2("gpt2.bin"),
    metric: f1,
};

const PATH_NOT_STRING: TaskSpec = tandem::task! {
    name: "h",
    description: "a task",
    data: subj,
    classes: ["subjective", "objective"],
    backbone: llama_gguf(model, revision: 2),
};

fn main() {
    let _ = (
        BERT_FOLDER,
        NOT_GGUF,
        NO_MODEL,
        DECODER_WITH_HEAD,
        VERBALIZER_ON_ENCODER,
        PROMPT_IN_THE_MIDDLE,
        PAIRS_ON_CLASS_PROMPT,
        UNKNOWN,
        PATH_NOT_STRING,
    );
}
