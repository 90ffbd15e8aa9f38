// `mr` on the frozen SmolLM2-135M decoder, read out by its next-token logits of the class words.
// The prompt sits after the snippet (snippet ⊕ prompt ⊕ cue), so each snippet's attention states
// are computed once and a step runs only the prompt and cue through the decoder; 100 selection
// and 200 test examples keep a run to minutes on two cores. The README's main job.
tandem::task! {
    name: "mr-decoder",
    description: "sentiment of movie-review snippets (Rotten Tomatoes): negative or positive",
    data: rotten_tomatoes,
    classes: ["negative", "positive"],
    backbone: smollm2,
    readout: verbalizer { cue: "\nSentiment:", position: suffix },
    prompt: { length: 4, init: "Overall, the review is" },
    metric: accuracy,
    shots: 8,
    split: { selection: 100, test: 200 },
}
