//! The verbalizer readout on the frozen SmolLM2 decoder: its class scores are the decoder's
//! next-token logits, and gradient steps move the soft prompt only. Tiny on purpose: a 30-layer
//! decoder forward and backward is heavy on two CPU cores.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use tandem::assets::SMOLLM2;
use tandem::decoder::{ChatLlm, DecoderTokenizer, GgufFile, Llama};
use tandem::prompt::SoftPrompt;
use tandem::readout::{
    EncodedData, EncodedSplit, PromptModel, PromptPosition, Readout, SplitName, VerbalizerReadout,
};

use crate::support::{assets, f32_network_bound, Cpu, CpuAd};

const TEXTS: [(&str, usize); 6] = [
    ("A warm, funny and beautifully acted film.", 1),
    ("Dull, slow and far too long.", 0),
    (
        "One of the best movies of the year, a delight from start to finish.",
        1,
    ),
    ("The plot makes no sense and the jokes fall flat.", 0),
    ("Charming.", 1),
    ("I wanted my two hours back after this mess of a sequel.", 0),
];
const CUE: &str = "\nSentiment:";

/// Twenty inputs of many lengths (pairs of the texts), more than one chunk of the input cache's
/// build: the selection split.
fn pairs() -> Vec<(String, usize)> {
    (0..20)
        .map(|k| {
            let (a, label) = TEXTS[k % 6];
            (format!("{a} {}", TEXTS[(k / 6 + k) % 6].0), label)
        })
        .collect()
}

fn data(tok: &DecoderTokenizer) -> EncodedData {
    let split = |texts: &[(&str, usize)]| EncodedSplit {
        tokens: texts
            .iter()
            .map(|(t, _)| tok.encode_plain(t).unwrap())
            .collect(),
        labels: texts.iter().map(|(_, l)| *l).collect(),
    };
    let pairs = pairs();
    let pairs: Vec<(&str, usize)> = pairs.iter().map(|(t, l)| (t.as_str(), *l)).collect();
    EncodedData {
        class_names: vec!["negative".into(), "positive".into()],
        train: split(&TEXTS),
        selection: split(&pairs),
        test: split(&TEXTS),
    }
}

fn readout<B: burn::tensor::backend::Backend>(
    position: PromptPosition,
) -> (VerbalizerReadout<B>, DecoderTokenizer) {
    let a = assets(&[SMOLLM2]);
    let path = a.path(&SMOLLM2.files[0]);
    let file = GgufFile::open(&path).unwrap();
    let tok = DecoderTokenizer::from_vocab(&file.vocab().unwrap(), &path).unwrap();
    let decoder = Llama::<B>::from_gguf(&file, &Default::default()).unwrap();
    let words = vec!["negative".to_string(), "positive".to_string()];
    let r = VerbalizerReadout::new(decoder, &tok, data(&tok), CUE, &words, 64, position).unwrap();
    (r, tok)
}

