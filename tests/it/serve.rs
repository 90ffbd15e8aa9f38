//! `tandem serve` + the HTTP mentor: the OpenAI-compatible client against a real LLM (the
//! embedded SmolLM2 behind tandem's own endpoint) on loopback. The same request and seed give
//! the same reply, hence the same parsed candidates, as the in-process mentor.

use std::sync::OnceLock;

use tandem::assets::SMOLLM2;
use tandem::decoder::ChatLlm;
use tandem::mentor::{
    parse_reply, HttpMentor, HttpMentorConfig, LocalMentor, Mentor, Message, MetaPromptContext,
    MetaPromptTemplate, ParserConfig, RequestMode, Sampling, ScoredPrompt,
};
use tandem::serve::ChatServer;
use tandem::Error;

use crate::support::{assets, Cpu};

fn llm() -> &'static ChatLlm<Cpu> {
    static LLM: OnceLock<ChatLlm<Cpu>> = OnceLock::new();
    LLM.get_or_init(|| {
        let a = assets(&[SMOLLM2]);
        ChatLlm::load(&a.path(&SMOLLM2.files[0]), &Default::default()).expect("loading SmolLM2")
    })
}

fn meta_prompt() -> String {
    let history = vec![
        ScoredPrompt {
            text: "this movie review is".into(),
            loss: 0.61,
            accuracy: 0.66,
        },
        ScoredPrompt {
            text: "the critic thought the film was".into(),
            loss: 0.55,
            accuracy: 0.70,
        },
    ];
    let ctx = MetaPromptContext::new(
        "sentiment of movie reviews: negative or positive",
        history,
        3,
        12,
    );
    MetaPromptTemplate::builtin("catalyst")
        .unwrap()
        .render(&ctx)
        .unwrap()
}

fn http(url: &str, model: &str) -> HttpMentor {
    HttpMentor::new(HttpMentorConfig {
        base_url: url.into(),
        model: model.into(),
        api_key_env: "TANDEM_TEST_NO_KEY".into(),
        max_retries: 0,
        timeout_s: 120.0,
        ..HttpMentorConfig::default()
    })
    .unwrap()
}

/// Sampling at temperature 0.8, top-p 0.95, no stop sequence.
fn sampling(max_tokens: u32, seed: u64) -> Sampling {
    Sampling {
        temperature: 0.8,
        top_p: 0.95,
        max_tokens,
        stop: vec![],
        seed,
    }
}

/// Runs `checks` against `tandem serve`'s server on a free loopback port (its base URL
/// given); the server stops whether the checks pass or fail.
fn serving(checks: impl FnOnce(&str)) {
    let server = ChatServer::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", server.addr().unwrap());
    std::thread::scope(|s| {
        s.spawn(|| server.serve(llm(), None).unwrap());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checks(&url)));
        server.stop();
        if let Err(p) = outcome {
            std::panic::resume_unwind(p);
        }
    });
}

#[test]
fn http_mentor_through_tandem_serve_equals_the_embedded_mentor() {
    let llm = llm();
    let sampling = sampling(40, 11);
    let messages = vec![Message::user(meta_prompt())];
    // In process first: the embedded mentor's reply.
    let local = llm.generate(&messages, &sampling).unwrap();
    serving(|url| {
        let url = url.to_string();
        let mut client = http(&url, llm.name());
        let req = client.request(messages.clone(), sampling.clone());
        let resp = client.send(&req).unwrap();
        assert_eq!(resp.model_id, llm.name());
        assert_eq!(resp.text, local.text);
        assert_eq!(resp.completion_tokens as usize, local.tokens.len());
        assert_eq!(resp.prompt_tokens as usize, local.prompt_tokens);
        assert_eq!(resp.finish_reason, local.finish_reason);
        let cfg = ParserConfig::default();
        assert_eq!(
            parse_reply(&resp.text, &cfg).candidates,
            parse_reply(&local.text, &cfg).candidates
        );
        assert_eq!(Mentor::usage(&client).calls, 1);
        // Another seed, another reply (sampling really is seeded).
        let other = client
            .send(&client.request(
                messages.clone(),
                Sampling {
                    seed: 12,
                    ..sampling.clone()
                },
            ))
            .unwrap();
        assert_ne!(other.text, resp.text);
        // A model the server does not have: a clear 404, not a retry loop.
        let mut wrong = http(&url, "gpt-9");
        let wrong_req = wrong.request(messages.clone(), sampling.clone());
        let err = wrong.send(&wrong_req).unwrap_err().to_string();
        assert!(err.contains("404") && err.contains("gpt-9"), "{err}");
        // Streaming is refused with a 400 naming the field.
        let raw = ureq::post(&format!("{url}/chat/completions"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}))
            .unwrap();
        assert_eq!(raw.status().as_u16(), 400);
    });
}

/// Completion mode: a raw document continued, with no chat template, over `/v1/completions`
/// and in process alike.
#[test]
fn completion_requests_continue_the_document_the_same_way_over_http() {
    let llm = llm();
    let sampling = sampling(24, 5);
    let document = "Prompts for movie-review sentiment, worst to best:\n\
                    Prompt: this movie review is\nAccuracy: 66%\nPrompt:";
    let raw = llm.tokenizer().encode(document).unwrap();
    let in_process = llm.generate_from_ids(&raw, &sampling).unwrap();
    // Not the chat template's rendering of the same text.
    assert_ne!(
        raw,
        llm.prompt_ids(&[Message::user(document)]).unwrap(),
        "the raw document and its chat rendering tokenize alike"
    );
    serving(|url| {
        let mut client = http(url, llm.name());
        let mut req = client.request(vec![Message::user(document)], sampling.clone());
        req.mode = RequestMode::Completion;
        let resp = client.send(&req).unwrap();
        assert_eq!(resp.text, in_process.text);
        assert_eq!(resp.prompt_tokens as usize, raw.len());
        assert_eq!(resp.completion_tokens as usize, in_process.tokens.len());
        // The embedded mentor answers the same request the same way.
        let mut local = LocalMentor::new(
            ChatLlm::<Cpu>::load(
                &assets(&[SMOLLM2]).path(&SMOLLM2.files[0]),
                &Default::default(),
            )
            .unwrap(),
        );
        assert_eq!(local.send(&req).unwrap().text, in_process.text);
        // A text completion without a prompt is a 400 naming the field.
        let bad = ureq::post(&format!("{url}/completions"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}))
            .unwrap();
        assert_eq!(bad.status().as_u16(), 400);
        let text = bad.into_body().read_to_string().unwrap();
        assert!(text.contains("`prompt`"), "{text}");
    });
}

#[test]
fn embedded_mentor_records_the_weights_and_spends_budgets() {
    let a = assets(&[SMOLLM2]);
    let llm = ChatLlm::<Cpu>::load(&a.path(&SMOLLM2.files[0]), &Default::default()).unwrap();
    let mut m = LocalMentor::new(llm).with_budgets(Some(1), None);
    let s = Sampling {
        temperature: 0.0,
        max_tokens: 4,
        ..Sampling::default()
    };
    let req = m.request(vec![Message::user("Say hi.")], s);
    assert_eq!(
        req.endpoint,
        format!("embedded:{}", SMOLLM2.files[0].sha256)
    );
    let r = m.send(&req).unwrap();
    assert!(r.completion_tokens >= 1 && r.completion_tokens <= 4);
    assert_eq!(m.usage().calls, 1);
    assert!(matches!(m.send(&req), Err(Error::Budget { limit: 1, .. })));
}
