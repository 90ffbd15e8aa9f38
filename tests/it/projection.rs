//! Projection to the nearest vocabulary tokens on the real MiniLM vocabulary.

use tandem::assets::MINILM;
use tandem::backbone::Backbone;
use tandem::prompt::{Metric, Projector, SoftPrompt};

use crate::support;

#[test]
fn vocabulary_rows_project_to_themselves_and_specials_never_appear() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<support::Cpu>::minilm(&assets, &Default::default()).unwrap();
    let ids = bb
        .tokenizer
        .encode("the movie was a masterpiece of tension and wit");
    let rows = SoftPrompt::token_rows(&bb.encoder, &ids);
    for metric in [Metric::L2, Metric::Cosine] {
        let p = Projector::new(&bb.encoder, &bb.tokenizer, metric);
        let proj = p.project(rows.clone(), 5);
        assert_eq!(proj.nearest(), ids, "{metric:?}");
        for (row, d) in proj.token_ids.iter().zip(&proj.distances) {
            assert!(
                d.windows(2).all(|w| w[0] <= w[1] + 1e-6),
                "{metric:?}: top-k distances sorted: {d:?}"
            );
            assert!(d[0] < 1e-3, "{metric:?}: distance to itself {}", d[0]);
            assert!(row.iter().all(|&t| !bb.tokenizer.is_special(t)));
        }
        // Idempotent: projecting the projection's rows gives the same tokens.
        let again = p.project(SoftPrompt::token_rows(&bb.encoder, &proj.nearest()), 1);
        assert_eq!(again.nearest(), proj.nearest());
    }
    // Special tokens' own rows never project to a special token.
    let specials = [bb.tokenizer.cls(), bb.tokenizer.sep(), bb.tokenizer.pad()];
    let p = Projector::new(&bb.encoder, &bb.tokenizer, Metric::L2);
    let proj = p.project(SoftPrompt::token_rows(&bb.encoder, &specials), 3);
    assert!(proj
        .token_ids
        .iter()
        .flatten()
        .all(|&t| !bb.tokenizer.is_special(t)));
}

#[test]
fn reference_compat_cosine_picks_the_least_similar_token() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<support::Cpu>::minilm(&assets, &Default::default()).unwrap();
    let ids = bb.tokenizer.encode("good film");
    let rows = SoftPrompt::token_rows(&bb.encoder, &ids);
    let fixed = Projector::new(&bb.encoder, &bb.tokenizer, Metric::Cosine).project(rows.clone(), 1);
    let compat = Projector::new(&bb.encoder, &bb.tokenizer, Metric::Cosine)
        .with_reference_compat(true)
        .project(rows, 1);
    assert_eq!(fixed.nearest(), ids);
    assert_ne!(compat.nearest(), ids);
    for (f, c) in fixed
        .nearest_distances()
        .iter()
        .zip(compat.nearest_distances())
    {
        assert!(c > *f + 0.5, "the reference's pick is far: {c} vs {f}");
    }
}
