//! The embedded SmolLM2 decoder against llama.cpp on the same GGUF file
//! (`tests/fixtures/llama_cpp_greedy.{py,json}`), and its sampling contract.

use std::sync::OnceLock;

use serde::Deserialize;
use tandem::assets::SMOLLM2;
use tandem::decoder::ChatLlm;
use tandem::mentor::{Message, Sampling};

use crate::support::{assets, f32_network_bound, Cpu};

#[derive(Deserialize)]
struct Fixture {
    chats: Vec<Chat>,
}

#[derive(Deserialize)]
struct Chat {
    messages: Vec<Message>,
    prompt_text: String,
    prompt_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    /// Logit gap of llama.cpp's choice over its runner-up.
    margins: Vec<f32>,
    /// Per step: llama.cpp's ten largest logits as (id, logit).
    top_logits: Vec<Vec<(u32, f32)>>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("../fixtures/llama_cpp_greedy.json")).unwrap()
}

fn llm() -> &'static ChatLlm<Cpu> {
    static LLM: OnceLock<ChatLlm<Cpu>> = OnceLock::new();
    LLM.get_or_init(|| {
        let a = assets(&[SMOLLM2]);
        ChatLlm::load(&a.path(&SMOLLM2.files[0]), &Default::default()).expect("loading SmolLM2")
    })
}

#[test]
fn chat_template_and_tokenizer_match_llama_cpp() {
    let llm = llm();
    for chat in fixture().chats {
        assert_eq!(llm.render(&chat.messages).unwrap(), chat.prompt_text);
        assert_eq!(llm.prompt_ids(&chat.messages).unwrap(), chat.prompt_ids);
    }
}

#[derive(Deserialize)]
struct Reference {
    chats: Vec<RefChat>,
}

/// The float64 NumPy reference on the dequantized weights (`fixtures/smollm2_numpy.py`).
#[derive(Deserialize)]
struct RefChat {
    /// Teacher-forced on llama.cpp's greedy tokens: exact logits of llama.cpp's top-10 ids.
    teacher_forced_top_logits: Vec<Vec<(u32, f64)>>,
    teacher_forced_argmax: Vec<u32>,
    /// Free-running exact greedy decoding.
    greedy_ids: Vec<u32>,
    margins: Vec<f64>,
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("../fixtures/smollm2_reference.json")).unwrap()
}

/// Teacher-forced logits of tandem over each chat's prompt and llama.cpp's 32 greedy tokens.
fn teacher_forced(chat: &Chat) -> Vec<Vec<f32>> {
    let ids: Vec<u32> = chat
        .prompt_ids
        .iter()
        .chain(&chat.greedy_ids)
        .copied()
        .collect();
    llm()
        .sequence_logits(&ids[..ids.len() - 1], chat.greedy_ids.len())
        .unwrap()
}

/// tandem's f32 decoder against exact float64 arithmetic on the same dequantized weights, within
/// the rounding bound of an f32 network of its depth and widest dot product
/// ([`f32_network_bound`]) relative to each step's largest logit.
#[test]
fn logits_match_the_exact_float64_reference() {
    let (fx, rf) = (fixture(), reference());
    let config = llm().model().config();
    let (layers, k) = (config.num_layers, config.intermediate_size);
    let (mut worst, mut worst_abs) = (0f64, 0f64);
    for (chat, exact) in fx.chats.iter().zip(&rf.chats) {
        let rows = teacher_forced(chat);
        for (step, row) in rows.iter().enumerate() {
            let top = &exact.teacher_forced_top_logits[step];
            let scale = top.iter().map(|&(_, l)| l.abs()).fold(0f64, f64::max);
            let bound = f32_network_bound(layers, k, scale);
            for &(id, l) in top {
                let err = (row[id as usize] as f64 - l).abs();
                worst = worst.max(err / bound);
                worst_abs = worst_abs.max(err);
                assert!(
                    err <= bound,
                    "step {step}, token {id}: {err:.2e} from exact arithmetic, bound {bound:.2e}"
                );
            }
            assert_eq!(
                tandem::decoder::argmax(row),
                exact.teacher_forced_argmax[step]
            );
        }
    }
    eprintln!("worst |tandem - exact| logit: {worst_abs:.2e}, {worst:.2e} of its rounding bound");
}

/// Free-running greedy decoding: the same 32 tokens as exact arithmetic, for every chat.
#[test]
fn greedy_decoding_matches_the_exact_reference() {
    let (fx, rf) = (fixture(), reference());
    for (c, (chat, exact)) in fx.chats.iter().zip(&rf.chats).enumerate() {
        let ours: Vec<u32> = llm()
            .greedy_trace(&chat.prompt_ids, 32)
            .unwrap()
            .iter()
            .map(|s| s.token)
            .collect();
        assert_eq!(ours, exact.greedy_ids, "chat {c}");
        assert_eq!(exact.margins.len(), 32);
    }
}

