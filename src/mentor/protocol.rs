//! How the mentor is asked: an instruction in a chat turn, or a list of scored prompts that the
//! model continues as a document. The protocol decides the request's mode; the template
//! decides its text.

use serde::{Deserialize, Serialize};

use super::{edit, MetaPromptContext, RequestMode, ScoredPrompt};

/// The way a meta-prompt is put to the mentor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The rendered template is the user's turn of a chat; the mentor answers with prompts
    /// (OPRO's instruction format for chat models).
    #[default]
    Instruction,
    /// The rendered template is a list of the scored prompts, worst to best, ending on an open
    /// item; the mentor continues the list as a raw document, with no chat template
    /// (`/v1/completions` over HTTP): OPRO's format for pretrained models, APE's forward
    /// generation.
    List,
    /// Each call asks for one small edit of the best prompts (paraphrase, mutate or cross
    /// over two; EvoPrompt's operators), in a chat turn; a round's calls cycle through the
    /// operators ([`super::edit::plan`]).
    Edit,
}

impl Protocol {
    /// Every protocol, by its name in schedules and on the command line.
    pub const ALL: &'static [(&'static str, Protocol)] = &[
        ("instruction", Protocol::Instruction),
        ("list", Protocol::List),
        ("edit", Protocol::Edit),
    ];

    /// The request mode it asks in.
    pub fn mode(self) -> RequestMode {
        match self {
            Protocol::Instruction | Protocol::Edit => RequestMode::Chat,
            Protocol::List => RequestMode::Completion,
        }
    }

    /// What call `call` of a round shows (`shown` worst → best): every shown prompt, or under
    /// the edit protocol the prompts its operator edits with the operator's instruction
    /// ([`edit::plan`]); `None` when there is nothing to edit.
    pub fn context(
        self,
        description: &str,
        shown: &[ScoredPrompt],
        candidates: usize,
        words: usize,
        call: usize,
    ) -> Option<MetaPromptContext> {
        let context = |history: Vec<ScoredPrompt>| {
            MetaPromptContext::new(description, history, candidates, words)
        };
        if self != Protocol::Edit {
            return Some(context(shown.to_vec()));
        }
        let mut ranked = shown.to_vec();
        ranked.sort_by(|a, b| a.loss.total_cmp(&b.loss));
        let (op, parents) = edit::plan(call, &ranked)?;
        Some(MetaPromptContext {
            instruction: op.instruction().into(),
            ..context(parents)
        })
    }

    /// The built-in template a stage of this protocol uses unless it names another.
    pub fn default_template(self) -> &'static str {
        match self {
            Protocol::Instruction => "catalyst",
            Protocol::List => "list",
            Protocol::Edit => "edit",
        }
    }

    /// Whether this is the default protocol (left out of a saved schedule).
    pub fn is_instruction(&self) -> bool {
        *self == Protocol::Instruction
    }
}

impl std::str::FromStr for Protocol {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, p)| p)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                crate::error::Error::config(
                    format!("protocol `{s}`"),
                    format!("unknown; protocols: {}", names.join(", ")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_modes_and_yaml_agree() {
        for &(name, p) in Protocol::ALL {
            assert_eq!(name.parse::<Protocol>().unwrap(), p);
            assert_eq!(serde_yaml::to_string(&p).unwrap().trim(), name);
        }
        assert_eq!(Protocol::List.mode(), RequestMode::Completion);
        assert_eq!(Protocol::Instruction.mode(), RequestMode::Chat);
        assert_eq!(Protocol::Edit.mode(), RequestMode::Chat);
        for &(_, p) in Protocol::ALL {
            assert!(crate::mentor::MetaPromptTemplate::builtin(p.default_template()).is_ok());
        }
        let err = "lists".parse::<Protocol>().unwrap_err().to_string();
        assert!(
            err.contains("lists") && err.contains("instruction, list, edit"),
            "{err}"
        );
    }

    fn shown() -> Vec<ScoredPrompt> {
        // Worst → best, as the engine shows them.
        ["worst", "middle", "best"]
            .iter()
            .enumerate()
            .map(|(i, t)| ScoredPrompt {
                text: (*t).into(),
                loss: 1.0 - i as f64 / 4.0,
                accuracy: 0.5 + i as f64 / 10.0,
            })
            .collect()
    }

    /// The instruction and list protocols show every prompt in every call; the edit protocol
    /// shows the prompts its call's operator edits, with the operator's instruction.
    #[test]
    fn each_call_shows_what_its_protocol_asks_about() {
        let texts =
            |c: &MetaPromptContext| c.history.iter().map(|p| p.text.clone()).collect::<Vec<_>>();
        for p in [Protocol::Instruction, Protocol::List] {
            for call in 0..4 {
                let c = p.context("task", &shown(), 2, 6, call).unwrap();
                assert_eq!(texts(&c), ["worst", "middle", "best"]);
                assert_eq!((c.num_candidates, c.word_limit), (2, 6));
                assert!(c.instruction.is_empty());
            }
        }
        let edit = |call| {
            Protocol::Edit
                .context("task", &shown(), 1, 5, call)
                .unwrap()
        };
        assert_eq!(texts(&edit(0)), ["best"]);
        assert!(edit(0).instruction.starts_with("Paraphrase"));
        assert!(edit(1).instruction.starts_with("Change"));
        // A crossover shows its two parents worst → best, like any history.
        assert_eq!(texts(&edit(2)), ["middle", "best"]);
        assert!(edit(2).instruction.starts_with("Combine"));
        assert_eq!(texts(&edit(3)), ["middle"]);
        assert_eq!(Protocol::Edit.context("task", &[], 1, 5, 0), None);
        let text = crate::mentor::MetaPromptTemplate::builtin("edit")
            .unwrap()
            .render(&edit(2))
            .unwrap();
        assert!(
            text.contains("Prompt: middle\nPrompt: best")
                && text.contains("Combine the two prompts")
                && text.contains("Write 1 new prompt of at most 5 words"),
            "{text}"
        );
    }
}
