//! A chat request and its response, in the OpenAI chat-completions shape, with every sampling
//! setting explicit so that it is sent, recorded and part of the replay key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decoder::LineMask;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The user's turn (the rendered meta-prompt).
    User,
    /// The model's turn.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
}

/// Sampling settings; all of them are sent with every request (none left to server defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    /// Temperature; 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// Maximum new tokens.
    pub max_tokens: u32,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 0.95,
            max_tokens: 256,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestMode {
    /// A chat turn: the messages rendered with the model's chat template.
    #[default]
    Chat,
    /// A raw document (the one message's text) that the model continues, with no chat
    /// template: `/v1/completions` over HTTP, the document's tokens in process.
    Completion,
}

impl RequestMode {
    /// Whether this is a chat request (left out of the recorded request, so that chat requests
    /// keep the keys they were recorded under).
    pub fn is_chat(&self) -> bool {
        *self == RequestMode::Chat
    }
}

/// A complete request: where it goes, which model, what it says, how to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Endpoint identity: a base URL for HTTP, `embedded:<model file sha256>` for the local model.
    pub endpoint: String,
    /// Model name as requested.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Sampling settings.
    pub sampling: Sampling,
    /// Chat, or a document to continue.
    #[serde(default, skip_serializing_if = "RequestMode::is_chat")]
    pub mode: RequestMode,
    /// The logit mask the embedded mentor decodes under (none: unconstrained; left out of the
    /// recorded request then, so that earlier recordings keep their keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<LineMask>,
}

impl ChatRequest {
    /// The document a completion request continues: its messages' texts, in order.
    pub fn document(&self) -> String {
        self.messages.iter().map(|m| m.content.as_str()).collect()
    }

    /// A stable key over the whole request (endpoint, model, messages, every sampling setting,
    /// seed): lowercase hex sha256 of its canonical JSON.
    pub fn key(&self) -> String {
        // Struct fields serialize in declaration order, so the JSON is canonical.
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The exact model id the server reported.
    pub model_id: String,
    /// The assistant's text.
    pub text: String,
    /// Prompt tokens counted by the server.
    pub prompt_tokens: u32,
    /// Completion tokens counted by the server.
    pub completion_tokens: u32,
    /// Why generation stopped (`stop`, `length`, …).
    pub finish_reason: String,
}
