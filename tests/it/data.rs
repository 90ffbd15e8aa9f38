//! The built-in corpora load with the documented sizes, and split manifests describe the splits.

use tandem::assets::{ROTTEN_TOMATOES, UCI_SENTIMENT};
use tandem::data::{SplitConfig, SplitManifest, Splits};
use tandem::task::{lookup, BUILTIN_TASKS};

use crate::support;

#[test]
fn every_lookup_loads_with_its_documented_class_counts() {
    let assets = support::assets(&[ROTTEN_TOMATOES, UCI_SENTIMENT]);
    let expected = [
        ("mr", vec![5405, 7403]),
        ("mr-decoder", vec![5405, 7403]),
        ("subj", vec![1083, 1083]), // 1,097 plot rows, 14 of them empty
        ("uci-imdb", vec![500, 500]),
        ("uci-yelp", vec![500, 500]),
        ("uci-amazon", vec![500, 500]),
    ];
    assert_eq!(BUILTIN_TASKS.len(), expected.len());
    for (name, counts) in expected {
        let ds = lookup(name).unwrap().load(&assets).unwrap();
        assert_eq!(ds.class_counts(), counts, "{name}");
        assert!(
            ds.examples.iter().all(|e| !e.text.trim().is_empty()),
            "{name}: empty text"
        );
        assert_eq!(ds.source_sha256.len(), 64);
    }
}

#[test]
fn manifest_round_trips_and_reproduces_the_splits() {
    let assets = support::assets(&[ROTTEN_TOMATOES]);
    let ds = lookup("mr").unwrap().load(&assets).unwrap();
    let (splits, manifest) = Splits::with_manifest(&ds, &SplitConfig::default(), 4).unwrap();
    assert_eq!(splits.train.len(), 32);
    assert_eq!(splits.test.len(), 2000);
    assert_eq!(splits.selection.len(), 500);
    let json = serde_json::to_string(&manifest).unwrap();
    let back: SplitManifest = serde_json::from_str(&json).unwrap();
    let (again, _) = Splits::with_manifest(&ds, &back.config, back.shot_seed).unwrap();
    assert_eq!(again, back.splits);
    assert_eq!(back.source_sha256, ds.source_sha256);
    // A task's declared split sizes reach its configuration.
    let decoder = lookup("mr-decoder").unwrap().tune_config().split;
    assert_eq!((decoder.max_selection, decoder.max_test), (100, 200));
    assert_eq!(decoder.shots, Some(8));
}
