//! tandem's criterion benchmarks: one entry over the workloads of `tandem::bench` (the same
//! preparation and synchronised iteration that `tandem bench` times), on every backend the
//! build has (`ndarray`; `wgpu`, `cuda` with their features). Bench ids carry the backend:
//! `grad_step/ndarray/input_head/minilm/b32`. Preparation, warm-up and kernel autotuning happen
//! outside the timed region; every iteration synchronises the device before the clock is read.
//!
//! - `grad_step`: one optimizer step (forward, input-only backward through the frozen encoder,
//!   clipping, AdamW) for the class-prompt and input-head readouts, on MiniLM (real weights;
//!   batch 32, 30 tokens, 8 prompt vectors) and a BERT-base-sized encoder (random weights, or
//!   `TANDEM_BENCH_BERT_BASE=FILE`; batch 32, 128 tokens, 16 prompt vectors);
//! - `projection`: an 8-vector prompt onto the 30,522-token vocabulary (L2, top-3);
//! - `mentor_decode`: 32 greedy tokens of the embedded SmolLM2-135M (quantized host decoding
//!   on ndarray, the burn f32 decoder elsewhere);
//! - `template_render`: the catalyst meta-prompt with an 8-prompt history;
//! - `catalyst_round`: one whole catalyst round on UCI IMDB with the embedded mentor (task
//!   loading, 10 gradient steps, scoring, a 48-token mentor reply, candidates scored, restart);
//! - `screen`: the probe screen's scoring, 16 text prompts on 100 `mr` selection examples, in
//!   one batched pass (`batched`) and one pass per prompt (`separate`), for the class-prompt and
//!   input-head readouts on MiniLM and the verbalizer on SmolLM2-135M.
//!
//! PyTorch peer: `benches/peers/grad_step_peer.py`; `benches/gpu/run.sh` runs `tandem bench`
//! (the same workloads) and the peer side by side, on a GPU machine or (`DEVICE=cpu`) here. llama.cpp peer of the decoder:
//! `benches/peers/decode_compare.py`.

use std::time::{Duration, Instant};

use burn::tensor::backend::AutodiffBackend;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tandem::assets::Assets;
use tandem::backend::BackendKind;
use tandem::bench::{prepare, Workload};

/// The positional arguments of `cargo bench -- FILTER...`: workloads whose full id matches none
/// are not even prepared (preparing the BERT-base-sized ones takes a minute on a CPU).
fn wanted(full_id: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    // Criterion's filter is a regular expression; its `a|b` alternatives are honoured here.
    filters.is_empty()
        || filters
            .iter()
            .flat_map(|f| f.split('|'))
            .any(|f| full_id.contains(f))
}

fn run_backend<B: AutodiffBackend>(c: &mut Criterion, kind: BackendKind, device: B::Device) {
    let backend = kind.name();
    let assets = Assets::from_env();
    for w in Workload::all() {
        let id = w.id();
        let (group_name, rest) = id.split_once('/').unwrap_or((id.as_str(), ""));
        if !wanted(&format!("{group_name}/{backend}/{rest}")) {
            continue;
        }
        let mut prepared = prepare::<B>(w, &assets, &device, kind)
            .unwrap_or_else(|e| panic!("preparing {id}: {e} (run `tandem fetch` first)"));
        // Warm-up outside the timed region: caches, kernel compilation and autotuning.
        for _ in 0..2 {
            prepared.iterate().expect("warm-up iteration");
        }
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(w.items().0 as u64));
        let heavy = matches!(
            w,
            Workload::GradStep(_, tandem::bench::BenchModel::BertBase)
        );
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(if heavy { 1 } else { 1000 }));
        group.measurement_time(Duration::from_secs(if heavy { 60 } else { 10 }));
        group.bench_function(BenchmarkId::new(backend, rest), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    prepared.iterate().expect("iteration");
                }
                start.elapsed()
            })
        });
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    run_backend::<burn::backend::Autodiff<burn::backend::NdArray>>(
        c,
        BackendKind::Ndarray,
        Default::default(),
    );
    run_backend::<burn::backend::Autodiff<burn::backend::Flex>>(
        c,
        BackendKind::Flex,
        Default::default(),
    );
    #[cfg(feature = "wgpu")]
    run_backend::<burn::backend::Autodiff<burn::backend::Wgpu>>(
        c,
        BackendKind::Wgpu,
        Default::default(),
    );
    #[cfg(feature = "cuda")]
    run_backend::<burn::backend::Autodiff<burn::backend::Cuda>>(
        c,
        BackendKind::Cuda,
        Default::default(),
    );
}

criterion_group!(tandem_benches, benches);
criterion_main!(tandem_benches);
