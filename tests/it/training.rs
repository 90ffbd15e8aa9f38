//! The gradient stage on the real MiniLM backbone: the backbone stays frozen, gradients
//! reach only the trainable tensors, training lowers the loss, and the trajectory is recorded.

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem::assets::MINILM;
use tandem::backbone::Backbone;
use tandem::gradient::{GradientConfig, GradientStage, LrSchedule};
use tandem::prompt::{Projector, PromptInit, SoftPrompt};
use tandem::readout::{
    evaluate_valid, ClassPromptReadout, EncodedData, Head, InputHeadReadout, PromptModel, Readout,
    SplitName,
};

use support::CpuAd;

use crate::support;

fn tiny_data(bb: &Backbone<CpuAd>) -> EncodedData {
    support::snippet_data(&bb.tokenizer)
}

/// Asserts that no backbone tensor is trainable: none is a `Param` (optimizers visit those)
/// and none requires a gradient (autodiff would then accumulate one for it).
fn assert_frozen(bb: &Backbone<CpuAd>) {
    assert_eq!(
        bb.num_params(),
        0,
        "the backbone holds trainable parameters"
    );
    let (matrices, vectors) = bb.encoder.weights();
    assert_eq!((matrices.len(), vectors.len()), (26, 50));
    assert!(
        matrices.iter().all(|t| !t.is_require_grad())
            && vectors.iter().all(|t| !t.is_require_grad()),
        "a backbone tensor requires a gradient"
    );
}

fn prompt_values(model: &PromptModel<CpuAd>) -> Vec<f32> {
    model
        .prompt
        .rows()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap()
}

fn config(steps: usize) -> GradientConfig {
    GradientConfig {
        steps,
        batch_size: 4,
        lr: 1e-2,
        schedule: LrSchedule::Constant,
        record_every: 2,
        keep_best: false,
        ..Default::default()
    }
}

fn init_model(bb: &Backbone<CpuAd>, head: bool) -> PromptModel<CpuAd> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let prompt = SoftPrompt::init(
        &PromptInit::Text("this review is".into()),
        4,
        &bb.encoder,
        &bb.tokenizer,
        &mut rng,
    )
    .unwrap();
    let head = head.then(|| Head::init(bb.encoder.hidden_size(), 2, &mut rng, &Default::default()));
    PromptModel { prompt, head }
}

#[test]
fn training_both_readouts_keeps_the_backbone_frozen() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<CpuAd>::minilm(&assets, &Default::default()).unwrap();
    assert_frozen(&bb);
    let projector = Projector::new(&bb.encoder, &bb.tokenizer, Default::default());
    let cfg = config(6);

    let class = ClassPromptReadout::new(bb.clone(), tiny_data(&bb), 20.0, 32, None);
    let model = init_model(&bb, false);
    let p0: Vec<f32> = prompt_values(&model);
    let stage = GradientStage::new(&class, &projector, &bb.tokenizer, &cfg);
    let mut opt = stage.optimizer();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let out = stage
        .run(model, &mut opt, &mut rng, 0, &ProgressBar::hidden())
        .unwrap();
    let p1: Vec<f32> = prompt_values(&out.model);
    assert_ne!(p0, p1, "the prompt must move");
    assert_eq!(out.trajectory.len(), 3);
    assert_eq!(
        out.trajectory.iter().map(|p| p.step).collect::<Vec<_>>(),
        [2, 4, 6]
    );

    let input = InputHeadReadout::new(bb.clone(), tiny_data(&bb), 32);
    let stage = GradientStage::new(&input, &projector, &bb.tokenizer, &cfg);
    let mut opt = stage.optimizer();
    let model = init_model(&bb, true);
    let head = |m: &PromptModel<CpuAd>| -> Vec<f32> {
        let w = m.head.as_ref().unwrap().weight.val();
        w.into_data().convert::<f32>().into_vec().unwrap()
    };
    let (p0, h0) = (prompt_values(&model), head(&model));
    let out = stage
        .run(model, &mut opt, &mut rng, 0, &ProgressBar::hidden())
        .unwrap();
    assert_ne!(prompt_values(&out.model), p0, "the input prompt must move");
    assert_ne!(head(&out.model), h0, "the head must move");

    assert_frozen(&bb);
}

#[test]
fn gradients_reach_only_trainable_tensors() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<CpuAd>::minilm(&assets, &Default::default()).unwrap();
    let readout = InputHeadReadout::new(bb.clone(), tiny_data(&bb), 32);
    let model = init_model(&bb, true);
    let loss = readout.loss(&model, SplitName::Train, &[0, 1, 2, 3]);
    let grads = loss.backward();
    let (matrices, vectors) = bb.encoder.weights();
    let reached = matrices.iter().filter(|t| t.grad(&grads).is_some()).count()
        + vectors.iter().filter(|t| t.grad(&grads).is_some()).count();
    assert_eq!(reached, 0, "gradients reached {reached} backbone tensors");
    let trainable = GradientsParams::from_grads(grads, &model);
    // prompt, head weight, head bias.
    assert_eq!(trainable.len(), 3);
    let g: Tensor<support::Cpu, 2> = trainable
        .get(model.prompt.vectors.id)
        .expect("prompt gradient");
    let norm: f32 = g.square().sum().into_scalar();
    assert!(
        norm > 0.0 && norm.is_finite(),
        "prompt gradient norm {norm}"
    );
}