/// With a prompt made of real token embeddings, the readout's scores are the decoder's
/// next-token logits of " negative" / " positive" after prompt ⊕ text ⊕ cue up to f32 rounding,
/// for a batch of inputs of different lengths (padding and the gather of the last position are
/// right).
#[test]
fn scores_are_the_decoders_next_token_logits() {
    let (r, tok) = readout::<Cpu>(PromptPosition::Prefix);
    let init = "Review of a movie:";
    let len = tok.encode_plain(init).unwrap().len();
    let model = PromptModel {
        prompt: SoftPrompt::from_tensor(r.prompt_rows(&tok, init, len).unwrap()),
        head: None,
    };
    let idx: Vec<usize> = (0..TEXTS.len()).collect();
    let logits: Vec<f32> = r
        .logits(&model, SplitName::Test, &idx)
        .into_data()
        .iter::<f32>()
        .collect();
    let a = assets(&[SMOLLM2]);
    let llm =
        ChatLlm::<Cpu>::load_with(&a.path(&SMOLLM2.files[0]), &Default::default(), false).unwrap();
    let words = r.verbalizers().to_vec();
    let mut worst = 0f64;
    for (i, (text, _)) in TEXTS.iter().enumerate() {
        // Token boundaries: prompt, text and cue are tokenized separately by the readout.
        let ids: Vec<u32> = tok
            .encode_plain(init)
            .unwrap()
            .into_iter()
            .chain(tok.encode_plain(text).unwrap())
            .chain(tok.encode_plain(CUE).unwrap())
            .collect();
        let row = &llm.sequence_logits(&ids, 1).unwrap()[0];
        // Two f32 evaluations (batched and padded, or one sequence), each within the rounding
        // bound of exact arithmetic relative to the row's largest logit.
        let scale = row.iter().fold(0f32, |m, l| m.max(l.abs())) as f64;
        let config = llm.model().config();
        let bound = 2.0 * f32_network_bound(config.num_layers, config.intermediate_size, scale);
        for (c, &w) in words.iter().enumerate() {
            let got = logits[i * 2 + c];
            let err = (got - row[w as usize]).abs() as f64;
            assert!(
                err <= bound,
                "text {i} class {c}: {got} vs {} (bound {bound:.2e})",
                row[w as usize]
            );
            worst = worst.max(err / bound);
        }
    }
    eprintln!("worst |readout - decoder| logit: {worst:.2e} of its rounding bound");
}

/// With the prompt after the input, the scores are the decoder's next-token logits after
/// text ⊕ prompt ⊕ cue in one full pass: on the kept training and test splits (rows out of
/// order and repeated, inputs of different lengths left-padded in the cache) and on the
/// selection split, whose inputs are built in chunks of similar length, each at its own width.
/// The same on the host decoder (CPU backends' scoring), whose states are built unpadded.
#[test]
fn suffix_scores_are_the_logits_after_text_then_prompt() {
    suffix_scores(false);
    suffix_scores(true);
}

fn suffix_scores(on_host: bool) {
    let (r, tok) = readout::<Cpu>(PromptPosition::Suffix);
    let r = if on_host {
        let frozen = std::sync::Arc::new(r.decoder().frozen());
        r.with_frozen(frozen)
    } else {
        r
    };
    let init = "Is it positive?";
    let len = tok.encode_plain(init).unwrap().len();
    let model = PromptModel {
        prompt: SoftPrompt::from_tensor(r.prompt_rows(&tok, init, len).unwrap()),
        head: None,
    };
    let a = assets(&[SMOLLM2]);
    let llm =
        ChatLlm::<Cpu>::load_with(&a.path(&SMOLLM2.files[0]), &Default::default(), false).unwrap();
    let words = r.verbalizers().to_vec();
    let pairs = pairs();
    for (split, idx) in [
        (SplitName::Train, vec![4, 0, 2, 0, 5]),
        (SplitName::Test, vec![5, 1, 3]),
        (SplitName::Train, vec![3]),
        (SplitName::Selection, vec![19, 4, 11, 0, 7]),
    ] {
        let logits = match on_host {
            true => r
                .logits_on_host(&model.prompt.rows(), split, &idx)
                .expect("the host path applies"),
            false => r.logits(&model, split, &idx),
        };
        let logits: Vec<f32> = logits.into_data().iter::<f32>().collect();
        for (row, &i) in idx.iter().enumerate() {
            let text = match split {
                SplitName::Selection => pairs[i].0.as_str(),
                _ => TEXTS[i].0,
            };
            let ids: Vec<u32> = [text, init, CUE]
                .iter()
                .flat_map(|t| tok.encode_plain(t).unwrap())
                .collect();
            let full = &llm.sequence_logits(&ids, 1).unwrap()[0];
            for (c, &w) in words.iter().enumerate() {
                let got = logits[row * 2 + c];
                assert!(
                    (got - full[w as usize]).abs() < 2e-3,
                    "{split:?} row {row} (text {i}) class {c}, host {on_host}: {got} vs {}",
                    full[w as usize]
                );
            }
        }
    }
}

