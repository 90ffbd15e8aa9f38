//! Seeded, stratified train / selection / test splits and k-shot sampling, with a manifest that
//! records every index so a run can be reproduced.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, GivenSplits, SplitFile};
use crate::error::{Error, Result};

/// How a dataset is split. The split seed is separate from the run seed so that runs with
/// different seeds are compared on the same test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Seed of the train / selection / test partition.
    pub seed: u64,
    /// Fraction of each class held out for testing.
    pub test_frac: f64,
    /// Upper bound on the test split's size (the fraction shrinks to fit).
    pub max_test: usize,
    /// Fraction of each class held out for selection (model / prompt choice).
    pub selection_frac: f64,
    /// Upper bound on the selection split's size.
    pub max_selection: usize,
    /// Training examples per class (k-shot), or `None` for the full training split.
    pub shots: Option<usize>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            test_frac: 0.2,
            max_test: 2000,
            selection_frac: 0.1,
            max_selection: 500,
            shots: Some(16),
        }
    }
}

impl SplitConfig {
    /// Checks the ranges of every field.
    pub fn validate(&self) -> Result<()> {
        for (name, f) in [
            ("split.test_frac", self.test_frac),
            ("split.selection_frac", self.selection_frac),
        ] {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::config(name, format!("{f} is not in (0, 1)")));
            }
        }
        if self.test_frac + self.selection_frac >= 1.0 {
            return Err(Error::config(
                "split.test_frac + split.selection_frac",
                "leaves no training data (must be < 1)",
            ));
        }
        if self.shots == Some(0) {
            return Err(Error::config(
                "split.shots",
                "must be at least 1 (or absent for the full split)",
            ));
        }
        Ok(())
    }
}

/// The indices (into [`Dataset::examples`]) of each split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splits {
    /// Training examples actually used (k-shot sample or full split).
    pub train: Vec<usize>,
    /// Selection examples.
    pub selection: Vec<usize>,
    /// Test examples.
    pub test: Vec<usize>,
}

/// Everything needed to rebuild a run's data exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitManifest {
    /// Dataset name.
    pub dataset: String,
    /// sha256 of the dataset's source file.
    pub source_sha256: String,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// The split configuration.
    pub config: SplitConfig,
    /// Seed of the k-shot sample (the run seed).
    pub shot_seed: u64,
    /// Size of the training split before k-shot sampling.
    pub train_pool_size: usize,
    /// The indices.
    pub splits: Splits,
    /// Where the selection split came from.
    #[serde(default)]
    pub selection_from: SelectionOrigin,
    /// The split files of a folder that gave the splits, in the order train, validation, test
    /// (empty when the dataset was split here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_files: Vec<SplitFile>,
}

/// Where a manifest's selection split came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionOrigin {
    /// A stratified part of the whole dataset, drawn with the test split.
    #[default]
    Stratified,
    /// A folder's validation file, as given.
    ValidationFile,
    /// A stratified part of a folder's train file.
    TrainFile,
}

impl Splits {
    /// Splits `dataset` per `config`; k-shot sampling draws from the training split with
    /// `shot_seed`. A dataset with [`Dataset::given`] splits keeps them: train and test as
    /// given, selection the validation file or a stratified part of train (`config.seed`).
    /// Returns the splits and the size of the training pool before k-shot sampling.
    pub fn new(dataset: &Dataset, config: &SplitConfig, shot_seed: u64) -> Result<(Splits, usize)> {
        config.validate()?;
        match &dataset.given {
            None => split_whole(dataset, config, shot_seed),
            Some(given) => split_given(dataset, given, config, shot_seed),
        }
    }

    /// Builds the splits and their manifest.
    pub fn with_manifest(
        dataset: &Dataset,
        config: &SplitConfig,
        shot_seed: u64,
    ) -> Result<(Splits, SplitManifest)> {
        let (splits, pool) = Self::new(dataset, config, shot_seed)?;
        let (selection_from, source_files) = match &dataset.given {
            None => (SelectionOrigin::Stratified, Vec::new()),
            Some(g) if g.validation.is_some() => (SelectionOrigin::ValidationFile, g.files.clone()),
            Some(g) => (SelectionOrigin::TrainFile, g.files.clone()),
        };
        let manifest = SplitManifest {
            dataset: dataset.name.clone(),
            source_sha256: dataset.source_sha256.clone(),
            class_names: dataset.class_names.clone(),
            config: config.clone(),
            shot_seed,
            train_pool_size: pool,
            splits: splits.clone(),
            selection_from,
            source_files,
        };
        Ok((splits, manifest))
    }
}

fn shot_rng(shot_seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(shot_seed ^ 0x5eed_5407)
}

/// Keeps `k` examples of `rest` (one class's training pool) drawn with `rng`, or all of them.
fn take_shots(
    rest: &mut Vec<usize>,
    shots: Option<usize>,
    class_name: &str,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    if let Some(k) = shots {
        if k > rest.len() {
            return Err(Error::config(
                "split.shots",
                format!(
                    "{k} shots per class but class `{class_name}` has only {} training examples",
                    rest.len()
                ),
            ));
        }
        rest.shuffle(rng);
        rest.truncate(k);
    }
    Ok(())
}

