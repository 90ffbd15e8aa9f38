// Rotten Tomatoes movie-review snippets (Pang & Lee 2005), the paper's MR task.
tandem::task! {
    name: "mr",
    description: "sentiment of movie-review snippets (Rotten Tomatoes): negative or positive",
    data: rotten_tomatoes,
    classes: ["negative", "positive"],
    backbone: minilm,
    readout: class_prompt { scale: 20.0 },
    prompt: { length: 8, init: "this movie review is" },
    metric: accuracy,
    shots: 16,
}
