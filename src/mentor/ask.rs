//! One question to the mentor, asked the same way by the engine's mentor stage and by
//! `tandem mentor`: the scored prompts rendered into the meta-prompt, the request sent (through
//! the cassette when there is one), the reply parsed into candidates, and counts of what the
//! parser kept and why it dropped the rest.

use serde::{Deserialize, Serialize};

use super::{
    parse_reply, Cassette, ChatRequest, ChatResponse, Mentor, Message, MetaPromptContext,
    MetaPromptTemplate, ParsedReply, ParserConfig, Protocol, Sampling, Source,
};
use crate::decoder::LineMask;
use crate::error::Result;

/// What to ask: the protocol and template, what it shows, how to sample and how to parse the
/// reply.
#[derive(Debug)]
pub struct Question<'a> {
    /// Chat instruction or list continuation.
    pub protocol: Protocol,
    /// The meta-prompt template.
    pub template: &'a MetaPromptTemplate,
    /// The scored prompts (worst → best), the task and the number of candidates wanted.
    pub context: MetaPromptContext,
    /// Sampling settings, seed included.
    pub sampling: Sampling,
    /// Parser limits and the prompts a copy of which is dropped; the prompts the meta-prompt
    /// shows are added.
    pub parser: ParserConfig,
    /// The logit mask to decode under (the embedded mentor applies it; a server refuses it).
    pub mask: Option<LineMask>,
}

/// One exchange with the mentor, everything needed to record or print it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The rendered meta-prompt.
    pub meta_prompt: String,
    /// The request as sent (and as keyed in a cassette).
    pub request: ChatRequest,
    /// The mentor's response.
    pub response: ChatResponse,
    /// Live or replayed.
    pub source: Source,
    /// Candidates and the dropped lines with their reasons.
    pub parsed: ParsedReply,
}

/// How many of a reply's lines the parser kept, and how many of the rest were on the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyCounts {
    /// Candidates kept.
    pub candidates: usize,
    /// Dropped lines that were prompts but unusable (too long, a copy, a duplicate, over K).
    pub on_task_dropped: usize,
    /// Dropped lines that were not prompts (chatter, code, echoes, headings, empty stubs).
    pub off_task: usize,
}

impl ReplyCounts {
    /// The counts of a parsed reply.
    pub fn of(parsed: &ParsedReply) -> Self {
        let on_task_dropped = parsed
            .dropped
            .iter()
            .filter(|d| d.reason.is_on_task())
            .count();
        Self {
            candidates: parsed.candidates.len(),
            on_task_dropped,
            off_task: parsed.dropped.len() - on_task_dropped,
        }
    }
}

/// Asks `mentor` the question: renders it, sends it (replayed from or recorded into `cassette`
/// when given) and parses the reply.
pub fn ask(
    mentor: &mut dyn Mentor,
    cassette: Option<&mut Cassette>,
    question: Question<'_>,
) -> Result<Answer> {
    let mut meta_prompt = question.template.render(&question.context)?;
    if question.protocol == Protocol::List {
        // The document ends on the open item, so that the model writes the next prompt.
        meta_prompt.truncate(meta_prompt.trim_end().len());
    }
    let mut request = mentor.request(vec![Message::user(meta_prompt.clone())], question.sampling);
    request.mode = question.protocol.mode();
    request.mask = question.mask;
    let (response, source) = match cassette {
        Some(cassette) => cassette.call(&request, |r| mentor.send(r))?,
        None => (mentor.send(&request)?, Source::Live),
    };
    let mut parser = ParserConfig {
        cut: response.finish_reason == "length",
        ..question.parser
    };
    let history = question.context.history.iter().map(|p| p.text.clone());
    parser.shown.extend(history);
    let parsed = parse_reply(&response.text, &parser);
    Ok(Answer {
        meta_prompt,
        request,
        response,
        source,
        parsed,
    })
}
