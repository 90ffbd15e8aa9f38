//! Users' own data files: CSV, TSV and JSONL, or a folder of `train` / `validation` / `test`
//! files, with labels mapped onto the declared class names.
//!
//! Every error names the file, the line (1-based; the header is line 1 of a CSV or TSV file)
//! and the offending value.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::data::{Dataset, Example, GivenSplits, SplitFile};
use crate::error::{Error, Result};
use crate::task::{FileFormat, FileSource, SelectionSplit};

/// Longest excerpt of an offending value quoted in an error.
const PREVIEW_CHARS: usize = 80;

/// Loads a data file (or a folder of split files) declared by a task.
///
/// A file is split later by [`crate::data::Splits::new`]; a folder's `train.EXT` and `test.EXT`
/// are kept as given (in [`Dataset::given`]), with `validation.EXT` as the selection split when
/// `source.selection` is [`SelectionSplit::Validation`].
pub fn load_files(format: FileFormat, source: &FileSource, classes: &[String]) -> Result<Dataset> {
    let path = Path::new(source.path.as_ref());
    let reader = Reader::new(format, source, classes)?;
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => load_folder(&reader, path, source.selection),
        Ok(_) => load_file(&reader, path),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(Error::data(path, "no such file or folder"))
        }
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// One file, split later by [`crate::data::Splits::new`].
fn load_file(reader: &Reader, path: &Path) -> Result<Dataset> {
    let (examples, sha) = reader.read(path)?;
    reader.check_every_class(path, &examples)?;
    Ok(Dataset {
        name: dataset_name(path),
        class_names: reader.classes.to_vec(),
        examples,
        source_sha256: sha,
        given: None,
    })
}

/// A folder of `train`, `validation` (optional) and `test` files, whose splits are kept.
fn load_folder(reader: &Reader, folder: &Path, selection: SelectionSplit) -> Result<Dataset> {
    let ext = reader.format.extension();
    let split_path = |split: &str| folder.join(format!("{split}.{ext}"));
    let need = |split: &str| -> Result<PathBuf> {
        let p = split_path(split);
        if p.is_file() {
            return Ok(p);
        }
        Err(Error::data(
            folder,
            format!(
                "no {split}.{ext}: a folder of split files holds train.{ext} and test.{ext} \
                 (and validation.{ext} for `selection: validation`); {}",
                folder_listing(folder)
            ),
        ))
    };
    let train = need("train")?;
    let validation = match selection {
        SelectionSplit::Train => None,
        SelectionSplit::Validation => {
            let p = split_path("validation");
            if !p.is_file() {
                return Err(Error::data(
                    folder,
                    format!(
                        "no validation.{ext}, which `selection: validation` takes the selection \
                         split from: add it, or set `selection: train` to hold out part of \
                         train.{ext}; {}",
                        folder_listing(folder)
                    ),
                ));
            }
            Some(p)
        }
    };
    let test = need("test")?;
    let mut examples = Vec::new();
    let mut files = Vec::new();
    let mut ranges = Vec::new();
    for (split, p) in [
        ("train", Some(train)),
        ("validation", validation),
        ("test", Some(test)),
    ] {
        let Some(p) = p else { continue };
        let (part, sha) = reader.read(&p)?;
        let start = examples.len();
        files.push(SplitFile {
            split: split.to_string(),
            path: p.display().to_string(),
            sha256: sha,
            examples: part.len(),
        });
        examples.extend(part);
        ranges.push((split, (start..examples.len()).collect::<Vec<_>>()));
    }
    reader.check_every_class(folder, &examples)?;
    let mut take = |split: &str| {
        ranges
            .iter_mut()
            .find(|(s, _)| *s == split)
            .map(|(_, r)| std::mem::take(r))
    };
    let given = GivenSplits {
        train: take("train").unwrap_or_default(),
        validation: take("validation"),
        test: take("test").unwrap_or_default(),
        files,
    };
    let concatenated: String = given.files.iter().map(|f| f.sha256.as_str()).collect();
    Ok(Dataset {
        name: dataset_name(folder),
        class_names: reader.classes.to_vec(),
        examples,
        source_sha256: sha256_hex(concatenated.as_bytes()),
        given: Some(given),
    })
}

/// What a folder holds, for errors about missing split files.
fn folder_listing(folder: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(folder)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        return "the folder is empty".into();
    }
    format!("the folder holds {}", quoted_list(&names, 10))
}

/// File stem of a file, name of a folder.
fn dataset_name(path: &Path) -> String {
    let name = |p: &Path| {
        if p.is_dir() {
            p.file_name().map(|s| s.to_string_lossy().into_owned())
        } else {
            p.file_stem().map(|s| s.to_string_lossy().into_owned())
        }
    };
    name(path)
        .or_else(|| path.canonicalize().ok().as_deref().and_then(name))
        .unwrap_or_else(|| "data".into())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `a`, `b`, `c`, cut after `max` items.
fn quoted_list<S: AsRef<str>>(items: &[S], max: usize) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(max)
        .map(|s| format!("`{}`", s.as_ref()))
        .collect();
    if items.len() > max {
        out.push(format!("… ({} in all)", items.len()));
    }
    out.join(", ")
}

