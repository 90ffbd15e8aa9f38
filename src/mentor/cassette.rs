//! Record / replay of mentor calls. A cassette is a human-readable YAML file of (request,
//! response) pairs keyed by the whole request, so replays make runs and tests reproducible
//! without the LLM. A miss in read mode is an error, never a made-up answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::request::{ChatRequest, ChatResponse};
use crate::error::{Error, Result};

/// How a cassette is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayMode {
    /// Always call the LLM; record nothing.
    #[default]
    Off,
    /// Only replay; a request not on the cassette is an error.
    Read,
    /// Always call the LLM and record (overwriting earlier recordings of the same request).
    Write,
    /// Replay what is recorded; call and record the rest.
    ReadWrite,
}

impl std::str::FromStr for ReplayMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(Self::Off),
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "read-write" => Ok(Self::ReadWrite),
            _ => Err(Error::config(
                format!("replay mode `{s}`"),
                "expected `off`, `read`, `write` or `read-write`",
            )),
        }
    }
}

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// The request's key ([`ChatRequest::key`]).
    pub key: String,
    /// The request as sent.
    pub request: ChatRequest,
    /// The response as received.
    pub response: ChatResponse,
}

/// A cassette file and its mode.
#[derive(Debug)]
pub struct Cassette {
    path: PathBuf,
    mode: ReplayMode,
    recordings: BTreeMap<String, Recording>,
}

/// Whether a response came from the cassette or from the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Replayed from the cassette.
    Replayed,
    /// Produced by the LLM now.
    Live,
}

