//! The OpenAI-compatible HTTP mentor (`POST {base_url}/chat/completions`), for vLLM, llama.cpp's
//! server, Ollama and OpenAI. Timeouts; retries with exponential backoff on 429, 5xx and
//! connection errors, honouring `Retry-After`; call and token budgets. The API key comes from an
//! environment variable and is never printed, logged or written anywhere.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::{ChatRequest, ChatResponse, Message, RequestMode, Sampling};
use crate::error::{Error, Result};

/// Settings of an HTTP mentor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpMentorConfig {
    /// Base URL, e.g. `http://127.0.0.1:8080/v1` or `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Environment variable holding the API key (none needed for local servers).
    pub api_key_env: String,
    /// Timeout of one request, seconds.
    pub timeout_s: f64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay, seconds (doubles each retry).
    pub backoff_s: f64,
    /// Longest backoff or `Retry-After` wait honoured, seconds.
    pub max_backoff_s: f64,
    /// At most this many calls per run.
    pub max_calls: Option<u64>,
    /// At most this many tokens (prompt + completion) per run.
    pub max_tokens: Option<u64>,
}

impl Default for HttpMentorConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080/v1".into(),
            model: "default".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            timeout_s: 120.0,
            max_retries: 4,
            backoff_s: 1.0,
            max_backoff_s: 60.0,
            max_calls: None,
            max_tokens: None,
        }
    }
}

/// An API key that never shows itself in `Debug` or `Display` output.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Calls and tokens spent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Successful calls.
    pub calls: u64,
    /// Prompt plus completion tokens, as the server counted them.
    pub tokens: u64,
}

/// The HTTP mentor client.
#[derive(Debug)]
pub struct HttpMentor {
    config: HttpMentorConfig,
    agent: ureq::Agent,
    key: Option<Secret>,
    usage: Usage,
}

impl HttpMentor {
    /// A client; reads the key from the environment variable `config.api_key_env` if it is set.
    pub fn new(config: HttpMentorConfig) -> Result<Self> {
        Self::with_env(config, |var| std::env::var(var).ok())
    }

    /// A client that looks the variable `config.api_key_env` up in `env` (a name → value
    /// lookup) instead of the process environment: for programs and tests that hold the key
    /// themselves, without `std::env::set_var`, which races with every other thread that reads
    /// the environment. The key is kept as in [`HttpMentor::new`]: errors name the variable,
    /// never the key, and it is neither printed nor written.
    pub fn with_env(
        config: HttpMentorConfig,
        env: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Self> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(Error::config(
                format!("mentor base_url `{}`", config.base_url),
                "must start with http:// or https://",
            ));
        }
        if config.base_url.starts_with("https://") && !cfg!(feature = "https") {
            return Err(Error::config(
                format!("mentor base_url `{}`", config.base_url),
                "https needs a build with `--features https`",
            ));
        }
        if !(config.timeout_s.is_finite() && config.timeout_s > 0.0) {
            return Err(Error::config("mentor timeout_s", "must be positive"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(config.timeout_s)))
            .http_status_as_error(false)
            .build()
            .into();
        let key = env(&config.api_key_env)
            .filter(|k| !k.is_empty())
            .map(Secret);
        Ok(Self {
            config,
            agent,
            key,
            usage: Usage::default(),
        })
    }

    /// What has been spent.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The request that [`HttpMentor::chat`] sends (also the record/replay key).
    pub fn request(&self, messages: Vec<Message>, sampling: Sampling) -> ChatRequest {
        ChatRequest {
            endpoint: self.config.base_url.trim_end_matches('/').to_string(),
            model: self.config.model.clone(),
            messages,
            sampling,
            mode: RequestMode::Chat,
            mask: None,
        }
    }

