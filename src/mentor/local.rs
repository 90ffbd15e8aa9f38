//! The embedded mentor: the in-process chat model behind the [`Mentor`] interface.

use burn::tensor::backend::Backend;

use super::{ChatRequest, ChatResponse, Mentor, Message, RequestMode, Sampling, Usage};
use crate::decoder::ChatLlm;
use crate::error::{Error, Result};

/// The embedded chat model (SmolLM2-135M-Instruct by default) as a mentor. Its endpoint is
/// `embedded:<sha256 of the GGUF file>`, so recordings name the exact weights.
#[derive(Debug)]
pub struct LocalMentor<B: Backend> {
    llm: ChatLlm<B>,
    usage: Usage,
    max_calls: Option<u64>,
    max_tokens: Option<u64>,
}

impl<B: Backend> LocalMentor<B> {
    /// Wraps a loaded chat model.
    pub fn new(llm: ChatLlm<B>) -> Self {
        Self {
            llm,
            usage: Usage::default(),
            max_calls: None,
            max_tokens: None,
        }
    }

    /// Stops with [`Error::Budget`] after this many calls or tokens.
    pub fn with_budgets(mut self, max_calls: Option<u64>, max_tokens: Option<u64>) -> Self {
        self.max_calls = max_calls;
        self.max_tokens = max_tokens;
        self
    }

    /// The chat model back, e.g. to make a mentor with other budgets.
    pub fn into_llm(self) -> ChatLlm<B> {
        self.llm
    }

    /// The chat model.
    pub fn llm(&self) -> &ChatLlm<B> {
        &self.llm
    }

    /// The tokens the model reads: the chat template's rendering of the messages, or the raw
    /// document of a completion request (no template; a BOS token only where the model asks
    /// for one).
    fn prompt_ids(&self, request: &ChatRequest) -> Result<Vec<u32>> {
        match request.mode {
            RequestMode::Chat => self.llm.prompt_ids(&request.messages),
            RequestMode::Completion => self.llm.tokenizer().encode(&request.document()),
        }
    }
}

impl<B: Backend> Mentor for LocalMentor<B> {
    fn request(&self, messages: Vec<Message>, sampling: Sampling) -> ChatRequest {
        ChatRequest {
            endpoint: format!("embedded:{}", self.llm.sha256()),
            model: self.llm.name().to_string(),
            messages,
            sampling,
            mode: RequestMode::Chat,
            mask: None,
        }
    }

    fn send(&mut self, request: &ChatRequest) -> Result<ChatResponse> {
        if let Some(limit) = self.max_calls.filter(|&l| self.usage.calls >= l) {
            return Err(Error::Budget {
                what: "LLM calls".into(),
                limit,
            });
        }
        // The token budget holds the prompt and the longest reply the call may produce: the
        // reply is capped to what remains, and a call whose prompt alone does not fit is not made.
        let mut sampling = request.sampling.clone();
        if let Some(limit) = self.max_tokens {
            let prompt = self.prompt_ids(request)?.len() as u64;
            let left = limit.saturating_sub(self.usage.tokens);
            if prompt >= left {
                return Err(Error::Budget {
                    what: "LLM tokens".into(),
                    limit,
                });
            }
            sampling.max_tokens = sampling.max_tokens.min((left - prompt) as u32);
        }
        let g = self
            .llm
            .generate_masked(&self.prompt_ids(request)?, &sampling, request.mask)?;
        self.usage.calls += 1;
        self.usage.tokens += (g.prompt_tokens + g.tokens.len()) as u64;
        Ok(ChatResponse {
            model_id: self.llm.name().to_string(),
            text: g.text,
            prompt_tokens: g.prompt_tokens as u32,
            completion_tokens: g.tokens.len() as u32,
            finish_reason: g.finish_reason,
        })
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}