#[test]
fn training_lowers_the_training_loss() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<CpuAd>::minilm(&assets, &Default::default()).unwrap();
    let readout = ClassPromptReadout::new(bb.clone(), tiny_data(&bb), 20.0, 32, None);
    let projector = Projector::new(&bb.encoder, &bb.tokenizer, Default::default());
    let model = init_model(&bb, false);
    let before = evaluate_valid(&readout, &model, SplitName::Train);
    let cfg = config(20);
    let stage = GradientStage::new(&readout, &projector, &bb.tokenizer, &cfg);
    let mut opt = stage.optimizer();
    let out = stage
        .run(
            model,
            &mut opt,
            &mut ChaCha8Rng::seed_from_u64(3),
            0,
            &ProgressBar::hidden(),
        )
        .unwrap();
    let after = evaluate_valid(&readout, &out.model, SplitName::Train);
    assert!(
        after.loss < before.loss * 0.7,
        "loss {} -> {}",
        before.loss,
        after.loss
    );
    assert!(after.accuracy >= before.accuracy);
    assert!(out
        .trajectory
        .iter()
        .all(|p| p.token_ids.len() == 4 && !p.text.is_empty()));
}

#[test]
fn same_seed_same_stage_result() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<CpuAd>::minilm(&assets, &Default::default()).unwrap();
    let readout = ClassPromptReadout::new(bb.clone(), tiny_data(&bb), 20.0, 32, None);
    let projector = Projector::new(&bb.encoder, &bb.tokenizer, Default::default());
    let cfg = config(4);
    let stage = GradientStage::new(&readout, &projector, &bb.tokenizer, &cfg);
    let run = |seed| {
        let mut opt = stage.optimizer();
        let out = stage
            .run(
                init_model(&bb, false),
                &mut opt,
                &mut ChaCha8Rng::seed_from_u64(seed),
                0,
                &ProgressBar::hidden(),
            )
            .unwrap();
        prompt_values(&out.model)
    };
    assert_eq!(run(5), run(5));
}

/// Both encoder readouts score several prompts in one pass as they score each alone: class
/// prompts (every prompt's class sequences in one encoder pass, one product with the cached
/// samples) and input prompts (the examples under every prompt as one batch, each through its
/// own head); prompts of another length fall back to one pass each.
#[test]
fn batched_scoring_equals_one_pass_per_prompt() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<support::Cpu>::minilm(&assets, &Default::default()).unwrap();
    let bb_ad = Backbone::<CpuAd>::minilm(&assets, &Default::default()).unwrap();
    let idx = [5, 0, 3, 1, 7, 2];
    let class = ClassPromptReadout::new(
        bb.clone(),
        support::snippet_data(&bb.tokenizer),
        20.0,
        32,
        None,
    );
    let models = support::neighbours(&init_model(&bb_ad, false).valid(), 4, 0.05);
    support::assert_batched_equals_separate(&class, &models, SplitName::Selection, &idx);
    let input = InputHeadReadout::new(bb.clone(), support::snippet_data(&bb.tokenizer), 32);
    let models = support::neighbours(&init_model(&bb_ad, true).valid(), 3, 0.05);
    support::assert_batched_equals_separate(&input, &models, SplitName::Test, &idx);
    // On the host encoder (CPU backends' scoring) the batched pass is the host's, each
    // prompt's own pass burn's: the two agree.
    let frozen = std::sync::Arc::new(tandem::backbone::FrozenEncoder::from(&bb.encoder));
    let host = input.clone().with_frozen(frozen);
    support::assert_batched_equals_separate(&host, &models, SplitName::Test, &idx);
    // A prompt of another length cannot share the pass: every prompt still scores as alone.
    let mut mixed = support::neighbours(&init_model(&bb_ad, false).valid(), 2, 0.05);
    let short = mixed[1]
        .prompt
        .rows()
        .slice([0..2, 0..bb.encoder.hidden_size()]);
    mixed.push(PromptModel {
        prompt: SoftPrompt::from_tensor(short),
        head: None,
    });
    support::assert_batched_equals_separate(&class, &mixed, SplitName::Train, &idx);
}

/// On the host encoder (what CPU backends run), both encoder readouts' loss and gradients
/// (prompt, and the input head's weight and bias) are the ones autodiff takes through burn's
/// encoder, on the real MiniLM; the generic readouts leave the gradient to autodiff.
#[test]
fn host_encoder_loss_equals_autodiff() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<CpuAd>::minilm(&assets, &Default::default()).unwrap();
    let frozen = std::sync::Arc::new(tandem::backbone::FrozenEncoder::from(&bb.encoder));
    let class = ClassPromptReadout::new(bb.clone(), tiny_data(&bb), 20.0, 32, None);
    let input = InputHeadReadout::new(bb.clone(), tiny_data(&bb), 32);
    let host_class = class.clone().with_frozen(frozen.clone());
    let host_input = input.clone().with_frozen(frozen);
    let (plain, headed) = (init_model(&bb, false), init_model(&bb, true));
    // Examples of both labels pull the shared prompt rows opposite ways: the sum cancels to
    // a few times below its terms, and float rounding (2-4e-5 of a one-example gradient,
    // measured) grows relative to it by as much.
    for idx in [vec![0], vec![0, 3, 5, 6, 1], vec![7, 7, 2]] {
        let split = SplitName::Train;
        let tol = (1e-5, 5e-4);
        support::assert_host_loss_equals_autodiff(&class, &host_class, &plain, split, &idx, tol);
        support::assert_host_loss_equals_autodiff(&input, &host_input, &headed, split, &idx, tol);
    }
}