    /// Sends a request, retrying transient failures; stops with [`Error::Budget`] when a budget
    /// is spent.
    pub fn send(&mut self, request: &ChatRequest) -> Result<ChatResponse> {
        self.check_budgets()?;
        if request.mask.is_some() {
            return Err(Error::config(
                "mentor.mask",
                "the logit mask is applied by the embedded mentor only; a server decodes \
                 unconstrained (drop `mask`, or leave out --base-url)",
            ));
        }
        let path = match request.mode {
            RequestMode::Chat => "chat/completions",
            RequestMode::Completion => "completions",
        };
        let url = format!("{}/{path}", request.endpoint);
        let body = request_body(request);
        let mut failures = Vec::new();
        for attempt in 0..=self.config.max_retries {
            let wait = match self.attempt(&url, &body, request)? {
                Attempt::Replied(r) => {
                    self.usage.calls += 1;
                    self.usage.tokens += (r.prompt_tokens + r.completion_tokens) as u64;
                    return Ok(r);
                }
                Attempt::Failed { reason, wait } => {
                    failures.push(format!("attempt {}: {reason}", attempt + 1));
                    wait
                }
            };
            if attempt < self.config.max_retries {
                let backoff = self.config.backoff_s * 2f64.powi(attempt as i32);
                let secs = wait
                    .unwrap_or(backoff)
                    .clamp(0.0, self.config.max_backoff_s);
                std::thread::sleep(Duration::from_secs_f64(secs));
            }
        }
        Err(Error::Mentor {
            endpoint: request.endpoint.clone(),
            reason: format!(
                "gave up after {} attempts: {}",
                self.config.max_retries + 1,
                failures.join("; ")
            ),
        })
    }

    /// [`Error::Budget`] when the calls or tokens allowed are spent.
    fn check_budgets(&self) -> Result<()> {
        let spent = [
            ("LLM calls", self.config.max_calls, self.usage.calls),
            ("LLM tokens", self.config.max_tokens, self.usage.tokens),
        ];
        for (what, limit, used) in spent {
            if let Some(limit) = limit {
                if used >= limit {
                    return Err(Error::Budget {
                        what: what.into(),
                        limit,
                    });
                }
            }
        }
        Ok(())
    }