impl Cassette {
    /// Opens a cassette; its recordings are read when the mode replays and the file exists. A
    /// file that does not parse is an error naming it (never silently ignored).
    pub fn open(path: impl Into<PathBuf>, mode: ReplayMode) -> Result<Self> {
        let path = path.into();
        let mut recordings = BTreeMap::new();
        // Write mode loads too, so that recording one request keeps the others.
        if mode != ReplayMode::Off && path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
            let list: Vec<Recording> = serde_yaml::from_str(&text).map_err(|e| Error::Replay {
                path: path.clone(),
                reason: format!("not a valid cassette: {e}"),
            })?;
            for r in list {
                if r.key != r.request.key() {
                    return Err(Error::Replay {
                        path: path.clone(),
                        reason: format!(
                            "recording {} does not match its request (edited by hand?)",
                            r.key
                        ),
                    });
                }
                recordings.insert(r.key.clone(), r);
            }
        } else if mode == ReplayMode::Read {
            return Err(Error::Replay {
                path,
                reason: "does not exist (read mode replays only)".into(),
            });
        }
        Ok(Self {
            path,
            mode,
            recordings,
        })
    }

    /// The cassette file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of recordings.
    pub fn len(&self) -> usize {
        self.recordings.len()
    }

    /// Whether there are no recordings.
    pub fn is_empty(&self) -> bool {
        self.recordings.is_empty()
    }

    /// Serves `request` per the mode: replays a recording, or calls `live` (and records its
    /// answer when the mode writes).
    pub fn call(
        &mut self,
        request: &ChatRequest,
        live: impl FnOnce(&ChatRequest) -> Result<ChatResponse>,
    ) -> Result<(ChatResponse, Source)> {
        let key = request.key();
        if matches!(self.mode, ReplayMode::Read | ReplayMode::ReadWrite) {
            if let Some(r) = self.recordings.get(&key) {
                return Ok((r.response.clone(), Source::Replayed));
            }
            if self.mode == ReplayMode::Read {
                return Err(Error::Replay {
                    path: self.path.clone(),
                    reason: format!(
                        "no recording of request {key} (model `{}`, endpoint `{}`); record it \
                         with replay mode `write` or `read-write`",
                        request.model, request.endpoint
                    ),
                });
            }
        }
        let response = live(request)?;
        if matches!(self.mode, ReplayMode::Write | ReplayMode::ReadWrite) {
            self.recordings.insert(
                key.clone(),
                Recording {
                    key,
                    request: request.clone(),
                    response: response.clone(),
                },
            );
            self.save()?;
        }
        Ok((response, Source::Live))
    }

    /// Writes the cassette atomically.
    fn save(&self) -> Result<()> {
        let list: Vec<&Recording> = self.recordings.values().collect();
        let text = serde_yaml::to_string(&list).map_err(|e| Error::Replay {
            path: self.path.clone(),
            reason: format!("cannot serialize: {e}"),
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let tmp = self.path.with_extension("yaml.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io("renaming", &tmp, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mentor::request::{Message, RequestMode, Role, Sampling};

    fn request(seed: u64) -> ChatRequest {
        ChatRequest {
            endpoint: "http://127.0.0.1:8080/v1".into(),
            model: "smollm2".into(),
            messages: vec![Message::user("Write 3 prompts.\nOne per line.")],
            sampling: Sampling {
                seed,
                ..Default::default()
            },
            mode: RequestMode::Chat,
            mask: None,
        }
    }

    fn response(text: &str) -> ChatResponse {
        ChatResponse {
            model_id: "SmolLM2-135M-Instruct".into(),
            text: text.into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            finish_reason: "stop".into(),
        }
    }

    /// Changing any one field of a request — endpoint, model, a message's role or text, a
    /// message added, each sampling setting, the mode — changes its key; the same request
    /// keeps it.
    #[test]
    fn key_covers_every_setting() {
        let a = request(1);
        assert_eq!(a.key(), a.clone().key());
        type Change = fn(&mut ChatRequest);
        let changes: [(&str, Change); 11] = [
            ("endpoint", |r| r.endpoint = "embedded:abc".into()),
            ("model", |r| r.model = "other".into()),
            ("role", |r| r.messages[0].role = Role::System),
            ("content", |r| r.messages[0].content.push(' ')),
            ("messages", |r| r.messages.push(Message::user("again"))),
            ("temperature", |r| r.sampling.temperature = 0.0),
            ("top_p", |r| r.sampling.top_p = 0.5),
            ("max_tokens", |r| r.sampling.max_tokens += 1),
            ("stop", |r| r.sampling.stop.push("\n\n".into())),
            ("seed", |r| r.sampling.seed = 2),
            ("mode", |r| r.mode = RequestMode::Completion),
        ];
        let mut keys = vec![a.key()];
        for (field, change) in changes {
            let mut b = a.clone();
            change(&mut b);
            let key = b.key();
            assert!(
                !keys.contains(&key),
                "changing {field} keeps a key already seen"
            );
            keys.push(key);
        }
    }

    #[test]
    fn write_then_read_replays_and_a_miss_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let mut w = Cassette::open(&path, ReplayMode::Write).unwrap();
        let (r, src) = w.call(&request(1), |_| Ok(response("a\nb"))).unwrap();
        assert_eq!((r.text.as_str(), src), ("a\nb", Source::Live));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("SmolLM2-135M-Instruct") && text.contains("One per line."));

        let mut rd = Cassette::open(&path, ReplayMode::Read).unwrap();
        let (r, src) = rd
            .call(&request(1), |_| panic!("read mode must not call the LLM"))
            .unwrap();
        assert_eq!((r, src), (response("a\nb"), Source::Replayed));
        let err = rd
            .call(&request(2), |_| Ok(response("x")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no recording") && err.contains("c.yaml"),
            "{err}"
        );

        let mut rw = Cassette::open(&path, ReplayMode::ReadWrite).unwrap();
        let (_, src) = rw.call(&request(2), |_| Ok(response("new"))).unwrap();
        assert_eq!(src, Source::Live);
        assert_eq!(Cassette::open(&path, ReplayMode::Read).unwrap().len(), 2);
    }

    #[test]
    fn corrupt_or_tampered_cassettes_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "- key: [unclosed").unwrap();
        let err = Cassette::open(&path, ReplayMode::Read)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        let err = Cassette::open(&path, ReplayMode::Write)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.yaml"),
            "writing must not clobber a corrupt cassette: {err}"
        );
        let good = dir.path().join("good.yaml");
        let mut c = Cassette::open(&good, ReplayMode::Write).unwrap();
        c.call(&request(1), |_| Ok(response("a"))).unwrap();
        let edited = std::fs::read_to_string(&good)
            .unwrap()
            .replace("seed: 1", "seed: 7");
        std::fs::write(&good, edited).unwrap();
        let err = Cassette::open(&good, ReplayMode::Read)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
        assert!(Cassette::open(dir.path().join("missing.yaml"), ReplayMode::Read).is_err());
    }
}
