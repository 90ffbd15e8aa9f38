//! The mentor: the LLM half of the method. So far: meta-prompt templates and the total parser
//! of its replies.

mod parser;
mod template;

pub use parser::{parse_reply, DropReason, Dropped, ParsedReply, ParserConfig};
pub use template::{MetaPromptContext, MetaPromptTemplate, ScoredPrompt, BUILTIN_TEMPLATES};
