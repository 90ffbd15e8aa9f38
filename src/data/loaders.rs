//! Loaders of the built-in corpora from the verified asset files.

use std::fs::File;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::{Dataset, Example};
use crate::assets::{sha256_file, Assets, ROTTEN_TOMATOES, UCI_SENTIMENT};
use crate::error::{Error, Result};

const RT_FILE: &str = "data/rotten_tomatoes_corpus_full.csv.bz2";

#[derive(Deserialize)]
struct RtRow {
    category: String,
    text: String,
}

/// Reads the Rotten Tomatoes corpus: `(category, text)` rows in file order.
fn read_rotten_tomatoes(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let reader = bzip2::read::BzDecoder::new(file);
    let mut csv = csv::Reader::from_reader(reader);
    let mut rows = Vec::new();
    for (i, row) in csv.deserialize::<RtRow>().enumerate() {
        let row = row.map_err(|e| Error::data(path, format!("row {}: {e}", i + 2)))?;
        let text = row.text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            rows.push((row.category, text));
        }
    }
    Ok(rows)
}

/// `mr`: Rotten Tomatoes review snippets, `rotten` (negative, 0) vs `fresh` (positive, 1).
pub fn load_mr(assets: &Assets) -> Result<Dataset> {
    let path = assets.require(&ROTTEN_TOMATOES, RT_FILE)?;
    let examples = read_rotten_tomatoes(&path)?
        .into_iter()
        .filter_map(|(cat, text)| match cat.as_str() {
            "rotten" => Some(Example::new(text, 0)),
            "fresh" => Some(Example::new(text, 1)),
            _ => None,
        })
        .collect();
    Ok(Dataset {
        name: "mr".into(),
        class_names: vec!["negative".into(), "positive".into()],
        examples,
        source_sha256: sha256_file(&path)?,
        given: None,
    })
}

/// `subj`: plot summaries (objective, 0) vs review snippets (subjective, 1). The 1,083 non-empty
/// plot summaries are kept; the snippets are subsampled (seed 0, fixed) to the same number so
/// that the classes are balanced.
pub fn load_subj(assets: &Assets) -> Result<Dataset> {
    let path = assets.require(&ROTTEN_TOMATOES, RT_FILE)?;
    let rows = read_rotten_tomatoes(&path)?;
    let objective: Vec<_> = rows
        .iter()
        .filter(|(c, _)| c == "plot")
        .map(|(_, t)| t.clone())
        .collect();
    let mut subjective: Vec<_> = rows
        .iter()
        .filter(|(c, _)| c == "fresh" || c == "rotten")
        .map(|(_, t)| t.clone())
        .collect();
    subjective.shuffle(&mut ChaCha8Rng::seed_from_u64(0));
    subjective.truncate(objective.len());
    let examples = objective
        .into_iter()
        .map(|text| Example::new(text, 0))
        .chain(subjective.into_iter().map(|text| Example::new(text, 1)))
        .collect();
    Ok(Dataset {
        name: "subj".into(),
        class_names: vec!["objective".into(), "subjective".into()],
        examples,
        source_sha256: sha256_file(&path)?,
        given: None,
    })
}

/// The three sources of the UCI sentiment-labelled sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UciSource {
    /// IMDB movie reviews.
    Imdb,
    /// Yelp restaurant reviews.
    Yelp,
    /// Amazon product reviews.
    Amazon,
}

impl UciSource {
    fn file_stem(self) -> &'static str {
        match self {
            UciSource::Imdb => "imdb",
            UciSource::Yelp => "yelp",
            UciSource::Amazon => "amazon",
        }
    }
}

#[derive(Deserialize)]
struct UciRow {
    text: String,
    class: Option<u8>,
}

/// `uci-<source>`: 500 negative (0) and 500 positive (1) sentences; the empty entry is dropped.
pub fn load_uci(assets: &Assets, source: UciSource) -> Result<Dataset> {
    let dest = format!("data/uci/{}.json", source.file_stem());
    let path = assets.require(&UCI_SENTIMENT, &dest)?;
    let file = File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
    let rows: Vec<UciRow> = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| Error::data(&path, e.to_string()))?;
    let mut examples = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let text = row.text.split_whitespace().collect::<Vec<_>>().join(" ");
        match row.class {
            Some(c @ (0 | 1)) if !text.is_empty() => examples.push(Example::new(text, c as usize)),
            Some(c) if c > 1 => {
                return Err(Error::data(
                    &path,
                    format!("entry {i}: class {c} is not 0 or 1"),
                ))
            }
            _ => {}
        }
    }
    Ok(Dataset {
        name: format!("uci-{}", source.file_stem()),
        class_names: vec!["negative".into(), "positive".into()],
        examples,
        source_sha256: sha256_file(&path)?,
        given: None,
    })
}
