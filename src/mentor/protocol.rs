//! How the mentor is asked: an instruction in a chat turn, or a list of scored prompts that the
//! model continues as a document. The protocol decides the request's mode; the template
//! decides its text.

use serde::{Deserialize, Serialize};

use super::RequestMode;

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
}

impl Protocol {
    /// Every protocol, by its name in schedules and on the command line.
    pub const ALL: &'static [(&'static str, Protocol)] = &[
        ("instruction", Protocol::Instruction),
        ("list", Protocol::List),
    ];

    /// The request mode it asks in.
    pub fn mode(self) -> RequestMode {
        match self {
            Protocol::Instruction => RequestMode::Chat,
            Protocol::List => RequestMode::Completion,
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
        let err = "lists".parse::<Protocol>().unwrap_err().to_string();
        assert!(
            err.contains("lists") && err.contains("instruction, list"),
            "{err}"
        );
    }
}