/// `s`, cut to [`PREVIEW_CHARS`] characters.
fn preview(s: &str) -> String {
    let s = s.trim_end_matches(['\r', '\n']);
    match s.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A label as read: its text (an integer as its decimal text), trimmed.
struct RawLabel(String);

impl RawLabel {
    /// The class index it spells, when it is a non-negative integer.
    fn index(&self) -> Option<usize> {
        let s = self.0.as_str();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

/// Reads the rows of one file into examples.
struct Reader<'a> {
    format: FileFormat,
    source: &'a FileSource,
    classes: &'a [String],
}

impl<'a> Reader<'a> {
    fn new(format: FileFormat, source: &'a FileSource, classes: &'a [String]) -> Result<Self> {
        crate::task::check_labels(source, classes.len())?;
        if let Some(labels) = &source.labels {
            for (i, l) in labels.iter().enumerate() {
                if labels[..i].iter().any(|m| m.trim() == l.trim()) {
                    return Err(Error::config(
                        "data.labels",
                        format!("`{l}` is given twice"),
                    ));
                }
            }
        }
        Ok(Self {
            format,
            source,
            classes,
        })
    }

    /// `column` in CSV and TSV, `field` in JSONL.
    fn what(&self) -> &'static str {
        match self.format {
            FileFormat::Jsonl => "field",
            FileFormat::Csv | FileFormat::Tsv => "column",
        }
    }

    /// The examples of the file at `path`, and its sha256.
    fn read(&self, path: &Path) -> Result<(Vec<Example>, String)> {
        // The caller checked that the file is there: any failure now is an I/O error.
        let bytes = fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            let what = match self.format {
                FileFormat::Jsonl => "no rows",
                FileFormat::Csv | FileFormat::Tsv => "no header and no rows",
            };
            return Err(Error::data(
                path,
                format!("line 1: the file is empty ({what})"),
            ));
        }
        let examples = match self.format {
            FileFormat::Csv => self.read_delimited(path, &bytes, b',')?,
            FileFormat::Tsv => self.read_delimited(path, &bytes, b'\t')?,
            FileFormat::Jsonl => self.read_jsonl(path, &bytes)?,
        };
        if examples.is_empty() {
            return Err(Error::data(
                path,
                "line 2: the file is empty: it has a header but no rows",
            ));
        }
        Ok((examples, sha256_hex(&bytes)))
    }

    /// A CSV or TSV file with a header row.
    fn read_delimited(&self, path: &Path, bytes: &[u8], delimiter: u8) -> Result<Vec<Example>> {
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(bytes);
        let header = csv.byte_headers().map_err(|e| csv_error(path, e))?;
        let columns: Vec<String> = header
            .iter()
            .map(|c| String::from_utf8_lossy(c).trim().to_string())
            .collect();
        let column = |name: &str| -> Result<usize> {
            let mut at = columns.iter().enumerate().filter(|(_, c)| *c == name);
            match (at.next(), at.next()) {
                (Some((i, _)), None) => Ok(i),
                (Some(_), Some(_)) => Err(Error::data(
                    path,
                    format!("line 1: column `{name}` appears more than once in the header"),
                )),
                (None, _) => Err(Error::data(
                    path,
                    format!(
                        "line 1: no column `{name}` in the header; its columns are {}",
                        quoted_list(&columns, 30)
                    ),
                )),
            }
        };
        let text_at = column(&self.source.text)?;
        let pair_at = self.source.pair.as_deref().map(column).transpose()?;
        let label_at = column(&self.source.label)?;
        let mut examples = Vec::new();
        for record in csv.byte_records() {
            let record = record.map_err(|e| csv_error(path, e))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != columns.len() {
                let sep = if delimiter == b'\t' { "\t" } else { "," };
                let row: Vec<_> = record.iter().map(String::from_utf8_lossy).collect();
                return Err(Error::data(
                    path,
                    format!(
                        "line {line}: {} but the header has {}: `{}`",
                        match record.len() {
                            1 => "1 field".to_string(),
                            n => format!("{n} fields"),
                        },
                        columns.len(),
                        preview(&row.join(sep))
                    ),
                ));
            }
            let cell = |at: usize| {
                std::str::from_utf8(&record[at]).map_err(|_| {
                    Error::data(
                        path,
                        format!(
                            "line {line}: not valid UTF-8 in column `{}`: `{}`",
                            columns[at],
                            preview(&String::from_utf8_lossy(&record[at]))
                        ),
                    )
                })
            };
            let label = RawLabel(cell(label_at)?.trim().to_string());
            let pair = pair_at.map(cell).transpose()?;
            examples.push(self.example(path, line, cell(text_at)?, pair, label)?);
        }
        Ok(examples)
    }

    /// One JSON object per line; blank lines are skipped.
    fn read_jsonl(&self, path: &Path, bytes: &[u8]) -> Result<Vec<Example>> {
        let mut examples = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i as u64 + 1;
            let raw = if i == 0 {
                raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw)
            } else {
                raw
            };
            let text = std::str::from_utf8(raw).map_err(|e| {
                Error::data(
                    path,
                    format!(
                        "line {line}: not valid UTF-8 (at byte {}): `{}`",
                        e.valid_up_to() + 1,
                        preview(&String::from_utf8_lossy(raw))
                    ),
                )
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(text).map_err(|e| {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                Error::data(
                    path,
                    format!(
                        "line {line}: not valid JSON ({msg} at column {}): `{}`",
                        e.column(),
                        preview(text)
                    ),
                )
            })?;
            let Value::Object(object) = &value else {
                return Err(Error::data(
                    path,
                    format!("line {line}: not a JSON object: `{}`", preview(text)),
                ));
            };
            examples.push(self.json_example(path, line, object)?);
        }
        Ok(examples)
    }

    /// The example of one JSONL object.
    fn json_example(&self, path: &Path, line: u64, object: &Map<String, Value>) -> Result<Example> {
        let field = |name: &str| -> Result<&Value> {
            object.get(name).ok_or_else(|| {
                let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                let keys = if keys.is_empty() {
                    "the object has no keys".to_string()
                } else {
                    format!("the object's keys are {}", quoted_list(&keys, 30))
                };
                Error::data(path, format!("line {line}: no field `{name}`; {keys}"))
            })
        };
        let string = |name: &str| -> Result<&str> {
            match field(name)? {
                Value::String(s) => Ok(s),
                other => Err(Error::data(
                    path,
                    format!(
                        "line {line}: field `{name}` is not a string: `{}`",
                        preview(&other.to_string())
                    ),
                )),
            }
        };
        let text = string(&self.source.text)?;
        let pair = self.source.pair.as_deref().map(string).transpose()?;
        let name = self.source.label.as_ref();
        let label = match field(name)? {
            Value::String(s) => RawLabel(s.trim().to_string()),
            Value::Number(n) if n.is_i64() || n.is_u64() => RawLabel(n.to_string()),
            other => {
                return Err(Error::data(
                    path,
                    format!(
                        "line {line}: field `{name}` is not a string or an integer: `{}`",
                        preview(&other.to_string())
                    ),
                ))
            }
        };
        self.example(path, line, text, pair, label)
    }

    /// An example from its raw parts: texts normalised and non-empty, label mapped to a class.
    fn example(
        &self,
        path: &Path,
        line: u64,
        text: &str,
        pair: Option<&str>,
        label: RawLabel,
    ) -> Result<Example> {
        let what = self.what();
        let empty = |name: &str, role: &str| {
            Error::data(
                path,
                format!("line {line}: empty {role} in {what} `{name}`"),
            )
        };
        let text = normalise(text);
        if text.is_empty() {
            return Err(empty(&self.source.text, "text"));
        }
        let pair = match (pair, &self.source.pair) {
            (Some(p), Some(name)) => {
                let p = normalise(p);
                if p.is_empty() {
                    return Err(empty(name, "pair text"));
                }
                Some(p)
            }
            _ => None,
        };
        let label = self.class_of(&label).ok_or_else(|| {
            Error::data(
                path,
                format!(
                    "line {line}: unknown label `{}` in {what} `{}`; accepted: {}",
                    preview(&label.0),
                    self.source.label,
                    self.accepted()
                ),
            )
        })?;
        Ok(Example { text, pair, label })
    }

    /// The class a raw label stands for: by `labels`, if declared; else by class name, else by
    /// class index.
    fn class_of(&self, raw: &RawLabel) -> Option<usize> {
        if let Some(labels) = &self.source.labels {
            return labels.iter().position(|l| l.trim() == raw.0);
        }
        self.classes
            .iter()
            .position(|c| *c == raw.0)
            .or_else(|| raw.index().filter(|&i| i < self.classes.len()))
    }

    /// The raw labels accepted, for errors.
    fn accepted(&self) -> String {
        match &self.source.labels {
            Some(labels) => format!(
                "{} (the declared `labels`, in class order)",
                quoted_list(labels, 30)
            ),
            None => format!(
                "the class names {} or the class indices 0 to {}",
                quoted_list(self.classes, 30),
                self.classes.len().saturating_sub(1)
            ),
        }
    }

    /// Every class has at least one example.
    fn check_every_class(&self, path: &Path, examples: &[Example]) -> Result<()> {
        let mut counts = vec![0usize; self.classes.len()];
        for e in examples {
            counts[e.label] += 1;
        }
        let Some(class) = counts.iter().position(|&n| n == 0) else {
            return Ok(());
        };
        let raw = match &self.source.labels {
            Some(labels) => format!("`{}`", labels[class]),
            None => format!("`{}` or {class}", self.classes[class]),
        };
        let summary: Vec<String> = self
            .classes
            .iter()
            .zip(&counts)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        Err(Error::data(
            path,
            format!(
                "class `{}` has no examples: no row's {} `{}` is {raw} (examples per class: {})",
                self.classes[class],
                self.what(),
                self.source.label,
                summary.join(", ")
            ),
        ))
    }
}