/// The host decoder's loss and prompt gradient (CPU backends' training step) equal burn's
/// autodiff through the same decoder, with the prompt after the input (continuing the cached
/// inputs) and before it (prompt ⊕ input ⊕ cue packed, unpadded), for a batch over the kept
/// training split and the selection split (built in chunks, inputs of different lengths, rows
/// repeated).
#[test]
fn host_loss_equals_autodiff() {
    for position in [PromptPosition::Suffix, PromptPosition::Prefix] {
        let (r, tok) = readout::<CpuAd>(position);
        // Its own input cache: the states are built on the host too.
        let host = r
            .clone()
            .with_input_cache(Default::default())
            .with_frozen(std::sync::Arc::new(r.decoder().frozen()));
        let model = PromptModel {
            prompt: SoftPrompt::from_tensor(r.prompt_rows(&tok, "Is it positive?", 5).unwrap()),
            head: None,
        };
        for (split, idx) in [
            (SplitName::Train, vec![4, 0, 2, 0, 5]),
            (SplitName::Selection, vec![19, 4, 11]),
        ] {
            crate::support::assert_host_loss_equals_autodiff(
                &r,
                &host,
                &model,
                split,
                &idx,
                (1e-4, 1e-3),
            );
        }
    }
}

/// Gradient steps through the frozen decoder lower the loss by moving the prompt only, with
/// the prompt before the input and after it.
#[test]
fn prompt_tuning_lowers_the_loss_and_moves_only_the_prompt() {
    for position in [PromptPosition::Prefix, PromptPosition::Suffix] {
        tune_moves_only_the_prompt(position);
    }
}

fn tune_moves_only_the_prompt(position: PromptPosition) {
    let (r, tok) = readout::<CpuAd>(position);
    let rows = r.prompt_rows(&tok, "Text:", 4).unwrap();
    let mut model = PromptModel {
        prompt: SoftPrompt::from_tensor(rows.clone()),
        head: None,
    };
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let idx: Vec<usize> = (0..TEXTS.len()).collect();
    let mut losses = Vec::new();
    for _ in 0..4 {
        let loss = r.loss(&model, SplitName::Train, &idx);
        losses.push(loss.clone().into_scalar().elem::<f64>());
        let grads = loss.backward();
        let (matrices, vectors) = r.decoder().weights();
        assert!(
            matrices.iter().all(|t| t.grad(&grads).is_none())
                && vectors.iter().all(|t| t.grad(&grads).is_none()),
            "{position:?}: a gradient reached the decoder"
        );
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(5e-3, model, grads);
    }
    let last = r
        .loss(&model, SplitName::Train, &idx)
        .into_scalar()
        .elem::<f64>();
    assert!(
        last < losses[0],
        "{position:?}: loss went {losses:?} -> {last}"
    );
    let moved: f32 = (model.prompt.rows() - rows)
        .abs()
        .max()
        .into_scalar()
        .elem();
    assert!(moved > 0.0);
    assert_eq!(
        r.decoder().num_params(),
        0,
        "the decoder has no trainable parameters"
    );
}

