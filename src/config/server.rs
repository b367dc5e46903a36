//! The `server` section: where Tendero listens, keeps its state and its chat page,
//! how it bounds requests, logs, and stops.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    #[default]
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// Read by the composition module and the HTTP transport.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Listen address for HTTP, SSE and Socket.IO.
    pub addr: SocketAddr,
    /// Runtime state: the SQLite file, the LanceDB folder and the saved FAISS index
    /// unless they are set apart.
    pub data_dir: PathBuf,
    /// Dev mode relaxes what production requires (e.g. a random JWT secret when none is set).
    pub dev: bool,
    /// The customer chat page (`index.html`, `assets/`, and the Socket.IO client
    /// installed by `npm ci` in it), served at `/`.
    pub static_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests running longer than this are answered 503 `timeout`.
    pub request_timeout_secs: u64,
    /// Origins allowed by CORS; empty means no CORS headers (same-origin only).
    pub cors_origins: Vec<String>,
    /// Seconds requests in flight get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Ingest the demo shop (ingest/demo) at start-up when the catalog is empty.
    pub demo: bool,
    /// How log lines are written; unset, readable lines in dev mode (a person is
    /// reading the terminal) and JSON otherwise (a log shipper is).
    pub log_format: Option<LogFormat>,
    /// `tracing` filter, e.g. `info` or `tendero=debug,tower_http=info`.
    pub log_level: String,
}

impl ServerSettings {
    /// The log format in force (see [`ServerSettings::log_format`]).
    pub fn log_format(&self) -> LogFormat {
        match self.log_format {
            Some(format) => format,
            None if self.dev => LogFormat::Pretty,
            None => LogFormat::Json,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("data"),
            dev: false,
            static_dir: PathBuf::from("static"),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            cors_origins: Vec::new(),
            shutdown_grace_secs: 30,
            demo: true,
            log_format: None,
            // LanceDB logs every write and every query plan at `info`.
            log_level: "info,lance=warn".to_owned(),
        }
    }
}