    /// One POST of `body` to `url`: the reply, a failure worth retrying (with the server's
    /// `Retry-After`, if any), or an error no retry can fix (a client error such as a bad key).
    fn attempt(
        &self,
        url: &str,
        body: &serde_json::Value,
        request: &ChatRequest,
    ) -> Result<Attempt> {
        let mut req = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.key {
            req = req.header("Authorization", format!("Bearer {}", key.0));
        }
        let mut resp = match req.send_json(body) {
            Ok(resp) => resp,
            Err(e) => return Ok(Attempt::failed(e.to_string(), None)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let text = resp
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| format!("<unreadable body: {e}>"));
        if status == 200 {
            return Ok(match parse_completion(&text) {
                Ok(r) => Attempt::Replied(r),
                Err(reason) => Attempt::failed(reason, None),
            });
        }
        if status == 429 || status >= 500 {
            return Ok(Attempt::failed(format!("HTTP {status}"), retry_after));
        }
        let hint = if status == 401 || status == 403 {
            format!(" (check the API key in ${})", self.config.api_key_env)
        } else {
            String::new()
        };
        Err(Error::Mentor {
            endpoint: request.endpoint.clone(),
            reason: format!("HTTP {status}{hint}: {}", snippet(&text)),
        })
    }
}

/// How one attempt at a request ended.
enum Attempt {
    Replied(ChatResponse),
    /// Worth another try; `wait` is the server's `Retry-After` in seconds.
    Failed {
        reason: String,
        wait: Option<f64>,
    },
}

impl Attempt {
    fn failed(reason: impl Into<String>, wait: Option<f64>) -> Self {
        Attempt::Failed {
            reason: reason.into(),
            wait,
        }
    }
}

/// The JSON body: model, messages (or the document as `prompt`) and every sampling setting.
fn request_body(r: &ChatRequest) -> serde_json::Value {
    let mut body = json!({
        "model": r.model,
        "temperature": shortest(r.sampling.temperature),
        "top_p": shortest(r.sampling.top_p),
        "max_tokens": r.sampling.max_tokens,
        "seed": r.sampling.seed,
        "stream": false,
    });
    match r.mode {
        RequestMode::Chat => body["messages"] = json!(r.messages),
        RequestMode::Completion => body["prompt"] = json!(r.document()),
    }
    if !r.sampling.stop.is_empty() {
        body["stop"] = json!(r.sampling.stop);
    }
    body
}

/// An f32 as the f64 with the same shortest decimal form (0.3, not 0.30000001192092896).
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

#[derive(Deserialize)]
struct Completion {
    model: String,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

/// A choice of `/chat/completions` (a message) or of `/completions` (a text).
#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct CompletionUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

/// Parses a chat-completions response body.
fn parse_completion(text: &str) -> std::result::Result<ChatResponse, String> {
    let c: Completion = serde_json::from_str(text)
        .map_err(|e| format!("malformed response ({e}): {}", snippet(text)))?;
    let choice = c
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| "response has no choices".to_string())?;
    let usage = c.usage.unwrap_or(CompletionUsage {
        prompt_tokens: 0,
        completion_tokens: 0,
    });
    Ok(ChatResponse {
        model_id: c.model,
        text: choice
            .message
            .and_then(|m| m.content)
            .or(choice.text)
            .unwrap_or_default(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        finish_reason: choice.finish_reason.unwrap_or_default(),
    })
}

fn snippet(text: &str) -> String {
    let s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        format!("{s}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_response_shape() {
        // The response format documented for the chat-completions API.
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",
            "choices":[{"index":0,"message":{"role":"assistant","content":"1. a\n2. b"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
        let r = parse_completion(body).unwrap();
        assert_eq!(r.model_id, "gpt-4o-2024-08-06");
        assert_eq!(r.text, "1. a\n2. b");
        assert_eq!((r.prompt_tokens, r.completion_tokens), (12, 7));
        assert!(parse_completion(r#"{"model":"m","choices":[]}"#)
            .unwrap_err()
            .contains("no choices"));
        assert!(parse_completion(r#"{"model":"m","choi"#)
            .unwrap_err()
            .contains("malformed"));
        // The text-completions shape: the choice holds `text`, not a message.
        let body = r#"{"id":"cmpl-1","object":"text_completion","model":"smollm2",
            "choices":[{"index":0,"text":" the film is","finish_reason":"length"}],
            "usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}"#;
        let r = parse_completion(body).unwrap();
        assert_eq!(r.text, " the film is");
        assert_eq!(r.finish_reason, "length");
    }

    #[test]
    fn body_carries_every_sampling_setting() {
        let r = ChatRequest {
            endpoint: "http://x/v1".into(),
            model: "m".into(),
            messages: vec![Message::user("hi")],
            sampling: Sampling {
                temperature: 0.0,
                top_p: 0.5,
                max_tokens: 9,
                stop: vec!["\n\n".into()],
                seed: 42,
            },
            mode: RequestMode::Chat,
            mask: None,
        };
        let b = request_body(&r);
        assert_eq!(b["temperature"], 0.0);
        assert_eq!(b["top_p"], 0.5);
        assert_eq!(b["max_tokens"], 9);
        assert_eq!(b["seed"], 42);
        assert_eq!(b["stop"][0], "\n\n");
        assert_eq!(b["messages"][0]["role"], "user");
        assert!(b.get("prompt").is_none());
        // A completion sends the document as `prompt` and no messages.
        let c = request_body(&ChatRequest {
            mode: RequestMode::Completion,
            mask: None,
            messages: vec![Message::user("Prompts:\n"), Message::user("1.")],
            ..r
        });
        assert_eq!(c["prompt"], "Prompts:\n1.");
        assert!(c.get("messages").is_none());
        assert_eq!(c["seed"], 42);
    }

    /// A server decodes unconstrained: a masked request is refused before anything is sent
    /// (nothing listens at the address), and spends no budget.
    #[test]
    fn a_masked_request_is_refused_not_sent_unmasked() {
        let mut m = HttpMentor::new(HttpMentorConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            max_retries: 0,
            ..HttpMentorConfig::default()
        })
        .unwrap();
        let mut r = m.request(vec![Message::user("hi")], Sampling::default());
        r.mask = Some(crate::decoder::LineMask { lines: 2, words: 5 });
        let e = m.send(&r).unwrap_err().to_string();
        assert!(e.contains("mentor.mask") && e.contains("embedded"), "{e}");
        assert_eq!(m.usage().calls, 0);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let m = HttpMentor::with_env(
            HttpMentorConfig {
                api_key_env: "TANDEM_TEST_DEBUG_KEY".into(),
                ..Default::default()
            },
            |var| (var == "TANDEM_TEST_DEBUG_KEY").then(|| "sk-SENTINEL-123".into()),
        )
        .unwrap();
        assert!(m.key.is_some());
        assert!(!format!("{m:?}").contains("SENTINEL"));
    }

    #[test]
    fn the_key_is_the_named_variable_and_an_empty_one_is_none() {
        let config = HttpMentorConfig {
            api_key_env: "TANDEM_TEST_KEY_VAR".into(),
            ..Default::default()
        };
        let mut asked = Vec::new();
        let m = HttpMentor::with_env(config.clone(), |var| {
            asked.push(var.to_string());
            Some(String::new())
        })
        .unwrap();
        assert_eq!(asked, ["TANDEM_TEST_KEY_VAR"]);
        assert!(m.key.is_none(), "an empty variable is no key");
        let m = HttpMentor::with_env(config, |_| None).unwrap();
        assert!(m.key.is_none());
    }
}
