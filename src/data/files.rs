//! Users' own data files: CSV, TSV and JSONL, or a folder of `train` / `validation` / `test`
//! files, with labels mapped onto the declared class names.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::task::{FileFormat, FileSource};

/// Loads a data file (or a folder of split files) declared by a task.
pub fn load_files(format: FileFormat, source: &FileSource, classes: &[String]) -> Result<Dataset> {
    let _ = (format, classes);
    Err(Error::config(
        format!("data {}", source.path),
        "file data sources are not loaded yet",
    ))
}
