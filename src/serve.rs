//! `tandem serve`: the embedded chat model behind an OpenAI-compatible HTTP endpoint
//! (`POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`), so any OpenAI
//! client — and tandem's own HTTP mentor — can use it. One request is answered at a time.

use std::io::Read;
use std::net::SocketAddr;

use burn::tensor::backend::Backend;
use serde::Deserialize;
use serde_json::json;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::decoder::ChatLlm;
use crate::error::{Error, Result};
use crate::mentor::{Message, Sampling};

/// Largest request body accepted, bytes.
const MAX_BODY: usize = 1 << 20;

/// A bound, not yet serving, endpoint.
pub struct ChatServer {
    server: Server,
}

impl std::fmt::Debug for ChatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatServer")
            .field("addr", &self.addr())
            .finish()
    }
}

/// `stop` is a string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// The request fields tandem honours, of chat completions (`messages`) and text completions
/// (`prompt`); unknown fields are ignored, as OpenAI servers do.
#[derive(Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default, alias = "max_completion_tokens")]
    max_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
}

impl ChatServer {
    /// Binds `addr` (`host:port`; port 0 picks a free one).
    pub fn bind(addr: &str) -> Result<Self> {
        let server = Server::http(addr)
            .map_err(|e| Error::config(format!("listen address `{addr}`"), e.to_string()))?;
        Ok(Self { server })
    }

    /// The bound address.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Makes a running [`ChatServer::serve`] return after its current request.
    pub fn stop(&self) {
        self.server.unblock();
    }

    /// Answers requests with `llm` until the process ends, or for `limit` requests.
    pub fn serve<B: Backend>(&self, llm: &ChatLlm<B>, limit: Option<usize>) -> Result<()> {
        for (served, mut request) in self.server.incoming_requests().enumerate() {
            let body = read_body(&mut request);
            let (status, body) = handle(llm, &request, body, served);
            let response = Response::from_string(body.to_string())
                .with_status_code(status)
                .with_header(
                    Header::from_bytes("Content-Type", "application/json")
                        .expect("a valid static header"),
                );
            if let Err(e) = request.respond(response) {
                eprintln!("serve: could not answer a client: {e}");
            }
            if limit.is_some_and(|l| served + 1 >= l) {
                break;
            }
        }
        Ok(())
    }
}

fn error_body(status: u16, message: impl Into<String>) -> Reply {
    let kind = if status >= 500 {
        "server_error"
    } else {
        "invalid_request_error"
    };
    (
        status,
        json!({"error": {"message": message.into(), "type": kind}}),
    )
}

type Reply = (u16, serde_json::Value);

fn handle<B: Backend>(
    llm: &ChatLlm<B>,
    request: &Request,
    body: std::result::Result<Vec<u8>, Reply>,
    n: usize,
) -> Reply {
    let path = request.url().split('?').next().unwrap_or("");
    match (request.method(), path) {
        (Method::Get, "/v1/models") => (
            200,
            json!({"object": "list", "data": [{"id": llm.name(), "object": "model", "owned_by": "tandem"}]}),
        ),
        (Method::Post, "/v1/chat/completions") => match body {
            Ok(body) => completion(llm, &body, n, Endpoint::Chat),
            Err(reply) => reply,
        },
        (Method::Post, "/v1/completions") => match body {
            Ok(body) => completion(llm, &body, n, Endpoint::Text),
            Err(reply) => reply,
        },
        (Method::Post, _) | (Method::Get, _) => error_body(404, format!("no route for {path}")),
        (m, _) => error_body(405, format!("method {m} is not allowed")),
    }
}

/// Which completions route a request came to.
#[derive(Clone, Copy, PartialEq)]
enum Endpoint {
    /// `/v1/chat/completions`: messages through the chat template.
    Chat,
    /// `/v1/completions`: a raw prompt continued.
    Text,
}

fn completion<B: Backend>(llm: &ChatLlm<B>, body: &[u8], n: usize, endpoint: Endpoint) -> Reply {
    let req: CompletionRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return error_body(400, format!("request body: {e}")),
    };
    let sampling = match checked(llm, &req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let generated = match (endpoint, &req.messages, &req.prompt) {
        (Endpoint::Chat, Some(messages), _) if !messages.is_empty() => {
            llm.generate(messages, &sampling)
        }
        (Endpoint::Chat, _, _) => return error_body(400, "`messages` is missing or empty"),
        (Endpoint::Text, _, Some(prompt)) if !prompt.is_empty() => llm
            .tokenizer()
            .encode(prompt)
            .and_then(|ids| llm.generate_from_ids(&ids, &sampling)),
        (Endpoint::Text, _, _) => return error_body(400, "`prompt` is missing or empty"),
    };
    let g = match generated {
        Ok(g) => g,
        Err(e @ Error::Config { .. }) => return error_body(400, e.to_string()),
        Err(e) => return error_body(500, e.to_string()),
    };
    let (id, object, choice) = match endpoint {
        Endpoint::Chat => (
            "chatcmpl",
            "chat.completion",
            json!({"index": 0, "message": {"role": "assistant", "content": g.text}, "finish_reason": g.finish_reason}),
        ),
        Endpoint::Text => (
            "cmpl",
            "text_completion",
            json!({"index": 0, "text": g.text, "finish_reason": g.finish_reason}),
        ),
    };
    (
        200,
        json!({
            "id": format!("{id}-tandem-{n}"),
            "object": object,
            "created": chrono::Utc::now().timestamp(),
            "model": llm.name(),
            "system_fingerprint": format!("tandem-{}", &llm.sha256()[..12]),
            "choices": [choice],
            "usage": {
                "prompt_tokens": g.prompt_tokens,
                "completion_tokens": g.tokens.len(),
                "total_tokens": g.prompt_tokens + g.tokens.len(),
            },
        }),
    )
}

/// The request's sampling settings, or the error reply for a streamed request, another
/// model's name or an out-of-range setting.
fn checked<B: Backend>(
    llm: &ChatLlm<B>,
    req: &CompletionRequest,
) -> std::result::Result<Sampling, Reply> {
    if req.stream == Some(true) {
        return Err(error_body(
            400,
            "`stream: true` is not supported; send `stream: false`",
        ));
    }
    if let Some(m) = req.model.as_deref().filter(|m| *m != llm.name()) {
        return Err(error_body(
            404,
            format!(
                "model `{m}` is not served here; this server has `{}`",
                llm.name()
            ),
        ));
    }
    let sampling = Sampling {
        temperature: req.temperature.unwrap_or(1.0),
        top_p: req.top_p.unwrap_or(1.0),
        max_tokens: req.max_tokens.unwrap_or(256),
        stop: match &req.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        },
        seed: req.seed.unwrap_or(0),
    };
    if !(sampling.temperature.is_finite() && sampling.temperature >= 0.0) {
        return Err(error_body(
            400,
            "`temperature` must be a non-negative number",
        ));
    }
    if !(sampling.top_p > 0.0 && sampling.top_p <= 1.0) {
        return Err(error_body(400, "`top_p` must be in (0, 1]"));
    }
    Ok(sampling)
}

/// Reads at most [`MAX_BODY`] bytes of the request body.
fn read_body(request: &mut Request) -> std::result::Result<Vec<u8>, Reply> {
    if request.body_length().is_some_and(|l| l > MAX_BODY) {
        return Err(error_body(
            413,
            format!("request body over {MAX_BODY} bytes"),
        ));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| error_body(400, format!("reading the request body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(error_body(
            413,
            format!("request body over {MAX_BODY} bytes"),
        ));
    }
    Ok(body)
}
