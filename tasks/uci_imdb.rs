// UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015): IMDB movie reviews.
tandem::task! {
    name: "uci-imdb",
    description: "sentiment of IMDB review sentences: negative or positive",
    data: uci_imdb,
    classes: ["negative", "positive"],
    backbone: minilm,
    readout: class_prompt { scale: 20.0 },
    prompt: { length: 8, init: "this movie review is" },
    metric: accuracy,
    shots: 16,
}
