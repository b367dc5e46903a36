//! Typed configuration: built-in defaults, then `tendero.toml`, then `TENDERO_*`
//! environment variables (the environment wins).
//!
//! Every key has a default that serves the embedded single-node mode, so a fresh
//! checkout starts with no configuration at all. Secrets are wrapped in [`Secret`] so
//! that logging the settings never prints them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

/// Shortest JWT signing secret accepted outside dev mode (256 bits for HS256).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A string that must never appear in logs or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

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

/// Which embedder serves. `Auto` takes the first that works of: a local model folder
/// (`embedder_model_dir`, else the one `make run` fetches), Ollama `/api/embed`, and
/// the hashing embedder (lexical only, logged as a warning).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderChoice {
    #[default]
    Auto,
    Minilm,
    Ollama,
    Hash,
}

/// Which generator writes the answers. `Auto` uses Ollama and falls back to the
/// extractive generator while Ollama cannot be reached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorChoice {
    #[default]
    Auto,
    Ollama,
    Extractive,
}

/// Everything Tendero can be told, with the defaults of the embedded mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listen address for HTTP, SSE and Socket.IO.
    pub addr: SocketAddr,
    /// Runtime state: the SQLite file and, later, the indexes.
    pub data_dir: PathBuf,
    /// SQLite or PostgreSQL URL; `None` means `sqlite://{data_dir}/tendero.db?mode=rwc`.
    pub database_url: Option<String>,
    /// Connections in the database pool.
    pub db_max_connections: u32,
    /// Dev mode relaxes what production requires (e.g. a random JWT secret when none is set).
    pub dev: bool,
    /// HS256 signing secret, at least [`MIN_JWT_SECRET_BYTES`] bytes outside dev mode.
    pub jwt_secret: Option<Secret>,
    /// `iss` claim written into and required from every token.
    pub jwt_issuer: String,
    /// Token lifetime in minutes.
    pub jwt_ttl_minutes: i64,
    /// First admin, created at start-up when no user has this email.
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    /// Requests replenished per second for each client (IP, or user when authenticated).
    pub rate_limit_per_second: u32,
    /// Requests a client may send in a burst before being limited.
    pub rate_limit_burst: u32,
    /// Take the client IP from `X-Forwarded-For`/`Forwarded` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests running longer than this are answered 503 `timeout`.
    pub request_timeout_secs: u64,
    /// Origins allowed by CORS; empty means no CORS headers (same-origin only).
    pub cors_origins: Vec<String>,
    /// Seconds requests in flight get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Where saved reports (`guardar=true`, `tendero export`) are written.
    pub exports_dir: PathBuf,
    /// Most rows one export may contain; larger ones are refused before they start.
    pub export_max_rows: u64,
    /// Exports each staff member may start per minute, and in a burst.
    pub export_rate_limit_per_minute: u32,
    pub export_rate_limit_burst: u32,
    /// LanceDB location: a folder or an `s3://` URI; `None` means `{data_dir}/lancedb`.
    pub lancedb_uri: Option<String>,
    /// Folder of the saved FAISS index; `None` means `{data_dir}/faiss`.
    pub faiss_dir: Option<PathBuf>,
    /// Indexes of at least this many chunks use HNSW; smaller ones exact (Flat) search.
    pub faiss_hnsw_from: usize,
    /// Candidates an HNSW search explores (FAISS `efSearch`): higher finds more of
    /// the true nearest neighbours, at some cost in time.
    pub faiss_hnsw_ef_search: usize,
    /// Which embedder turns text into vectors (see [`EmbedderChoice`]).
    pub embedder: EmbedderChoice,
    /// A local sentence-embedding model folder (config.json, tokenizer.json,
    /// model.safetensors), e.g. all-MiniLM-L6-v2.
    pub embedder_model_dir: Option<PathBuf>,
    /// Ollama server: the generator, and the embedder when chosen.
    pub ollama_url: String,
    /// Ollama model for `/api/embed`.
    pub ollama_embed_model: String,
    /// Ollama chat model that writes the answers (it should support tool calls).
    pub ollama_model: String,
    /// Which generator writes the answers (see [`GeneratorChoice`]).
    pub generator: GeneratorChoice,
    /// The agent's instructions; `None` means the built-in Spanish sales prompt.
    pub system_prompt: Option<String>,
    /// Earlier messages of a conversation given to the model with a new question.
    pub history_messages: usize,
    /// Products and document passages retrieved for each question.
    pub context_products: usize,
    pub context_documents: usize,
    /// Answers generated at once; more wait up to `generation_queue_ms`, then are
    /// told the service is busy.
    pub max_generations: usize,
    pub generation_queue_ms: u64,
    /// Seconds the generator may take to its first piece, and to the whole answer.
    pub first_token_timeout_secs: u64,
    pub generation_timeout_secs: u64,
    /// Questions each client (socket, user or IP) may ask per minute, and in a burst.
    pub chat_rate_limit_per_minute: u32,
    pub chat_rate_limit_burst: u32,
    /// The customer chat page (`index.html`, `assets/`, and the Socket.IO client
    /// installed by `npm ci` in it), served at `/`.
    pub static_dir: PathBuf,
    /// A ggml Whisper model file; without one the voice endpoints answer 503.
    pub whisper_model: Option<PathBuf>,
    /// The language spoken to the shop (`es`, `en`, …), or `auto` to detect it.
    pub whisper_language: String,
    /// Threads one transcription uses; 0 means one per core.
    pub whisper_threads: usize,
    /// Transcriptions run at once; more wait up to `transcription_queue_ms`, then
    /// are told the service is busy.
    pub max_transcriptions: usize,
    pub transcription_queue_ms: u64,
    /// Largest audio file accepted, in bytes, and longest recording, in seconds.
    pub voice_max_bytes: usize,
    pub voice_max_secs: u64,
    /// Language of the full-text analyzer (stemming, stop words): Spanish, English…
    pub search_language: String,
    /// Longest search query accepted, in characters.
    pub search_max_query_chars: usize,
    /// Ingest the demo shop (ingest/demo) at start-up when the catalog is empty.
    pub demo: bool,
    /// Redis shared by several Tendero nodes: Socket.IO rooms and broadcasts reach
    /// the clients of every node, and `cancel` stops an answer on whichever node
    /// writes it. `None` serves one node on its own.
    pub redis_url: Option<String>,
    /// What the nodes of one shop prefix their Redis channels with, so that several
    /// shops can share one Redis.
    pub redis_prefix: String,
    /// How often the server looks for index changes written by other processes
    /// (`tendero-ingest`, other nodes), in milliseconds.
    pub index_poll_ms: u64,
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `tendero=debug,tower_http=info`.
    pub log_level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_max_connections: 16,
            dev: false,
            jwt_secret: None,
            jwt_issuer: "tendero".to_owned(),
            jwt_ttl_minutes: 8 * 60,
            admin_email: None,
            admin_password: None,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            trust_forwarded_for: false,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            cors_origins: Vec::new(),
            shutdown_grace_secs: 30,
            exports_dir: PathBuf::from("exports"),
            export_max_rows: 5_000_000,
            export_rate_limit_per_minute: 20,
            export_rate_limit_burst: 5,
            lancedb_uri: None,
            faiss_dir: None,
            faiss_hnsw_from: 20_000,
            faiss_hnsw_ef_search: 128,
            embedder: EmbedderChoice::Auto,
            embedder_model_dir: None,
            ollama_url: "http://127.0.0.1:11434".to_owned(),
            ollama_embed_model: "nomic-embed-text".to_owned(),
            ollama_model: "qwen2.5:3b-instruct".to_owned(),
            generator: GeneratorChoice::Auto,
            system_prompt: None,
            history_messages: 8,
            context_products: 5,
            context_documents: 2,
            max_generations: 4,
            generation_queue_ms: 10_000,
            first_token_timeout_secs: 60,
            generation_timeout_secs: 180,
            chat_rate_limit_per_minute: 20,
            chat_rate_limit_burst: 5,
            static_dir: PathBuf::from("static"),
            whisper_model: None,
            whisper_language: "es".to_owned(),
            whisper_threads: 0,
            max_transcriptions: 1,
            transcription_queue_ms: 10_000,
            voice_max_bytes: 16 * 1024 * 1024,
            voice_max_secs: 60,
            search_language: "Spanish".to_owned(),
            search_max_query_chars: 2000,
            demo: true,
            redis_url: None,
            redis_prefix: "tendero".to_owned(),
            index_poll_ms: 1000,
            log_format: LogFormat::Json,
            // LanceDB logs every write and every query plan at `info`.
            log_level: "info,lance=warn".to_owned(),
        }
    }
}