/// A CSV reader's error, with its line (the reader reads bytes in memory: no I/O error here).
fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::data(path, format!("line {line}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::data::{SelectionOrigin, SplitConfig, Splits};
    use crate::task::Text;

    fn classes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn source(path: &Path, pair: bool, labels: Option<&[&str]>) -> FileSource {
        FileSource {
            path: path.display().to_string().into(),
            text: "text".into(),
            pair: pair.then(|| "pair".into()),
            label: "label".into(),
            labels: labels.map(|l| {
                l.iter()
                    .map(|s| Text::from(s.to_string()))
                    .collect::<Vec<_>>()
                    .into()
            }),
            selection: SelectionSplit::Validation,
        }
    }

    fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    fn load(format: FileFormat, path: &Path, names: &[&str]) -> Result<Dataset> {
        load_files(format, &source(path, false, None), &classes(names))
    }

    /// One bad file: its contents and the substrings its error must hold (besides the file name).
    /// In delimited contents and expectations `|` stands for the delimiter.
    struct Case {
        contents: &'static [u8],
        pair: bool,
        labels: Option<&'static [&'static str]>,
        expect: &'static [&'static str],
    }

    const fn case(contents: &'static [u8], expect: &'static [&'static str]) -> Case {
        Case {
            contents,
            pair: false,
            labels: None,
            expect,
        }
    }

    const fn pair_case(contents: &'static [u8], expect: &'static [&'static str]) -> Case {
        Case {
            pair: true,
            ..case(contents, expect)
        }
    }

    const fn labels_case(contents: &'static [u8], expect: &'static [&'static str]) -> Case {
        Case {
            labels: Some(&["0", "1"]),
            ..case(contents, expect)
        }
    }

    const DELIMITED_CASES: &[Case] = &[
        case(
            b"text|label\ngood|positive\nbad|maybe\n",
            &[
                "line 3:",
                "unknown label `maybe`",
                "column `label`",
                "`negative`, `positive`",
                "0 to 1",
            ],
        ),
        case(
            b"text|label\ngood|1\nbad|2\n",
            &["line 3:", "unknown label `2`"],
        ),
        case(
            b"text|label\ngood|1\nbad|-1\n",
            &["line 3:", "unknown label `-1`"],
        ),
        labels_case(
            b"text|label\ngood|positive\n",
            &[
                "line 2:",
                "unknown label `positive`",
                "`0`, `1` (the declared `labels`",
            ],
        ),
        case(
            b"text|label\ngood|1\n   |0\n",
            &["line 3:", "empty text in column `text`"],
        ),
        pair_case(
            b"text|pair|label\na|b|1\nc| |0\n",
            &["line 3:", "empty pair text in column `pair`"],
        ),
        case(
            b"sentence|label\na|1\n",
            &["line 1:", "no column `text`", "`sentence`, `label`"],
        ),
        case(
            b"text|class\na|1\n",
            &["line 1:", "no column `label`", "`text`, `class`"],
        ),
        pair_case(
            b"text|label\na|1\n",
            &["line 1:", "no column `pair`", "`text`, `label`"],
        ),
        case(
            b"text|text|label\na|b|1\n",
            &["line 1:", "`text` appears more than once"],
        ),
        case(
            b"text|label\ngood|1\nbad|0|extra\n",
            &["line 3:", "3 fields but the header has 2", "`bad|0|extra`"],
        ),
        case(
            b"text|label\ngood|1\nbad\n",
            &["line 3:", "1 field but the header has 2", "`bad`"],
        ),
        case(
            b"text|label\n\"two\nlines\"|1\nb|none\n",
            &["line 4:", "unknown label `none`"],
        ),
        case(
            b"text|label\ngood|1\nb\xff\xfe|0\n",
            &[
                "line 3:",
                "not valid UTF-8 in column `text`",
                "`b\u{fffd}\u{fffd}`",
            ],
        ),
        case(
            b"text|label\na|positive\nb|1\n",
            &[
                "class `negative` has no examples",
                "`negative` or 0",
                "negative 0, positive 2",
            ],
        ),
        labels_case(
            b"text|label\na|1\nb|1\n",
            &["class `negative` has no examples", "is `0`"],
        ),
        case(b"", &["line 1:", "the file is empty"]),
        case(b"  \n\n", &["line 1:", "the file is empty"]),
        case(
            b"text|label\n",
            &["the file is empty", "header but no rows"],
        ),
    ];

    const JSONL_CASES: &[Case] = &[
        case(
            b"{\"text\": \"a\", \"label\": \"positive\"}\n{\"text\": \"b\", \"label\": \"maybe\"}\n",
            &["line 2:", "unknown label `maybe`", "field `label`", "`negative`, `positive`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 5}\n",
            &["line 2:", "unknown label `5`", "0 to 1"],
        ),
        labels_case(
            b"{\"text\": \"a\", \"label\": \"negative\"}\n",
            &["line 1:", "unknown label `negative`", "`0`, `1`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1.5}\n",
            &["line 1:", "field `label` is not a string or an integer", "`1.5`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": true}\n",
            &["line 2:", "field `label` is not a string or an integer", "`true`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \" \\t \", \"label\": 0}\n",
            &["line 2:", "empty text in field `text`"],
        ),
        pair_case(
            b"{\"text\": \"a\", \"pair\": \"\", \"label\": 0}\n",
            &["line 1:", "empty pair text in field `pair`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n{\"sentence\": \"b\", \"label\": 0}\n",
            &["line 2:", "no field `text`", "`sentence`", "`label`"],
        ),
        case(
            b"{\"text\": \"a\", \"class\": 1}\n",
            &["line 1:", "no field `label`", "`text`", "`class`"],
        ),
        pair_case(
            b"{\"text\": \"a\", \"label\": 1}\n",
            &["line 1:", "no field `pair`", "`text`", "`label`"],
        ),
        case(b"{}\n", &["line 1:", "no field `text`", "the object has no keys"]),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": }\n",
            &["line 2:", "not valid JSON", "`{\"text\": \"b\", \"label\": }`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n\n\n{\"text\": \"b\"\n",
            &["line 4:", "not valid JSON", "`{\"text\": \"b\"`"],
        ),
        case(b"[\"a\", 1]\n", &["line 1:", "not a JSON object", "`[\"a\", 1]`"]),
        case(b"\"just text\"\n", &["line 1:", "not a JSON object", "`\"just text\"`"]),
        case(
            b"{\"text\": 5, \"label\": 1}\n",
            &["line 1:", "field `text` is not a string", "`5`"],
        ),
        pair_case(
            b"{\"text\": \"a\", \"pair\": null, \"label\": 1}\n",
            &["line 1:", "field `pair` is not a string", "`null`"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"\xff\", \"label\": 1}\n",
            &["line 2:", "not valid UTF-8"],
        ),
        case(
            b"{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": \"negative\"}\n",
            &["class `positive` has no examples", "`positive` or 1", "negative 2, positive 0"],
        ),
        case(b"", &["line 1:", "the file is empty"]),
        case(b"\n  \n\n", &["line 1:", "the file is empty"]),
    ];

    fn check_case(dir: &Path, format: FileFormat, n: usize, case: &Case) {
        let sep = match format {
            FileFormat::Tsv => "\t",
            _ => ",",
        };
        let subst = |b: &[u8]| -> Vec<u8> {
            b.iter()
                .flat_map(|&c| match (c, format) {
                    (b'|', FileFormat::Csv) => vec![b','],
                    (b'|', FileFormat::Tsv) => vec![b'\t'],
                    _ => vec![c],
                })
                .collect()
        };
        let name = format!("case-{n}.{}", format.extension());
        let path = write(dir, &name, &subst(case.contents));
        let src = source(&path, case.pair, case.labels);
        let err = match load_files(format, &src, &classes(&["negative", "positive"])) {
            Ok(ds) => panic!(
                "{name}: loaded {} examples, expected an error",
                ds.examples.len()
            ),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&name), "{name}: file not named in `{err}`");
        for want in case.expect {
            let want = want.replace('|', sep);
            assert!(err.contains(&want), "{name}: `{want}` not in `{err}`");
        }
    }

    #[test]
    fn every_bad_file_is_an_error_naming_file_line_and_value() {
        let dir = tempfile::tempdir().unwrap();
        for format in [FileFormat::Csv, FileFormat::Tsv] {
            for (n, case) in DELIMITED_CASES.iter().enumerate() {
                check_case(dir.path(), format, n, case);
            }
        }
        for (n, case) in JSONL_CASES.iter().enumerate() {
            check_case(dir.path(), FileFormat::Jsonl, n, case);
        }
    }

    #[test]
    fn missing_files_and_folders_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for format in [FileFormat::Csv, FileFormat::Tsv, FileFormat::Jsonl] {
            let ext = format.extension();
            let missing = dir.path().join(format!("absent.{ext}"));
            let err = load(format, &missing, &["a", "b"]).unwrap_err().to_string();
            assert!(
                err.contains(&format!("absent.{ext}")) && err.contains("no such file"),
                "{err}"
            );
            let folder = dir.path().join(format!("split-{ext}"));
            fs::create_dir(&folder).unwrap();
            let err = load(format, &folder, &["a", "b"]).unwrap_err().to_string();
            assert!(err.contains(&format!("split-{ext}")), "{err}");
            assert!(err.contains(&format!("no train.{ext}")), "{err}");
            assert!(err.contains("the folder is empty"), "{err}");
            let row = match format {
                FileFormat::Jsonl => {
                    "{\"text\": \"x\", \"label\": 0}\n{\"text\": \"y\", \"label\": 1}\n"
                }
                FileFormat::Csv => "text,label\nx,0\ny,1\n",
                FileFormat::Tsv => "text\tlabel\nx\t0\ny\t1\n",
            };
            write(&folder, &format!("train.{ext}"), row.as_bytes());
            let err = load(format, &folder, &["a", "b"]).unwrap_err().to_string();
            assert!(err.contains(&format!("split-{ext}")), "{err}");
            assert!(err.contains(&format!("no validation.{ext}")), "{err}");
            assert!(err.contains("selection: train"), "{err}");
            assert!(err.contains(&format!("`train.{ext}`")), "{err}");
            let mut src = source(&folder, false, None);
            src.selection = SelectionSplit::Train;
            let err = load_files(format, &src, &classes(&["a", "b"]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("no test.{ext}")), "{err}");
            write(&folder, &format!("validation.{ext}"), row.as_bytes());
            let err = load(format, &folder, &["a", "b"]).unwrap_err().to_string();
            assert!(err.contains(&format!("no test.{ext}")), "{err}");
        }
    }

    #[test]
    fn mismatched_labels_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.csv", b"text,label\na,0\n");
        let src = source(&path, false, Some(&["0"]));
        let err = load_files(FileFormat::Csv, &src, &classes(&["a", "b"])).unwrap_err();
        assert!(
            err.to_string().contains("1 raw labels given for 2 classes"),
            "{err}"
        );
        let src = source(&path, false, Some(&["0", "0"]));
        let err = load_files(FileFormat::Csv, &src, &classes(&["a", "b"])).unwrap_err();
        assert!(err.to_string().contains("`0` is given twice"), "{err}");
    }

    const TOPICS: [&str; 4] = ["world", "sports", "business", "science"];

    /// `n` JSONL rows per class, labels written by `label(class)`, interleaved.
    fn topic_jsonl(n: usize, label: impl Fn(usize) -> String) -> String {
        let mut s = String::new();
        for i in 0..n {
            for (c, topic) in TOPICS.iter().enumerate() {
                s += &format!(
                    "{{\"text\": \"  {topic} story\\tnumber {i} \", \"label\": {}}}\n",
                    label(c)
                );
            }
        }
        s
    }

    #[test]
    fn four_class_jsonl_with_string_labels() {
        let dir = tempfile::tempdir().unwrap();
        let contents = topic_jsonl(10, |c| format!("\"{}\"", TOPICS[c]));
        let path = write(dir.path(), "news.jsonl", contents.as_bytes());
        let ds = load(FileFormat::Jsonl, &path, &TOPICS).unwrap();
        assert_eq!(ds.name, "news");
        assert_eq!(ds.examples.len(), 40);
        assert_eq!(ds.class_counts(), vec![10; 4]);
        assert_eq!(ds.examples[5].label, 1);
        assert_eq!(
            ds.examples[5].text, "sports story number 1",
            "whitespace normalised"
        );
        assert_eq!(ds.examples[5].pair, None);
        assert_eq!(ds.source_sha256, sha256_hex(contents.as_bytes()));
        assert!(ds.given.is_none());
    }

    /// The digest is the file's own (pinned, computed by Python's hashlib), and a path that is
    /// there but cannot be read is an I/O error saying why, not "no such file".
    #[test]
    fn the_digest_is_the_files_and_unreadable_paths_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "two.csv",
            b"text,label\nfine film,1\nbad film,0\n",
        );
        let ds = load(FileFormat::Csv, &path, &["bad", "good"]).unwrap();
        assert_eq!(
            ds.source_sha256,
            "ddd66cb466d8ba89c8f6c81fd2cc1da23198cb5a730616e5bfa3d20c8bddc284"
        );
        // A file used as a folder: the metadata call fails, but not with "not found".
        let inside = path.join("inner.csv");
        let err = load(FileFormat::Csv, &inside, &["bad", "good"])
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("no such file or folder") && err.contains("inner.csv"),
            "{err}"
        );
        let absent = dir.path().join("absent.csv");
        let err = load(FileFormat::Csv, &absent, &["bad", "good"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file or folder"), "{err}");
    }

    #[test]
    fn only_plain_digits_are_class_indices() {
        let index = |s: &str| RawLabel(s.into()).index();
        assert_eq!(index("12"), Some(12));
        assert_eq!(index("007"), Some(7));
        // Rust's integer parser takes these; a label column does not.
        assert_eq!(index("+1"), None);
        assert_eq!(index(""), None);
        assert_eq!(index("-1"), None);
        assert_eq!(index("1.0"), None);
    }

    /// JSONL: integer labels −1 / 1 (as in many sentiment sets) map through the declared
    /// `labels`; a byte-order mark is read before the first line only.
    #[test]
    fn jsonl_negative_integer_labels_and_a_leading_bom() {
        let dir = tempfile::tempdir().unwrap();
        let rows =
            "{\"text\": \"bad film\", \"label\": -1}\n{\"text\": \"fine film\", \"label\": 1}\n";
        let path = write(dir.path(), "pm.jsonl", format!("\u{feff}{rows}").as_bytes());
        let src = source(&path, false, Some(&["-1", "1"]));
        let ds = load_files(FileFormat::Jsonl, &src, &classes(&["neg", "pos"])).unwrap();
        let labels: Vec<usize> = ds.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [0, 1]);
        let late = write(
            dir.path(),
            "late.jsonl",
            format!("{rows}\u{feff}{rows}").as_bytes(),
        );
        let err = load_files(
            FileFormat::Jsonl,
            &source(&late, false, Some(&["-1", "1"])),
            &classes(&["neg", "pos"]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn quoted_lists_say_how_many_when_cut() {
        assert_eq!(quoted_list(&["a", "b"], 3), "`a`, `b`");
        assert_eq!(quoted_list(&["a", "b", "c"], 3), "`a`, `b`, `c`");
        assert_eq!(
            quoted_list(&["a", "b", "c", "d"], 3),
            "`a`, `b`, `c`, … (4 in all)"
        );
    }

    #[test]
    fn integer_labels_are_class_indices() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "ints.jsonl",
            topic_jsonl(3, |c| c.to_string()).as_bytes(),
        );
        let ds = load(FileFormat::Jsonl, &path, &TOPICS).unwrap();
        let labels: Vec<usize> = ds.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [0, 1, 2, 3].repeat(3));
        // In CSV every cell is text; an integer-looking one is an index, a class name a name.
        let path = write(
            dir.path(),
            "ints.csv",
            b"\xef\xbb\xbftext,label\na,1\nb, 0 \nc,business\nd,3\n",
        );
        let ds = load(FileFormat::Csv, &path, &TOPICS).unwrap();
        let labels: Vec<usize> = ds.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [1, 0, 2, 3]);
    }

    #[test]
    fn declared_labels_remap_raw_values() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["entailment", "not entailment"];
        let jsonl = write(
            dir.path(),
            "rte.jsonl",
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 0}\n{\"text\": \"c\", \"label\": \"1\"}\n",
        );
        let src = source(&jsonl, false, Some(&["0", "1"]));
        let ds = load_files(FileFormat::Jsonl, &src, &classes(&names)).unwrap();
        let labels: Vec<usize> = ds.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [1, 0, 1]);
        assert_eq!(ds.class_names, names);
        // Reversed: raw `1` is class 0.
        let src = source(&jsonl, false, Some(&["1", "0"]));
        let ds = load_files(FileFormat::Jsonl, &src, &classes(&names)).unwrap();
        let labels: Vec<usize> = ds.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [0, 1, 0]);
        let tsv = write(dir.path(), "rte.tsv", b"text\tlabel\na\tyes\nb\tno\n");
        let src = source(&tsv, false, Some(&["yes", "no"]));
        let ds = load_files(FileFormat::Tsv, &src, &classes(&names)).unwrap();
        let labels: Vec<usize> = ds.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [0, 1]);
    }

    #[test]
    fn csv_sentence_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "pairs.csv",
            b"id,text,pair,label\n1,\"A man, asleep, on a bench.\",A person  rests.,entailment\n2,\"He said \"\"no\"\".\",\"He\nagreed.\",contradiction\n",
        );
        let src = source(&path, true, None);
        let ds = load_files(
            FileFormat::Csv,
            &src,
            &classes(&["entailment", "contradiction"]),
        )
        .unwrap();
        assert_eq!(ds.examples.len(), 2);
        assert_eq!(ds.examples[0].text, "A man, asleep, on a bench.");
        assert_eq!(ds.examples[0].pair.as_deref(), Some("A person rests."));
        assert_eq!(ds.examples[1].text, "He said \"no\".");
        assert_eq!(ds.examples[1].pair.as_deref(), Some("He agreed."));
        assert_eq!(ds.examples[1].label, 1);
    }

    /// Every class of `names` in every split of `splits`.
    fn every_class_everywhere(ds: &Dataset, splits: &Splits) {
        for (name, idx) in [
            ("train", &splits.train),
            ("selection", &splits.selection),
            ("test", &splits.test),
        ] {
            let seen: BTreeSet<usize> = idx.iter().map(|&i| ds.examples[i].label).collect();
            assert_eq!(seen.len(), ds.num_classes(), "{name} misses a class");
        }
    }

    #[test]
    fn a_four_class_file_is_split_stratified() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "topics.jsonl",
            topic_jsonl(20, |c| format!("\"{}\"", TOPICS[c])).as_bytes(),
        );
        let ds = load(FileFormat::Jsonl, &path, &TOPICS).unwrap();
        let cfg = SplitConfig {
            shots: Some(3),
            ..Default::default()
        };
        let (splits, manifest) = Splits::with_manifest(&ds, &cfg, 7).unwrap();
        every_class_everywhere(&ds, &splits);
        assert_eq!(splits.test.len(), 16);
        assert_eq!(splits.selection.len(), 8);
        assert_eq!(splits.train.len(), 12);
        assert_eq!(manifest.selection_from, SelectionOrigin::Stratified);
        assert!(manifest.source_files.is_empty());
    }

    /// A folder of CSV split files: train 4 × 10, validation 4 × 2, test 4 × 3 rows.
    fn topic_folder(dir: &Path, with_validation: bool) -> PathBuf {
        let folder = dir.join("topics");
        fs::create_dir(&folder).unwrap();
        let rows = |split: &str, n: usize| {
            let mut s = String::from("label,text\n");
            for i in 0..n {
                for t in TOPICS {
                    s += &format!("{t},{split} {t} {i}\n");
                }
            }
            s
        };
        write(&folder, "train.csv", rows("train", 10).as_bytes());
        if with_validation {
            write(&folder, "validation.csv", rows("validation", 2).as_bytes());
        }
        write(&folder, "test.csv", rows("test", 3).as_bytes());
        folder
    }

    #[test]
    fn a_folder_gives_its_splits_with_validation_as_selection() {
        let dir = tempfile::tempdir().unwrap();
        let folder = topic_folder(dir.path(), true);
        let ds = load(FileFormat::Csv, &folder, &TOPICS).unwrap();
        assert_eq!(ds.name, "topics");
        assert_eq!(ds.examples.len(), 40 + 8 + 12);
        let given = ds.given.clone().unwrap();
        assert_eq!(given.train, (0..40).collect::<Vec<_>>());
        assert_eq!(given.validation, Some((40..48).collect()));
        assert_eq!(given.test, (48..60).collect::<Vec<_>>());
        let shas: String = given.files.iter().map(|f| f.sha256.clone()).collect();
        assert_eq!(ds.source_sha256, sha256_hex(shas.as_bytes()));
        let cfg = SplitConfig {
            shots: Some(2),
            ..Default::default()
        };
        let (a, manifest) = Splits::with_manifest(&ds, &cfg, 1).unwrap();
        let (b, _) = Splits::new(&ds, &cfg, 2).unwrap();
        // Test and selection are exactly the files' rows, whatever the seeds.
        assert_eq!(a.test, given.test);
        assert!(a
            .test
            .iter()
            .all(|&i| ds.examples[i].text.starts_with("test ")));
        assert_eq!(a.selection, (40..48).collect::<Vec<_>>());
        assert_eq!((&b.test, &b.selection), (&a.test, &a.selection));
        // k-shot draws from train with the run seed.
        assert_eq!(a.train.len(), 8);
        assert!(a.train.iter().all(|&i| i < 40));
        assert_ne!(a.train, b.train);
        every_class_everywhere(&ds, &a);
        assert_eq!(manifest.selection_from, SelectionOrigin::ValidationFile);
        assert_eq!(manifest.train_pool_size, 40);
        let splits: Vec<&str> = manifest
            .source_files
            .iter()
            .map(|f| f.split.as_str())
            .collect();
        assert_eq!(splits, ["train", "validation", "test"]);
        assert!(manifest.source_files[1].path.ends_with("validation.csv"));
        assert_eq!(manifest.source_files[2].examples, 12);
        let json = serde_json::to_string(&manifest).unwrap();
        let back: crate::data::SplitManifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.source_files, manifest.source_files);
    }

    #[test]
    fn a_folder_can_take_selection_from_train() {
        let dir = tempfile::tempdir().unwrap();
        // The validation file is there but not read.
        let folder = topic_folder(dir.path(), true);
        let mut src = source(&folder, false, None);
        src.selection = SelectionSplit::Train;
        let ds = load_files(FileFormat::Csv, &src, &classes(&TOPICS)).unwrap();
        let given = ds.given.clone().unwrap();
        assert_eq!(ds.examples.len(), 52);
        assert_eq!(given.validation, None);
        assert_eq!(given.test, (40..52).collect::<Vec<_>>());
        assert_eq!(given.files.len(), 2);
        let cfg = SplitConfig {
            shots: None,
            selection_frac: 0.2,
            ..Default::default()
        };
        let (a, manifest) = Splits::with_manifest(&ds, &cfg, 1).unwrap();
        assert_eq!(a.test, given.test, "test is the test file's rows");
        assert_eq!(a.selection.len(), 8, "2 of each class's 10");
        assert_eq!(a.train.len(), 32);
        assert!(a.selection.iter().all(|&i| i < 40 && !a.train.contains(&i)));
        every_class_everywhere(&ds, &a);
        assert_eq!(manifest.selection_from, SelectionOrigin::TrainFile);
        assert_eq!(manifest.train_pool_size, 32);
        // The split seed picks the selection part; the run seed does not.
        let (b, _) = Splits::new(&ds, &cfg, 9).unwrap();
        assert_eq!(a, b);
        let other = Splits::new(&ds, &SplitConfig { seed: 3, ..cfg }, 1)
            .unwrap()
            .0;
        assert_ne!(a.selection, other.selection);
        assert_eq!(a.test, other.test);
    }

    #[test]
    fn a_class_missing_from_every_split_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("two");
        fs::create_dir(&folder).unwrap();
        write(&folder, "train.jsonl", b"{\"text\": \"a\", \"label\": 0}\n");
        write(
            &folder,
            "validation.jsonl",
            b"{\"text\": \"b\", \"label\": 0}\n",
        );
        write(&folder, "test.jsonl", b"{\"text\": \"c\", \"label\": 0}\n");
        let err = load(FileFormat::Jsonl, &folder, &["x", "y"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("two") && err.contains("class `y` has no examples"),
            "{err}"
        );
        // A class only in test loads, but cannot be trained.
        write(&folder, "test.jsonl", b"{\"text\": \"c\", \"label\": 1}\n");
        let ds = load(FileFormat::Jsonl, &folder, &["x", "y"]).unwrap();
        let cfg = SplitConfig {
            shots: None,
            ..Default::default()
        };
        let err = Splits::new(&ds, &cfg, 0).unwrap_err().to_string();
        assert!(
            err.contains("class `y` has 0 examples in the train file"),
            "{err}"
        );
    }

    /// A cell the loaders must carry through: quotes, separators, line breaks, braces, non-ASCII
    /// and Unicode whitespace, a NUL and a BOM.
    fn hostile_cell() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const PIECES: [&str; 16] = [
            "a", "Bé", " ", ",", "\t", "\n", "\r\n", "\"", "{", "}", ":", "\u{3000}", "\u{200b}",
            "\0", "\u{feff}", "1",
        ];
        proptest::collection::vec(0..PIECES.len(), 0..8)
            .prop_map(|picks| picks.into_iter().map(|i| PIECES[i]).collect())
    }

    /// Raw labels: class names and indices (padded, zero-led), and ones no class has.
    const LABELS: [&str; 10] = [
        "negative",
        "positive",
        "0",
        "1",
        " positive ",
        "01",
        "2",
        "Positive",
        "",
        "-1",
    ];

    /// One row as the file holds it: text, pair text, raw label.
    type Row = (String, String, &'static str);

    /// The file of `rows` (header `text`, `pair`, `label`), written by a conforming writer,
    /// and the line each row starts on.
    fn written(format: FileFormat, rows: &[Row]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut lines = Vec::new();
        let record = |fields: [&str; 3], bytes: &mut Vec<u8>| match format {
            FileFormat::Jsonl => {
                let label: serde_json::Value = match fields[2].parse::<i64>() {
                    Ok(n) if !fields[2].starts_with('0') || fields[2] == "0" => n.into(),
                    _ => fields[2].into(),
                };
                let v = serde_json::json!({"text": fields[0], "pair": fields[1], "label": label});
                bytes.extend(format!("{v}\n").into_bytes());
            }
            FileFormat::Csv | FileFormat::Tsv => {
                let delimiter = if format == FileFormat::Csv {
                    b','
                } else {
                    b'\t'
                };
                let mut w = csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .from_writer(Vec::new());
                w.write_record(fields).unwrap();
                bytes.extend(w.into_inner().unwrap());
            }
        };
        if format != FileFormat::Jsonl {
            record(["text", "pair", "label"], &mut bytes);
        }
        for (text, pair, label) in rows {
            lines.push(1 + bytes.iter().filter(|&&b| b == b'\n').count());
            record([text, pair, label], &mut bytes);
        }
        (bytes, lines)
    }

    /// What loading `rows` must give: the examples, or the line of the first bad row (0 when
    /// every row is good but a class has no example).
    fn expected(rows: &[Row], pair: bool) -> std::result::Result<Vec<Example>, usize> {
        let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut examples = Vec::new();
        for (i, (text, p, label)) in rows.iter().enumerate() {
            let label = label.trim();
            let class = ["negative", "positive"]
                .iter()
                .position(|c| *c == label)
                .or_else(|| {
                    (!label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| label.parse::<usize>().ok())
                        .flatten()
                        .filter(|&i| i < 2)
                });
            let p = pair.then(|| norm(p));
            match class {
                Some(c) if !norm(text).is_empty() && p.as_deref() != Some("") => {
                    examples.push(Example {
                        text: norm(text),
                        pair: p,
                        label: c,
                    })
                }
                _ => return Err(i),
            }
        }
        match (0..2).all(|c| examples.iter().any(|e| e.label == c)) {
            true => Ok(examples),
            false => Err(usize::MAX),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 300,
            rng_seed: proptest::test_runner::RngSeed::Fixed(300),
            ..Default::default()
        })]

        /// Well-formed files of hostile cells, written by a conforming CSV/TSV writer or
        /// `serde_json`: every file loads to exactly its rows' normalised texts and classes, or
        /// fails naming the file and the line of its first bad row (a class with no example: the
        /// class).
        #[test]
        fn hostile_cells_load_exactly_or_fail_at_their_line(
            rows in proptest::collection::vec(
                (hostile_cell(), hostile_cell(), proptest::sample::select(&LABELS[..])), 1..6),
            pair in proptest::bool::ANY,
        ) {
            let dir = tempfile::tempdir().unwrap();
            for format in [FileFormat::Csv, FileFormat::Tsv, FileFormat::Jsonl] {
                let (bytes, lines) = written(format, &rows);
                let path = write(dir.path(), &format!("f.{}", format.extension()), &bytes);
                let got = load_files(format, &source(&path, pair, None), &classes(&["negative", "positive"]));
                match (expected(&rows, pair), got) {
                    (Ok(want), Ok(ds)) => proptest::prop_assert_eq!(ds.examples, want),
                    (Err(usize::MAX), Err(e)) => {
                        proptest::prop_assert!(e.to_string().contains("has no examples"), "{}", e)
                    }
                    (Err(row), Err(e)) => {
                        let e = e.to_string();
                        let at = format!("line {}:", lines[row]);
                        proptest::prop_assert!(e.contains(&at) && e.contains("f."), "{:?}: want {}, got {}", format, at, e);
                    }
                    (want, got) => proptest::prop_assert!(false, "{:?}: want {:?}, got {:?}", format, want, got.map(|d| d.examples)),
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 200,
            rng_seed: proptest::test_runner::RngSeed::Fixed(200),
            ..Default::default()
        })]

        /// Any bytes, and any mix of the characters that matter to the parsers, load or fail
        /// with an error; nothing panics.
        #[test]
        fn no_input_panics(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            picks in proptest::collection::vec(0usize..16, 0..120),
        ) {
            const PIECES: [&str; 16] = [
                "text", "label", "pair", ",", "\t", "\n", "\"", "{", "}", ":", "0", "1", "a",
                " ", "positive", "\r\n",
            ];
            let shaped: String = picks.iter().map(|&i| PIECES[i]).collect();
            let dir = tempfile::tempdir().unwrap();
            for format in [FileFormat::Csv, FileFormat::Tsv, FileFormat::Jsonl] {
                for (n, contents) in [noise.as_slice(), shaped.as_bytes()].into_iter().enumerate() {
                    let path = write(dir.path(), &format!("f{n}.{}", format.extension()), contents);
                    for pair in [false, true] {
                        let src = source(&path, pair, None);
                        let _ = load_files(format, &src, &classes(&["negative", "positive"]));
                    }
                }
            }
        }
    }
}
