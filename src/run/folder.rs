//! A run folder: every file is written atomically (temporary file, fsync, rename), so a crash
//! never leaves a half-written record that could be read as valid.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A folder holding one run's records.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates (or reuses) the folder.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).map_err(|e| Error::io("creating", &path, e))?;
        Ok(Self { path })
    }

    /// An existing folder, to read its records; nothing is created or checked.
    pub fn open(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// A fresh folder `root/<name>-<UTC timestamp>`.
    pub fn fresh(root: &Path, name: &str) -> Result<Self> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        Self::create(root.join(format!("{name}-{stamp}")))
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes bytes to `name` atomically.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let dest = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::io("renaming", &tmp, e))?;
        Ok(dest)
    }

    /// Writes a value as pretty JSON.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<PathBuf> {
        let text = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::config(name.to_string(), format!("cannot serialize: {e}")))?;
        self.write_bytes(name, &text)
    }

    /// Writes a value as YAML.
    pub fn write_yaml<T: Serialize>(&self, name: &str, value: &T) -> Result<PathBuf> {
        let text = serde_yaml::to_string(value)
            .map_err(|e| Error::config(name.to_string(), format!("cannot serialize: {e}")))?;
        self.write_bytes(name, text.as_bytes())
    }

    /// Writes values as JSON lines.
    pub fn write_jsonl<T: Serialize>(&self, name: &str, values: &[T]) -> Result<PathBuf> {
        let mut out = Vec::new();
        for v in values {
            serde_json::to_writer(&mut out, v)
                .map_err(|e| Error::config(name.to_string(), format!("cannot serialize: {e}")))?;
            out.push(b'\n');
        }
        self.write_bytes(name, &out)
    }

    /// Reads a JSON lines record file (blank lines skipped); errors name the file and the line.
    pub fn read_jsonl<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>> {
        let path = self.path.join(name);
        let text = fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    Error::data(&path, format!("line {}: not a valid record: {e}", i + 1))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_complete_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("r")).unwrap();
        run.write_json("a.json", &vec![1, 2, 3]).unwrap();
        run.write_jsonl("t.jsonl", &[1, 2]).unwrap();
        run.write_yaml("c.yaml", &std::collections::BTreeMap::from([("k", 1)]))
            .unwrap();
        let names: Vec<_> = fs::read_dir(run.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        assert_eq!(
            fs::read_to_string(run.path().join("t.jsonl")).unwrap(),
            "1\n2\n"
        );
        let v: Vec<i32> =
            serde_json::from_slice(&fs::read(run.path().join("a.json")).unwrap()).unwrap();
        assert_eq!(v, [1, 2, 3]);
    }

    #[test]
    fn jsonl_reads_back_what_was_written_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path()).unwrap();
        run.write_jsonl("t.jsonl", &[[1, 2], [3, 4]]).unwrap();
        let back: Vec<[i32; 2]> = RunDir::open(dir.path()).read_jsonl("t.jsonl").unwrap();
        assert_eq!(back, [[1, 2], [3, 4]]);
        run.write_bytes("bad.jsonl", b"1\n\n[\n").unwrap();
        let err = run.read_jsonl::<i32>("bad.jsonl").unwrap_err().to_string();
        assert!(err.contains("bad.jsonl") && err.contains("line 3"), "{err}");
        let err = run.read_jsonl::<i32>("none.jsonl").unwrap_err().to_string();
        assert!(err.contains("none.jsonl"), "{err}");
    }
}