/// Configuration that cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration: {0}")]
    Load(#[source] Box<figment::Error>),
    #[error(
        "TENDERO_JWT_SECRET is required outside dev mode: set it to a random string of at least \
         {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -base64 48`), or set TENDERO_DEV=true"
    )]
    MissingJwtSecret,
    #[error(
        "TENDERO_JWT_SECRET is {0} bytes long; use at least {MIN_JWT_SECRET_BYTES} random bytes"
    )]
    ShortJwtSecret(usize),
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults, then `config_file` if it exists, then `TENDERO_*` variables.
    /// Call [`Settings::check`] before serving.
    pub fn load(config_file: &Path) -> Result<Self, ConfigError> {
        Figment::new()
            .merge(Toml::file(config_file))
            .merge(Env::prefixed("TENDERO_"))
            .extract()
            .map_err(|err| ConfigError::Load(Box::new(err)))
    }

    /// Rejects settings the server must not start with.
    pub fn check(&self) -> Result<(), ConfigError> {
        match &self.jwt_secret {
            None if !self.dev => return Err(ConfigError::MissingJwtSecret),
            Some(secret) if !self.dev && secret.expose().len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError::ShortJwtSecret(secret.expose().len()));
            }
            _ => {}
        }
        if self.rate_limit_per_second == 0 || self.rate_limit_burst == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_RATE_LIMIT_PER_SECOND and TENDERO_RATE_LIMIT_BURST must be at least 1"
                    .to_owned(),
            ));
        }
        if self.export_rate_limit_per_minute == 0 || self.export_rate_limit_burst == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_EXPORT_RATE_LIMIT_PER_MINUTE and TENDERO_EXPORT_RATE_LIMIT_BURST must be \
                 at least 1"
                    .to_owned(),
            ));
        }
        if self.search_max_query_chars == 0 || self.index_poll_ms == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_SEARCH_MAX_QUERY_CHARS and TENDERO_INDEX_POLL_MS must be at least 1"
                    .to_owned(),
            ));
        }
        if self.max_generations == 0
            || self.first_token_timeout_secs == 0
            || self.generation_timeout_secs == 0
            || self.chat_rate_limit_per_minute == 0
            || self.chat_rate_limit_burst == 0
        {
            return Err(ConfigError::Invalid(
                "TENDERO_MAX_GENERATIONS, TENDERO_FIRST_TOKEN_TIMEOUT_SECS, \
                 TENDERO_GENERATION_TIMEOUT_SECS and TENDERO_CHAT_RATE_LIMIT_* must be at least 1"
                    .to_owned(),
            ));
        }
        if self.max_transcriptions == 0 || self.voice_max_bytes == 0 || self.voice_max_secs == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_MAX_TRANSCRIPTIONS, TENDERO_VOICE_MAX_BYTES and TENDERO_VOICE_MAX_SECS \
                 must be at least 1"
                    .to_owned(),
            ));
        }
        if self.redis_prefix.is_empty()
            || !self
                .redis_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(ConfigError::Invalid(
                "TENDERO_REDIS_PREFIX must be letters, digits, `-`, `_`, `.` or `:`".to_owned(),
            ));
        }
        let language = self.whisper_language.trim();
        if language != "auto" && whisper_rs::get_lang_id(language).is_none() {
            return Err(ConfigError::Invalid(format!(
                "TENDERO_WHISPER_LANGUAGE must be `auto` or a language Whisper knows \
                 (es, en, pt, …), not `{language}`"
            )));
        }
        if self.jwt_ttl_minutes <= 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_JWT_TTL_MINUTES must be positive".to_owned(),
            ));
        }
        Ok(())
    }

    /// Threads one transcription uses (`whisper_threads`, or one per core).
    pub fn transcription_threads(&self) -> usize {
        match self.whisper_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The LanceDB URI in force.
    pub fn lancedb_uri(&self) -> String {
        match &self.lancedb_uri {
            Some(uri) => uri.clone(),
            None => self.data_dir.join("lancedb").display().to_string(),
        }
    }

    /// The folder of the saved FAISS index.
    pub fn faiss_dir(&self) -> PathBuf {
        self.faiss_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("faiss"))
    }

    /// The database URL in force, derived from `data_dir` when not set.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("tendero.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    /// The same layering as [`Settings::load`], with environment values parsed the
    /// way figment's `Env` parses them, but without touching the process environment.
    fn layered(toml: &str, env: &[(&str, &str)]) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::new().merge(Toml::string(toml));
        for (key, value) in env {
            let value: figment::value::Value = value.parse().expect("infallible");
            figment = figment.merge(Serialized::default(key, value));
        }
        figment.extract().map_err(Box::new)
    }

    #[test]
    fn defaults_serve_the_embedded_mode() {
        let s = Settings::default();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8000");
        assert_eq!(s.database_url(), "sqlite://data/tendero.db?mode=rwc");
    }

    #[test]
    fn later_layers_override_earlier_ones() {
        let s = layered(
            "addr = \"0.0.0.0:9000\"\ndev = true\nrate_limit_burst = 7",
            &[("rate_limit_burst", "9")],
        )
        .unwrap();
        assert_eq!(s.addr.port(), 9000);
        assert!(s.dev);
        assert_eq!(s.rate_limit_burst, 9);
        assert_eq!(s.jwt_issuer, "tendero");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Settings {
            jwt_secret: Some(Secret::new("super-secret-value-that-must-not-leak")),
            ..Settings::default()
        };
        let printed = format!("{s:?}");
        assert!(!printed.contains("super-secret"));
        assert!(printed.contains("Secret(***)"));
    }

    #[test]
    fn production_requires_a_long_secret() {
        let mut s = Settings::default();
        assert!(matches!(s.check(), Err(ConfigError::MissingJwtSecret)));
        s.jwt_secret = Some(Secret::new("short"));
        assert!(matches!(s.check(), Err(ConfigError::ShortJwtSecret(5))));
        s.jwt_secret = Some(Secret::new("x".repeat(MIN_JWT_SECRET_BYTES)));
        assert!(s.check().is_ok());
        s.jwt_secret = None;
        s.dev = true;
        assert!(s.check().is_ok());
    }
}
