//! A wire-compatible fake Ollama, served by the test process on a random port
//! (shared/ollama-api.md): `/api/chat` streams NDJSON, one complete line per chunk;
//! `/api/tags` answers. Each chat request takes the next queued [`Reply`], or the
//! default one. The fake records every request body and counts streams the client
//! abandoned before their end, so tests can prove a cancel reached upstream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One step of a streamed answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// A piece of text.
    Text(String),
    /// A line with tool calls: `[{"function": {"name", "arguments"}}]`.
    ToolCalls(Value),
    /// An `{"error": …}` line, then the connection closes (no final line).
    Error(String),
    /// Nothing more is ever sent; the stream stays open.
    Stall,
    /// Nothing more is sent until the test calls `notify_one` on this.
    Gate(Arc<Notify>),
}

/// How the fake answers one chat request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// These steps, one every `delay`, then the final line.
    Stream { steps: Vec<Step>, delay: Duration },
    /// "Respuesta a: <last user message>", word by word, every `delay`.
    Echo { delay: Duration },
    /// An HTTP error before any streaming.
    Status(u16, String),
}

impl Reply {
    /// `text` in pieces of one word (with its trailing space).
    pub fn say(text: &str) -> Self {
        Self::Stream {
            steps: words(text).into_iter().map(Step::Text).collect(),
            delay: Duration::ZERO,
        }
    }

    pub fn steps(steps: Vec<Step>) -> Self {
        Self::Stream {
            steps,
            delay: Duration::ZERO,
        }
    }

    /// One tool call, then the final line.
    pub fn tool_call(name: &str, arguments: Value) -> Self {
        Self::steps(vec![Step::ToolCalls(
            json!([{"function": {"name": name, "arguments": arguments}}]),
        )])
    }
}

/// Splits text into word pieces that join back into it.
pub fn words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Value>>,
    abandoned: AtomicUsize,
    changed: Notify,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeOllama {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeOllama {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route("/api/chat", post(chat))
            .route(
                "/api/tags",
                get(|| async { Json(json!({"models": [{"name": "fake-chat"}]})) }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, shared }
    }

    /// Queues the reply to the next chat request.
    pub fn then(&self, reply: Reply) -> &Self {
        self.shared.queue.lock().unwrap().push_back(reply);
        self
    }

    /// The reply when nothing is queued.
    pub fn always(&self, reply: Reply) {
        *self.shared.default.lock().unwrap() = Some(reply);
    }

    /// Every chat request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Streams the client dropped before they ended.
    pub fn abandoned(&self) -> usize {
        self.shared.abandoned.load(Ordering::SeqCst)
    }

    /// Waits (up to 20 s) until at least `n` streams were abandoned.
    pub async fn wait_abandoned(&self, n: usize) {
        let wait = async {
            loop {
                let changed = self.shared.changed.notified();
                if self.abandoned() >= n {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("the upstream stream was not abandoned (wanted {n})"));
    }
}

/// Counts the stream as abandoned when it is dropped before its end.
struct Tracker {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.abandoned.fetch_add(1, Ordering::SeqCst);
            self.shared.changed.notify_waiters();
        }
    }
}

fn line(value: Value) -> Result<Bytes, Infallible> {
    let mut text = value.to_string();
    text.push('\n');
    Ok(Bytes::from(text))
}

fn piece(content: &str, tool_calls: Option<Value>) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if let Some(calls) = tool_calls {
        message["tool_calls"] = calls;
    }
    json!({"model": "fake-chat", "created_at": "2026-01-01T00:00:00Z", "message": message, "done": false})
}

fn done() -> Value {
    json!({
        "model": "fake-chat", "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": "stop",
        "total_duration": 1_000_000u64, "load_duration": 1000u64,
        "prompt_eval_count": 10u64, "prompt_eval_duration": 1000u64,
        "eval_count": 5u64, "eval_duration": 1000u64
    })
}

async fn chat(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    shared.requests.lock().unwrap().push(body);
    shared.changed.notify_waiters();
    let reply = shared
        .queue
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| shared.default.lock().unwrap().clone())
        .unwrap_or_else(|| Reply::say("Hola."));
    let (steps, delay) = match reply {
        Reply::Status(status, message) => {
            return (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": message})),
            )
                .into_response();
        }
        Reply::Echo { delay } => (
            words(&format!("Respuesta a: {last_user}"))
                .into_iter()
                .map(Step::Text)
                .collect(),
            delay,
        ),
        Reply::Stream { steps, delay } => (steps, delay),
    };
    let stream = async_stream::stream! {
        let mut tracker = Tracker { shared: shared.clone(), finished: false };
        for step in steps {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match step {
                Step::Text(text) => yield line(piece(&text, None)),
                Step::ToolCalls(calls) => yield line(piece("", Some(calls))),
                Step::Error(message) => {
                    yield line(json!({"error": message}));
                    tracker.finished = true;
                    return;
                }
                Step::Stall => {
                    std::future::pending::<()>().await;
                }
                Step::Gate(gate) => gate.notified().await,
            }
        }
        yield line(done());
        tracker.finished = true;
    };
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap()
}
