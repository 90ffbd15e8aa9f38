// Subjectivity (Pang & Lee 2004): review snippets vs plot summaries, the paper's SUBJ task.
tandem::task! {
    name: "subj",
    description: "whether a movie text is a subjective review snippet or an objective plot summary",
    data: subj,
    classes: ["objective", "subjective"],
    backbone: minilm,
    readout: class_prompt { scale: 20.0 },
    prompt: { length: 8, init: "this text is" },
    metric: accuracy,
    shots: 16,
}
