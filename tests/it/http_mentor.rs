//! The HTTP mentor against a misbehaving OpenAI-compatible server on loopback: retries on 429 and
//! 5xx (honouring Retry-After), no retry on 401, connection errors, budgets, and the API key never
//! appears in an error. (The success path against a real LLM comes with `tandem serve`.)

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem::mentor::{HttpMentor, HttpMentorConfig, Message, Sampling};
use tandem::Error;

use crate::support;

/// Serves the scripted responses, one per connection, and records the raw requests.
fn serve(script: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for response in script {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let (head, body, mut stream) = support::read_request(stream);
            log.lock()
                .unwrap()
                .push(head + &String::from_utf8_lossy(&body));
            stream.write_all(response.as_bytes()).ok();
        }
    });
    (url, seen)
}

fn status(code: u16, extra: &str) -> String {
    format!("HTTP/1.1 {code} X\r\nContent-Length: 5\r\nConnection: close\r\n{extra}\r\nerror")
}

/// A client whose key variable `TANDEM_HTTP_TEST_KEY` holds the sentinel (in the client's own
/// environment: `std::env::set_var` would race with the other tests' threads).
fn client(url: &str, retries: u32) -> HttpMentor {
    HttpMentor::with_env(
        HttpMentorConfig {
            base_url: url.into(),
            model: "test-model".into(),
            api_key_env: "TANDEM_HTTP_TEST_KEY".into(),
            timeout_s: 5.0,
            max_retries: retries,
            backoff_s: 0.05,
            max_backoff_s: 2.0,
            ..Default::default()
        },
        |var| (var == "TANDEM_HTTP_TEST_KEY").then(|| "sk-SENTINEL-999".into()),
    )
    .unwrap()
}

fn sampling() -> Sampling {
    Sampling {
        temperature: 0.3,
        top_p: 0.9,
        max_tokens: 64,
        stop: vec![],
        seed: 11,
    }
}

#[test]
fn retries_429_and_5xx_honouring_retry_after_then_gives_up_clearly() {
    let (url, seen) = serve(vec![
        status(429, "Retry-After: 1\r\n"),
        status(500, ""),
        status(503, ""),
    ]);
    let mut m = client(&url, 2);
    let req = m.request(vec![Message::user("propose prompts")], sampling());
    let start = Instant::now();
    let err = m.send(&req).unwrap_err();
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "Retry-After: 1 honoured"
    );
    let text = err.to_string();
    assert!(matches!(err, Error::Mentor { .. }));
    assert!(
        text.contains("gave up after 3 attempts")
            && text.contains("HTTP 429")
            && text.contains("HTTP 503"),
        "{text}"
    );
    assert!(!text.contains("SENTINEL"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let first = &seen[0];
    assert!(first.starts_with("POST /v1/chat/completions"), "{first}");
    assert!(
        first.contains("Bearer sk-SENTINEL-999"),
        "the key is sent to the server"
    );
    let body: serde_json::Value = serde_json::from_str(&first[first.find('{').unwrap()..]).unwrap();
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["seed"], 11);
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["messages"][0]["content"], "propose prompts");
    assert_eq!(m.usage().calls, 0);
}

#[test]
fn unauthorized_is_not_retried_and_names_the_key_variable_not_the_key() {
    let (url, seen) = serve(vec![status(401, ""), status(401, "")]);
    let mut m = client(&url, 3);
    let req = m.request(vec![Message::user("x")], sampling());
    let text = m.send(&req).unwrap_err().to_string();
    assert!(
        text.contains("HTTP 401") && text.contains("$TANDEM_HTTP_TEST_KEY"),
        "{text}"
    );
    assert!(!text.contains("SENTINEL"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn truncated_json_and_connection_errors_are_retried_then_reported() {
    let truncated =
        "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"model\":\"m";
    // A third response is on offer: the client must not take it (1 retry = 2 attempts).
    let (url, seen) = serve(vec![truncated.to_string(); 3]);
    let mut m = client(&url, 1);
    let req = m.request(vec![Message::user("x")], sampling());
    let text = m.send(&req).unwrap_err().to_string();
    assert!(
        text.contains("malformed response") && text.contains("2 attempts"),
        "{text}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.starts_with("POST /v1/chat/completions") && r == &seen[0]),
        "{seen:?}"
    );

    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let mut m = client(&url, 1);
    let req = m.request(vec![Message::user("x")], sampling());
    let text = m.send(&req).unwrap_err().to_string();
    assert!(text.contains("gave up after 2 attempts"), "{text}");
}

#[test]
fn spent_budgets_stop_cleanly_before_calling() {
    let mut m = HttpMentor::new(HttpMentorConfig {
        base_url: "http://127.0.0.1:9/v1".into(),
        max_calls: Some(0),
        ..Default::default()
    })
    .unwrap();
    let req = m.request(vec![Message::user("x")], sampling());
    let err = m.send(&req).unwrap_err();
    assert!(matches!(err, Error::Budget { limit: 0, .. }), "{err}");
    assert!(err.to_string().contains("LLM calls"));
    assert!(HttpMentor::new(HttpMentorConfig {
        base_url: "ftp://x".into(),
        ..Default::default()
    })
    .is_err());
}
