// UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015): Amazon product reviews.
tandem::task! {
    name: "uci-amazon",
    description: "sentiment of Amazon product-review sentences: negative or positive",
    data: uci_amazon,
    classes: ["negative", "positive"],
    backbone: minilm,
    readout: class_prompt { scale: 20.0 },
    prompt: { length: 8, init: "this product review is" },
    metric: accuracy,
    shots: 16,
}
