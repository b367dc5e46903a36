//! The official socket.io-client v4 (from npm, run by Node) as a test client:
//! `test_frontend/socket_driver.mjs` takes commands on stdin and prints what the
//! client sees as JSON lines, which these helpers read.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest a test waits for the next thing the client sees.
const WAIT: Duration = Duration::from_secs(30);

pub struct SocketClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

/// What a finished answer looked like to the client.
#[derive(Debug)]
pub struct Streamed {
    pub chunks: Vec<String>,
    /// The final `response` or the `error`.
    pub last: Value,
    pub last_event: String,
}

fn frontend_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_frontend")
}

impl SocketClient {
    /// Starts a client against `base` (`http://host:port`), with a token when given,
    /// and returns once it connected or was refused (see [`SocketClient::first`]).
    pub async fn start(base: &str, token: Option<&str>) -> (Self, Value) {
        let dir = frontend_dir();
        assert!(
            dir.join("node_modules/socket.io-client").is_dir(),
            "socket.io-client is not installed: run `npm ci` in {} (make test does)",
            dir.display()
        );
        let mut command = Command::new("node");
        command
            .arg(dir.join("socket_driver.mjs"))
            .arg(base)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(token) = token {
            command.arg(token);
        }
        let mut child = command
            .spawn()
            .expect("starting node (is Node.js installed?)");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut client = Self {
            child,
            stdin,
            lines,
        };
        let first = client.next().await;
        (client, first)
    }

    /// A connected client.
    pub async fn connect(base: &str, token: Option<&str>) -> Self {
        let (client, first) = Self::start(base, token).await;
        assert_eq!(first["type"], "connect", "{first}");
        client
    }

    /// The next thing the client saw.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the socket client saw nothing for 30 s")
            .expect("reading the socket client")
            .expect("the socket client ended");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    async fn command(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("client stdin open");
        let mut line = command.to_string();
        line.push('\n');
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    pub async fn emit(&mut self, event: &str, data: Value) {
        self.command(json!({"cmd": "emit", "event": event, "data": data}))
            .await;
    }

    /// Emits `event` with the file at `path` attached as binary: as the `audio`
    /// field of `data`, or as a second argument.
    pub async fn emit_binary(&mut self, event: &str, data: Value, path: &Path, as_argument: bool) {
        self.command(json!({
            "cmd": "emit",
            "event": event,
            "data": data,
            "binary": {"path": path, "as": if as_argument { "argument" } else { "field" }},
        }))
        .await;
    }

    pub async fn ask(&mut self, query: &str, chat_id: Option<&str>) {
        let mut data = json!({"query": query});
        if let Some(chat_id) = chat_id {
            data["chat_id"] = json!(chat_id);
        }
        self.emit("query_text", data).await;
    }

    /// Opens `count` more clients at once, each emitting `event` with `data` the
    /// moment it is connected; returns how many got a `reply` event back.
    pub async fn burst(&mut self, count: usize, event: &str, data: Value, reply: &str) -> u64 {
        self.command(json!({
            "cmd": "burst", "count": count, "event": event, "data": data, "reply": reply,
        }))
        .await;
        loop {
            let seen = self.next().await;
            if seen["type"] == "burst" {
                return seen["answered"].as_u64().unwrap();
            }
        }
    }

    /// Emits `event` and returns the server's acknowledgement; fails on anything
    /// else seen first, or after 10 s without one.
    pub async fn emit_with_ack(&mut self, event: &str, data: Value) -> Value {
        self.command(json!({"cmd": "emit_ack", "event": event, "data": data}))
            .await;
        let seen = self.next().await;
        assert_eq!(seen["type"], "ack", "no acknowledgement of {event}: {seen}");
        seen["data"].clone()
    }

    pub async fn disconnect(&mut self) {
        self.command(json!({"cmd": "disconnect"})).await;
    }

    /// The next `response` piece or final event or `error`, as (event, data).
    pub async fn next_event(&mut self) -> (String, Value) {
        let seen = self.next().await;
        assert_eq!(seen["type"], "event", "unexpected socket event: {seen}");
        (
            seen["event"].as_str().unwrap_or_default().to_owned(),
            seen["data"].clone(),
        )
    }

    /// Reads pieces until the final `response` or an `error`.
    pub async fn until_end(&mut self) -> Streamed {
        let mut chunks = Vec::new();
        loop {
            let (event, data) = self.next_event().await;
            if event == "response" && data["complete"] == false {
                chunks.push(data["chunk"].as_str().unwrap().to_owned());
                continue;
            }
            return Streamed {
                chunks,
                last: data,
                last_event: event,
            };
        }
    }
}

impl Drop for SocketClient {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