/// llama.cpp multiplies Q4_1 weights by activations quantized to Q8_1, so its logits carry
/// quantization noise. Teacher-forced on its own tokens, wherever its greedy choice differs
/// from tandem's, the exact logit gap between the two tokens is smaller than llama.cpp's own
/// deviation from exact arithmetic at that step: the difference is llama.cpp's noise.
#[test]
fn llama_cpp_differs_only_where_its_noise_exceeds_the_margin() {
    let (fx, rf) = (fixture(), reference());
    let mut identical = 0;
    let mut worst_noise = 0f64;
    for (c, (chat, exact)) in fx.chats.iter().zip(&rf.chats).enumerate() {
        let rows = teacher_forced(chat);
        let mut agree = true;
        for (step, row) in rows.iter().enumerate() {
            let noise = chat.top_logits[step]
                .iter()
                .zip(&exact.teacher_forced_top_logits[step])
                .map(|(&(a, l), &(b, e))| {
                    assert_eq!(a, b);
                    (l as f64 - e).abs()
                })
                .fold(0f64, f64::max);
            worst_noise = worst_noise.max(noise);
            let theirs = chat.greedy_ids[step];
            let ours = tandem::decoder::argmax(row);
            if ours != theirs {
                agree = false;
                let exact_of = |id: u32| {
                    exact.teacher_forced_top_logits[step]
                        .iter()
                        .find(|p| p.0 == id)
                        .map(|p| p.1)
                };
                let gap = exact_of(ours).unwrap() - exact_of(theirs).unwrap();
                eprintln!(
                    "chat {c} step {step}: llama.cpp {theirs}, tandem {ours}; exact gap {gap:.3}, \
                     llama.cpp noise {noise:.3}, llama.cpp margin {:.3}",
                    chat.margins[step]
                );
                assert!(gap >= 0.0 && gap < noise, "chat {c} step {step}");
            }
        }
        identical += agree as usize;
    }
    eprintln!(
        "{identical} of {} chats: identical greedy choices; llama.cpp's worst deviation from \
         exact: {worst_noise:.3}",
        fx.chats.len()
    );
}

#[test]
fn same_seed_same_text_and_stop_sequences_cut() {
    let llm = llm();
    let msgs = vec![Message::user("Name three animals.")];
    let s = |seed| Sampling {
        temperature: 0.9,
        top_p: 0.95,
        max_tokens: 12,
        stop: vec![],
        seed,
    };
    let a = llm.generate(&msgs, &s(5)).unwrap();
    let b = llm.generate(&msgs, &s(5)).unwrap();
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.text, b.text);
    let others: Vec<Vec<u32>> = (6..9)
        .map(|k| llm.generate(&msgs, &s(k)).unwrap().tokens)
        .collect();
    assert!(
        others.iter().any(|t| *t != a.tokens),
        "seed changes nothing"
    );
    // max_tokens bounds the reply; finish reasons are reported.
    assert!(a.tokens.len() <= 12);
    assert!(a.finish_reason == "length" || a.finish_reason == "stop");
    // A stop sequence cuts the text before it.
    let greedy = Sampling {
        temperature: 0.0,
        max_tokens: 16,
        ..s(0)
    };
    let full = llm.generate(&msgs, &greedy).unwrap();
    let word: String = full.text.split_whitespace().nth(1).unwrap().to_string();
    let cut = llm
        .generate(
            &msgs,
            &Sampling {
                stop: vec![word.clone()],
                ..greedy
            },
        )
        .unwrap();
    assert_eq!(cut.finish_reason, "stop");
    assert!(
        !cut.text.contains(&word),
        "{:?} still holds {word:?}",
        cut.text
    );
    assert!(full.text.starts_with(&cut.text));
}

/// Under the logit mask the real model writes exactly the lines asked for, each of at most the
/// word limit, with no markup, no control token and no blank line but one after a line, and
/// stops at the last line;
/// the same request without the mask writes something else (the mask is applied).
#[test]
fn masked_decoding_keeps_the_line_format() {
    use tandem::decoder::{LineMask, TokenClass, BANNED_CHARS};
    let llm = llm();
    let msgs = vec![Message::user(
        "Write three short prompts for a movie review sentiment classifier, one per line.",
    )];
    let ids = llm.prompt_ids(&msgs).unwrap();
    let classes = TokenClass::vocabulary(llm.tokenizer());
    assert_eq!(classes.len(), llm.tokenizer().vocab_size());
    assert_eq!(classes[llm.tokenizer().eos() as usize], TokenClass::End);
    let mut differs = false;
    for seed in 0..3 {
        let sampling = Sampling {
            temperature: 0.9,
            top_p: 0.95,
            max_tokens: 96,
            stop: vec![],
            seed,
        };
        let mask = LineMask { lines: 3, words: 6 };
        let g = llm.generate_masked(&ids, &sampling, Some(mask)).unwrap();
        assert_eq!(g.finish_reason, "stop", "{:?}", g.text);
        for &t in &g.tokens {
            assert_ne!(classes[t as usize], TokenClass::Banned, "{:?}", g.text);
        }
        assert!(
            !g.text.starts_with('\n') && !g.text.contains("\n\n\n"),
            "{:?}",
            g.text
        );
        let lines: Vec<&str> = g.text.split('\n').filter(|l| !l.is_empty()).collect();
        assert!(lines.len() <= 3, "{:?}", g.text);
        for line in &lines {
            let words = line.split_whitespace().count();
            assert!((1..=6).contains(&words), "{line:?} in {:?}", g.text);
            assert!(!line.contains(BANNED_CHARS), "{line:?}");
        }
        let plain = llm.generate_from_ids(&ids, &sampling).unwrap();
        differs |= plain.tokens != g.tokens;
    }
    assert!(differs, "the mask changed no reply");
}

/// The plain burn path (f32 weights, burn key/value cache) decodes the same tokens as the
/// quantized host path and as exact arithmetic.
#[test]
fn burn_f32_decoding_matches_the_exact_reference() {
    let a = assets(&[SMOLLM2]);
    let f32_llm =
        ChatLlm::<Cpu>::load_with(&a.path(&SMOLLM2.files[0]), &Default::default(), false).unwrap();
    let (fx, rf) = (fixture(), reference());
    let ours: Vec<u32> = f32_llm
        .greedy_trace(&fx.chats[2].prompt_ids, 16)
        .unwrap()
        .iter()
        .map(|s| s.token)
        .collect();
    assert_eq!(ours, rf.chats[2].greedy_ids[..16]);
}