/// Class words of several tokens are scored by the log-likelihood of the whole word: for each
/// class, the sum over its tokens of the decoder's teacher-forced log-probability after
/// prompt ⊕ text ⊕ cue (⊕ the word's earlier tokens), computed here from the decoder's own
/// next-token logits.
#[test]
fn multi_token_class_words_are_scored_by_their_whole_log_likelihood() {
    let a = assets(&[SMOLLM2]);
    let path = a.path(&SMOLLM2.files[0]);
    let file = GgufFile::open(&path).unwrap();
    let tok = DecoderTokenizer::from_vocab(&file.vocab().unwrap(), &path).unwrap();
    let decoder = Llama::<Cpu>::from_gguf(&file, &Default::default()).unwrap();
    let words = vec![
        "thoroughly disappointing".to_string(),
        "thoroughly delightful".to_string(),
    ];
    let position = PromptPosition::Prefix;
    let r = VerbalizerReadout::new(decoder, &tok, data(&tok), CUE, &words, 64, position).unwrap();
    assert!(!r.single_token(), "{:?}", r.words());
    assert!(r.words().iter().all(|w| w.len() >= 2), "{:?}", r.words());
    assert_eq!(
        r.verbalizers()[0],
        r.verbalizers()[1],
        "the words share their first token, which the first-token readout could not tell apart"
    );
    let init = "Review:";
    let len = tok.encode_plain(init).unwrap().len();
    let model = PromptModel {
        prompt: SoftPrompt::from_tensor(r.prompt_rows(&tok, init, len).unwrap()),
        head: None,
    };
    let idx: Vec<usize> = (0..3).collect();
    let scores: Vec<f32> = r
        .logits(&model, SplitName::Test, &idx)
        .into_data()
        .iter::<f32>()
        .collect();
    let llm = ChatLlm::<Cpu>::load_with(&path, &Default::default(), false).unwrap();
    for (i, (text, _)) in TEXTS.iter().take(3).enumerate() {
        for (c, word) in r.words().iter().enumerate() {
            let ids: Vec<u32> = tok
                .encode_plain(init)
                .unwrap()
                .into_iter()
                .chain(tok.encode_plain(text).unwrap())
                .chain(tok.encode_plain(CUE).unwrap())
                .chain(word.iter().copied())
                .collect();
            // Rows predicting each of the word's tokens: the last `word.len()` positions before it.
            let rows = llm
                .sequence_logits(&ids[..ids.len() - 1], word.len())
                .unwrap();
            let expected: f64 = rows
                .iter()
                .zip(word)
                .map(|(row, &w)| {
                    let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
                    let lse = max
                        + row
                            .iter()
                            .map(|&x| (x as f64 - max).exp())
                            .sum::<f64>()
                            .ln();
                    row[w as usize] as f64 - lse
                })
                .sum();
            let got = scores[i * 2 + c] as f64;
            assert!(
                (got - expected).abs() < 2e-3,
                "text {i} class {c}: {got} vs {expected}"
            );
        }
    }
}

/// The decoder scores several prompts in one pass (every example under every prompt as one
/// batch) as it scores each alone: the prompt first on the backend, the prompt after the
/// input on the backend and on the host decoder, and class words of several tokens.
#[test]
fn batched_scoring_equals_one_pass_per_prompt() {
    let init = "Is it positive?";
    let idx = [19, 4, 11, 0];
    let prompt_model = |r: &VerbalizerReadout<Cpu>, tok: &DecoderTokenizer| {
        let len = tok.encode_plain(init).unwrap().len();
        PromptModel {
            prompt: SoftPrompt::from_tensor(r.prompt_rows(tok, init, len).unwrap()),
            head: None,
        }
    };
    for position in [PromptPosition::Prefix, PromptPosition::Suffix] {
        let (r, tok) = readout::<Cpu>(position);
        let models = crate::support::neighbours(&prompt_model(&r, &tok), 3, 0.05);
        crate::support::assert_batched_equals_separate(&r, &models, SplitName::Selection, &idx);
        if position == PromptPosition::Suffix {
            let frozen = std::sync::Arc::new(r.decoder().frozen());
            let host = r.clone().with_frozen(frozen);
            assert!(host
                .logits_on_host(&models[0].prompt.rows(), SplitName::Test, &[0])
                .is_some());
            crate::support::assert_batched_equals_separate(
                &host,
                &models,
                SplitName::Test,
                &[5, 1, 3],
            );
        }
    }
    let (r, tok) = readout::<Cpu>(PromptPosition::Suffix);
    let words = ["thoroughly disappointing", "thoroughly delightful"].map(String::from);
    let decoder = r.decoder().clone();
    let r = VerbalizerReadout::new(
        decoder,
        &tok,
        data(&tok),
        CUE,
        &words,
        64,
        PromptPosition::Suffix,
    )
    .unwrap();
    assert!(!r.single_token());
    let models = crate::support::neighbours(&prompt_model(&r, &tok), 3, 0.05);
    crate::support::assert_batched_equals_separate(&r, &models, SplitName::Train, &[3, 0, 5]);
}
