//! The mentor: the LLM half of the method. For now, the total parser of its replies.

mod parser;

pub use parser::{parse_reply, DropReason, Dropped, ParsedReply, ParserConfig};
