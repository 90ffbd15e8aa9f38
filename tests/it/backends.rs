//! Backends agree: 10 gradient steps from the same seed give the same losses, prompt and
//! projection on flex (always) and on wgpu (built with `--features wgpu`; on a CPU-only machine
//! wgpu runs on Mesa's software Vulkan) as on ndarray, and the mentor decodes the same greedy
//! tokens on wgpu. Built without wgpu, the wgpu checks are listed as ignored, with the reason.

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem::assets::MINILM;
#[cfg(feature = "wgpu")]
use tandem::assets::SMOLLM2;
use tandem::backbone::Backbone;
#[cfg(feature = "wgpu")]
use tandem::decoder::{argmax, ChatLlm};
use tandem::gradient::{GradientConfig, GradientStage, LrSchedule};
#[cfg(feature = "wgpu")]
use tandem::mentor::Message;
use tandem::prompt::{Projector, PromptInit, SoftPrompt};
use tandem::readout::{ClassPromptReadout, PromptModel};

use crate::support;

#[cfg(feature = "wgpu")]
type Wgpu = burn::backend::Autodiff<burn::backend::Wgpu>;

/// Losses of 10 steps, the final prompt's values and its projection.
fn ten_steps<B: AutodiffBackend>(device: &B::Device) -> (Vec<f64>, Vec<f32>, Vec<u32>) {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<B>::minilm(&assets, device).unwrap();
    let readout = ClassPromptReadout::new(
        bb.clone(),
        support::snippet_data(&bb.tokenizer),
        20.0,
        32,
        None,
    );
    let cfg = GradientConfig {
        steps: 10,
        batch_size: 3,
        lr: 1e-2,
        schedule: LrSchedule::Constant,
        record_every: 5,
        keep_best: false,
        ..Default::default()
    };
    let projector = Projector::new(&bb.encoder, &bb.tokenizer, cfg.metric);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let prompt = SoftPrompt::init(
        &PromptInit::Text("this review is".into()),
        4,
        &bb.encoder,
        &bb.tokenizer,
        &mut rng,
    )
    .unwrap();
    let stage = GradientStage::new(&readout, &projector, &bb.tokenizer, &cfg);
    let mut optim = stage.optimizer();
    let out = stage
        .run(
            PromptModel { prompt, head: None },
            &mut optim,
            &mut rng,
            0,
            &ProgressBar::hidden(),
        )
        .unwrap();
    let values = out
        .model
        .prompt
        .rows()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    let projection = projector.project(out.model.prompt.rows(), 1).nearest();
    (out.step_losses, values, projection)
}

#[cfg(feature = "wgpu")]
#[test]
fn ten_gradient_steps_agree_with_ndarray() {
    let gpu = support::wgpu_device();
    let (l_gpu, p_gpu, t_gpu) = ten_steps::<Wgpu>(&gpu);
    assert_agree(
        &ten_steps::<support::CpuAd>(&Default::default()),
        &(l_gpu, p_gpu, t_gpu),
    );
}

/// The second CPU backend, burn-flex (its own matmul, GELU and reductions), against ndarray.
#[test]
fn ten_gradient_steps_agree_on_flex_and_ndarray() {
    let flex = ten_steps::<burn::backend::Autodiff<burn::backend::Flex>>(&Default::default());
    assert_agree(&ten_steps::<support::CpuAd>(&Default::default()), &flex);
}

/// Losses within 1e-3 (relative), the prompt within 1e-3 of its scale, the same projection.
fn assert_agree(cpu: &(Vec<f64>, Vec<f32>, Vec<u32>), other: &(Vec<f64>, Vec<f32>, Vec<u32>)) {
    let ((l_cpu, p_cpu, t_cpu), (l_gpu, p_gpu, t_gpu)) = (cpu, other);
    assert_eq!(l_cpu.len(), 10);
    for (i, (a, b)) in l_cpu.iter().zip(l_gpu).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1.0),
            "step {i}: loss {a} vs {b}"
        );
    }
    let scale = p_cpu.iter().fold(0f32, |m, x| m.max(x.abs()));
    let worst = p_cpu
        .iter()
        .zip(p_gpu)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-3 * scale,
        "prompt differs by {worst} (scale {scale})"
    );
    assert_eq!(t_cpu, t_gpu, "projection");
}

/// Eight greedy tokens after the prompt, through the burn f32 decoder.
#[cfg(feature = "wgpu")]
fn greedy<B: burn::tensor::backend::Backend>(llm: &ChatLlm<B>, ids: &[u32]) -> Vec<u32> {
    let (logits, mut state) = llm.start(ids).unwrap();
    let mut token = argmax(&logits);
    let mut out = vec![token];
    for _ in 0..7 {
        token = argmax(&llm.next(token, &mut state).unwrap());
        out.push(token);
    }
    out
}

#[cfg(feature = "wgpu")]
#[test]
fn the_mentor_decodes_the_same_greedy_tokens() {
    let device = support::wgpu_device();
    let assets = support::assets(&[SMOLLM2]);
    let path = assets.path(&SMOLLM2.files[0]);
    let cpu =
        ChatLlm::<burn::backend::NdArray>::load_with(&path, &Default::default(), false).unwrap();
    let gpu = ChatLlm::<burn::backend::Wgpu>::load_with(&path, &device, false).unwrap();
    let msgs = [Message::user("Name one colour of the sky.")];
    let ids = cpu.prompt_ids(&msgs).unwrap();
    assert_eq!(ids, gpu.prompt_ids(&msgs).unwrap());
    assert_eq!(greedy(&cpu, &ids), greedy(&gpu, &ids));
}

/// Stands in the test list for the wgpu checks of a build without the `wgpu` feature.
#[cfg(not(feature = "wgpu"))]
#[test]
#[ignore = "built without --features wgpu: the wgpu-vs-ndarray checks need it (scripts/test.sh runs them)"]
fn wgpu_agrees_with_ndarray() {}