/// Stratified train / selection / test split of the whole dataset.
fn split_whole(dataset: &Dataset, config: &SplitConfig, shot_seed: u64) -> Result<(Splits, usize)> {
    let n = dataset.examples.len().max(1) as f64;
    let test_frac = config.test_frac.min(config.max_test as f64 / n);
    let sel_frac = config.selection_frac.min(config.max_selection as f64 / n);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut shot_rng = shot_rng(shot_seed);
    let (mut train, mut selection, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let mut pool = 0;
    for (class, mut idx) in dataset.indices_by_class().into_iter().enumerate() {
        idx.shuffle(&mut rng);
        let n_test = (idx.len() as f64 * test_frac).round() as usize;
        let n_sel = (idx.len() as f64 * sel_frac).round() as usize;
        if n_test == 0 || n_sel == 0 || n_test + n_sel >= idx.len() {
            return Err(Error::config(
                format!("split of `{}`", dataset.name),
                format!(
                    "class `{}` has {} examples: too few for test {n_test}, selection {n_sel} and training",
                    dataset.class_names[class],
                    idx.len()
                ),
            ));
        }
        test.extend_from_slice(&idx[..n_test]);
        selection.extend_from_slice(&idx[n_test..n_test + n_sel]);
        let mut rest = idx[n_test + n_sel..].to_vec();
        pool += rest.len();
        take_shots(
            &mut rest,
            config.shots,
            &dataset.class_names[class],
            &mut shot_rng,
        )?;
        train.extend(rest);
    }
    train.sort_unstable();
    selection.sort_unstable();
    test.sort_unstable();
    Ok((
        Splits {
            train,
            selection,
            test,
        },
        pool,
    ))
}

/// The given splits of a folder: train (k-shot sampled) and test as given, selection the
/// validation file or a stratified part of train.
fn split_given(
    dataset: &Dataset,
    given: &GivenSplits,
    config: &SplitConfig,
    shot_seed: u64,
) -> Result<(Splits, usize)> {
    let n_train = given.train.len().max(1) as f64;
    let sel_frac = config
        .selection_frac
        .min(config.max_selection as f64 / n_train);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut shot_rng = shot_rng(shot_seed);
    let mut by_class = vec![Vec::new(); dataset.num_classes()];
    for &i in &given.train {
        by_class[dataset.examples[i].label].push(i);
    }
    let mut selection = given.validation.clone().unwrap_or_default();
    let (mut train, mut pool) = (Vec::new(), 0);
    for (class, mut idx) in by_class.into_iter().enumerate() {
        let name = &dataset.class_names[class];
        let n_sel = match given.validation {
            Some(_) => 0,
            None => {
                idx.shuffle(&mut rng);
                (idx.len() as f64 * sel_frac).round() as usize
            }
        };
        if idx.is_empty() || (given.validation.is_none() && (n_sel == 0 || n_sel >= idx.len())) {
            let need = match given.validation {
                Some(_) => "training".to_string(),
                None => format!("selection {n_sel} and training"),
            };
            return Err(Error::config(
                format!("split of `{}`", dataset.name),
                format!(
                    "class `{name}` has {} examples in the train file: too few for {need}",
                    idx.len()
                ),
            ));
        }
        selection.extend_from_slice(&idx[..n_sel]);
        let mut rest = idx[n_sel..].to_vec();
        pool += rest.len();
        take_shots(&mut rest, config.shots, name, &mut shot_rng)?;
        train.extend(rest);
    }
    train.sort_unstable();
    selection.sort_unstable();
    Ok((
        Splits {
            train,
            selection,
            test: given.test.clone(),
        },
        pool,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Example;

    fn toy(n0: usize, n1: usize) -> Dataset {
        let examples = (0..n0)
            .map(|i| Example::new(format!("neg {i}"), 0))
            .chain((0..n1).map(|i| Example::new(format!("pos {i}"), 1)))
            .collect();
        Dataset {
            name: "toy".into(),
            class_names: vec!["negative".into(), "positive".into()],
            examples,
            source_sha256: String::new(),
            given: None,
        }
    }

    #[test]
    fn splits_are_disjoint_stratified_and_seeded() {
        let ds = toy(300, 200);
        let cfg = SplitConfig {
            shots: None,
            ..Default::default()
        };
        let (a, pool) = Splits::new(&ds, &cfg, 1).unwrap();
        let (b, _) = Splits::new(&ds, &cfg, 2).unwrap();
        assert_eq!(
            a, b,
            "without k-shot the run seed must not change the splits"
        );
        let mut all: Vec<_> = a
            .train
            .iter()
            .chain(&a.selection)
            .chain(&a.test)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 500);
        assert_eq!(pool, a.train.len());
        let pos_test = a
            .test
            .iter()
            .filter(|&&i| ds.examples[i].label == 1)
            .count();
        assert_eq!((a.test.len(), pos_test), (100, 40));
        let other = Splits::new(&ds, &SplitConfig { seed: 9, ..cfg }, 1)
            .unwrap()
            .0;
        assert_ne!(a.test, other.test);
    }

    #[test]
    fn k_shot_takes_k_per_class_from_train_only() {
        let ds = toy(300, 200);
        let cfg = SplitConfig {
            shots: Some(16),
            ..Default::default()
        };
        let (a, _) = Splits::new(&ds, &cfg, 1).unwrap();
        let (b, _) = Splits::new(&ds, &cfg, 2).unwrap();
        assert_eq!(a.train.len(), 32);
        assert_eq!(a.test, b.test);
        assert_ne!(a.train, b.train, "the shot seed changes the sample");
        assert!(a
            .train
            .iter()
            .all(|i| !a.test.contains(i) && !a.selection.contains(i)));
        let pos = a
            .train
            .iter()
            .filter(|&&i| ds.examples[i].label == 1)
            .count();
        assert_eq!(pos, 16);
    }

    #[test]
    fn too_many_shots_is_a_named_error() {
        let ds = toy(30, 30);
        let cfg = SplitConfig {
            shots: Some(100),
            ..Default::default()
        };
        let err = Splits::new(&ds, &cfg, 0).unwrap_err().to_string();
        assert!(err.contains("split.shots") && err.contains("100"), "{err}");
    }
}
