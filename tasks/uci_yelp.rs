// UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015): Yelp restaurant reviews.
tandem::task! {
    name: "uci-yelp",
    description: "sentiment of Yelp restaurant-review sentences: negative or positive",
    data: uci_yelp,
    classes: ["negative", "positive"],
    backbone: minilm,
    readout: class_prompt { scale: 20.0 },
    prompt: { length: 8, init: "this restaurant review is" },
    metric: accuracy,
    shots: 16,
}
