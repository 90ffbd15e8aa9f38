//! The mentor: the LLM half of the method. So far: chat requests, the OpenAI-compatible HTTP
//! client, record/replay cassettes, meta-prompt templates and the total parser of replies.

mod cassette;
mod http;
mod parser;
mod request;
mod template;

pub use cassette::{Cassette, Recording, ReplayMode, Source};
pub use http::{HttpMentor, HttpMentorConfig, Usage};
pub use parser::{parse_reply, DropReason, Dropped, ParsedReply, ParserConfig};
pub use request::{ChatRequest, ChatResponse, Message, Role, Sampling};
pub use template::{MetaPromptContext, MetaPromptTemplate, ScoredPrompt, BUILTIN_TEMPLATES};
