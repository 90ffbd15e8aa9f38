//! tandem's criterion benchmarks. One entry; groups by what is measured; bench names carry the
//! backend (`ndarray/...`). Warm-up (and any cache building) happens outside the timed region and
//! the device is synchronised inside it.
//!
//! `grad_step`: one optimizer step (forward, input-only backward through the frozen MiniLM
//! encoder, clipping, AdamW) on a batch of 32 texts of 30 tokens with an 8-vector prompt:
//! - `class_prompt_cached`: the class-prompt readout with frozen sample embeddings cached;
//! - `class_prompt_uncached`: the same, re-embedding the batch's texts every step;
//! - `input_head`: prompt spliced before the 30 tokens, mean pool, linear head.
//!
//! The PyTorch peer of the same steps is `benches/peers/grad_step_peer.py`;
//! `benches/peers/compare.py` runs both side by side and prints the ratio.
//!
//! `mentor_decode`: greedy decoding of 32 tokens by the embedded SmolLM2-135M-Instruct after a
//! fixed 38-token chat prompt (the prompt pass is set up outside the timed region):
//! - `quantized_host`: Q4_1/Q8_0 blocks kept in memory, host matrix-vector products;
//! - `f32_burn`: the burn decoder with dequantized f32 weights and its key/value cache.
//!
//! The llama.cpp peer is `benches/peers/decode_peer.py`; `benches/peers/decode_compare.py` runs
//! both with the same thread count and prints the ratio.

use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem::assets::{Assets, MINILM, SMOLLM2};
use tandem::backbone::Backbone;
use tandem::decoder::{argmax, ChatLlm};
use tandem::gradient::{GradientConfig, GradientStage, LrSchedule};
use tandem::mentor::Message;
use tandem::prompt::{Projector, PromptInit, SoftPrompt};
use tandem::readout::{
    ClassPromptReadout, EncodedData, EncodedSplit, Head, InputHeadReadout, PromptModel, Readout,
};

/// Batch size, text tokens and prompt length shared with the PyTorch peer.
const BATCH: usize = 32;
const TEXT_TOKENS: usize = 30;
const PROMPT_LEN: usize = 8;

/// Deterministic regular-vocabulary ids (`[1996, 29612)` are ordinary WordPiece tokens of the
/// uncased BERT vocabulary), identical in the peer script.
fn synthetic_tokens() -> Vec<Vec<u32>> {
    (0..BATCH)
        .map(|i| {
            (0..TEXT_TOKENS)
                .map(|j| 1996 + ((i * 7919 + j * 104_729) % 27_616) as u32)
                .collect()
        })
        .collect()
}

fn data() -> EncodedData {
    let split = EncodedSplit {
        tokens: synthetic_tokens(),
        labels: (0..BATCH).map(|i| i % 2).collect(),
    };
    EncodedData {
        class_names: vec!["negative".into(), "positive".into()],
        train: split.clone(),
        selection: split.clone(),
        test: split,
    }
}

fn bench_steps<B: AutodiffBackend, R>(
    c: &mut Criterion,
    backend: &str,
    name: &str,
    readout: &R,
    backbone: &Backbone<B>,
    head: bool,
) where
    R: Readout<B> + burn::module::AutodiffModule<B>,
    R::InnerModule: Readout<B::InnerBackend>,
{
    let device = backbone.device();
    let config = GradientConfig {
        steps: 1,
        batch_size: BATCH,
        schedule: LrSchedule::Constant,
        keep_best: false,
        ..Default::default()
    };
    let projector = Projector::new(&backbone.encoder, &backbone.tokenizer, config.metric);
    let stage = GradientStage::new(readout, &projector, &backbone.tokenizer, &config);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let prompt = SoftPrompt::init(
        &PromptInit::Text("this movie review is".into()),
        PROMPT_LEN,
        &backbone.encoder,
        &backbone.tokenizer,
        &mut rng,
    )
    .expect("prompt init");
    let head = head.then(|| Head::init(backbone.encoder.hidden_size(), 2, &mut rng, &device));
    let mut model = Some(PromptModel { prompt, head });
    let mut optim = stage.optimizer();
    let idx: Vec<usize> = (0..BATCH).collect();

    let mut group = c.benchmark_group("grad_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(15));
    group.bench_function(
        BenchmarkId::new(format!("{backend}/{name}"), format!("b{BATCH}")),
        |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let m = model.take().expect("model");
                    let (next, _) = stage
                        .step(m, &mut optim, &idx, 3e-3, 1)
                        .expect("finite step");
                    B::sync(&device).expect("device sync");
                    model = Some(next);
                }
                start.elapsed()
            })
        },
    );
    group.finish();
}

fn grad_step(c: &mut Criterion) {
    type B = Autodiff<NdArray>;
    let assets = Assets::from_env();
    assets.ensure(&MINILM).expect("fetch MiniLM (tandem fetch)");
    let device = Default::default();
    let backbone = Backbone::<B>::minilm(&assets, &device).expect("load MiniLM");
    let max_len = TEXT_TOKENS + PROMPT_LEN + 2;

    let cached = ClassPromptReadout::new(backbone.clone(), data(), 20.0, max_len, None);
    bench_steps(
        c,
        "ndarray",
        "class_prompt_cached",
        &cached,
        &backbone,
        false,
    );
    let uncached = ClassPromptReadout::uncached(backbone.clone(), data(), 20.0, max_len);
    bench_steps(
        c,
        "ndarray",
        "class_prompt_uncached",
        &uncached,
        &backbone,
        false,
    );
    let input = InputHeadReadout::new(backbone.clone(), data(), max_len);
    bench_steps(c, "ndarray", "input_head", &input, &backbone, true);
}

/// Tokens decoded per timed iteration.
const DECODE_TOKENS: usize = 32;

fn mentor_decode(c: &mut Criterion) {
    let assets = Assets::from_env();
    assets
        .ensure(&SMOLLM2)
        .expect("fetch SmolLM2 (tandem fetch)");
    let path = assets.path(&SMOLLM2.files[0]);
    let device = Default::default();
    let mut group = c.benchmark_group("mentor_decode");
    group.throughput(Throughput::Elements(DECODE_TOKENS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(10));
    for (name, quantized) in [("quantized_host", true), ("f32_burn", false)] {
        let llm = ChatLlm::<NdArray>::load_with(&path, &device, quantized).expect("load SmolLM2");
        let prompt = llm
            .prompt_ids(&[Message::user("Write a short poem about the sea.")])
            .expect("prompt");
        group.bench_function(
            BenchmarkId::new(format!("ndarray/{name}"), DECODE_TOKENS),
            |b| {
                b.iter_batched(
                    || llm.start(&prompt).expect("prompt pass"),
                    |(logits, mut state)| {
                        let mut token = argmax(&logits);
                        // Logits come back to the host every step, so the device is synchronised.
                        for _ in 0..DECODE_TOKENS {
                            token = argmax(&llm.next(token, &mut state).expect("decode"));
                        }
                        token
                    },
                    criterion::BatchSize::PerIteration,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, grad_step, mentor_decode);
criterion_main!(benches);
