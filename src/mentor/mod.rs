//! The mentor: the LLM half of the method. Chat requests, the two mentors (the embedded chat
//! model and the OpenAI-compatible HTTP client) behind one [`Mentor`] interface, record/replay
//! cassettes, meta-prompt templates and the total parser of replies.

mod ask;
mod cassette;
mod edit;
mod http;
mod local;
mod parser;
mod protocol;
mod request;
mod template;

pub use ask::{ask, Answer, Question, ReplyCounts};
pub use cassette::{Cassette, Recording, ReplayMode, Source};
pub use edit::EditOp;
pub use http::{HttpMentor, HttpMentorConfig, Usage};
pub use local::LocalMentor;
pub use parser::{parse_reply, DropReason, Dropped, ParsedReply, ParserConfig};
pub use protocol::Protocol;
pub use request::{ChatRequest, ChatResponse, Message, RequestMode, Role, Sampling};
pub use template::{
    MetaPromptContext, MetaPromptTemplate, ScoredPrompt, TypedTemplate, BUILTIN_TEMPLATES,
};

/// An LLM that answers chat requests: the embedded model or an HTTP endpoint.
pub trait Mentor {
    /// The full request for `messages` sampled with `sampling` (also the record/replay key).
    fn request(&self, messages: Vec<Message>, sampling: Sampling) -> ChatRequest;

    /// Answers a request; budgets stop it with [`crate::error::Error::Budget`].
    fn send(&mut self, request: &ChatRequest) -> crate::error::Result<ChatResponse>;

    /// Calls and tokens spent so far.
    fn usage(&self) -> Usage;
}

impl Mentor for HttpMentor {
    fn request(&self, messages: Vec<Message>, sampling: Sampling) -> ChatRequest {
        HttpMentor::request(self, messages, sampling)
    }

    fn send(&mut self, request: &ChatRequest) -> crate::error::Result<ChatResponse> {
        HttpMentor::send(self, request)
    }

    fn usage(&self) -> Usage {
        HttpMentor::usage(self)
    }
}
