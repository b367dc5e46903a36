//! Typed configuration: built-in defaults, then `tendero.toml`, then `TENDERO_*`
//! environment variables (the environment wins).
//!
//! Settings come in sections, one per concern, each read by the module named on it
//! ([`ServerSettings`], [`DatabaseSettings`], [`AuthSettings`], [`LimitSettings`],
//! [`RetrievalSettings`], [`OllamaSettings`], [`AgentSettings`], [`SpeechSettings`],
//! [`ExportSettings`], [`RedisSettings`], [`RecommendSettings`]): a service is given its section, never
//! the whole. The keys stay flat (`max_generations = 8` in `tendero.toml`,
//! `TENDERO_MAX_GENERATIONS=8`): every section is flattened into one namespace.
//!
//! Every key has a default that serves the embedded single-node mode, so a fresh
//! checkout starts with no configuration at all. Secrets are wrapped in [`Secret`] so
//! that logging the settings never prints them.

mod agent;
mod auth;
mod database;
mod export;
mod learning;
mod limits;
mod ollama;
mod recommend;
mod redis;
mod retrieval;
mod server;
mod speech;

pub use agent::{AgentSettings, GeneratorChoice};
pub use auth::{AuthSettings, MIN_JWT_SECRET_BYTES};
pub use database::DatabaseSettings;
pub use export::ExportSettings;
pub use learning::LearningSettings;
pub use limits::LimitSettings;
pub use ollama::OllamaSettings;
pub use recommend::RecommendSettings;
pub use redis::RedisSettings;
pub use retrieval::{EmbedderChoice, RetrievalSettings};
pub use server::{LogFormat, ServerSettings};
pub use speech::SpeechSettings;

use std::fmt;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

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

/// Everything Tendero can be told, by section, with the defaults of the embedded mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    #[serde(flatten)]
    pub server: ServerSettings,
    #[serde(flatten)]
    pub database: DatabaseSettings,
    #[serde(flatten)]
    pub auth: AuthSettings,
    #[serde(flatten)]
    pub limits: LimitSettings,
    #[serde(flatten)]
    pub retrieval: RetrievalSettings,
    #[serde(flatten)]
    pub ollama: OllamaSettings,
    #[serde(flatten)]
    pub agent: AgentSettings,
    #[serde(flatten)]
    pub speech: SpeechSettings,
    #[serde(flatten)]
    pub export: ExportSettings,
    #[serde(flatten)]
    pub redis: RedisSettings,
    #[serde(flatten)]
    pub recommend: RecommendSettings,
    #[serde(flatten)]
    pub learning: LearningSettings,
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
    /// Loads defaults, then `config_file` if it exists, then `TENDERO_*` variables,
    /// and fills in what derives from the data folder. Call [`Settings::check`]
    /// before serving.
    pub fn load(config_file: &Path) -> Result<Self, ConfigError> {
        let settings: Self = Figment::new()
            .merge(Toml::file(config_file))
            .merge(Env::prefixed("TENDERO_"))
            .extract()
            .map_err(|err| ConfigError::Load(Box::new(err)))?;
        Ok(settings.resolve())
    }

    /// Fills in the locations left to derive from the data folder (the SQLite
    /// file, LanceDB's folder, the saved FAISS index, the model folder looked
    /// for). Locations already set are kept, so this may run more than once.
    pub fn resolve(mut self) -> Self {
        let data_dir = self.server.data_dir.clone();
        if self.database.database_url.is_none() {
            self.database.database_url = Some(format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("tendero.db").display()
            ));
        }
        if self.retrieval.lancedb_uri.is_none() {
            self.retrieval.lancedb_uri = Some(data_dir.join("lancedb").display().to_string());
        }
        if self.retrieval.faiss_dir.is_none() {
            self.retrieval.faiss_dir = Some(data_dir.join("faiss"));
        }
        self.retrieval.data_dir = data_dir;
        self
    }

    /// Rejects settings the server must not start with.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.auth.check(self.server.dev)?;
        self.limits.check()?;
        self.retrieval.check()?;
        self.agent.check()?;
        self.speech.check()?;
        self.redis.check()?;
        self.recommend.check()?;
        self.learning.check()?;
        Ok(())
    }
}

/// A database or Redis URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite://data/t.db"), "sqlite://data/t.db");
    }

    /// The same layering as [`Settings::load`], with environment values parsed the
    /// way figment's `Env` parses them, but without touching the process environment.
    fn layered(toml: &str, env: &[(&str, &str)]) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::new().merge(Toml::string(toml));
        for (key, value) in env {
            let value: figment::value::Value = value.parse().expect("infallible");
            figment = figment.merge(Serialized::default(key, value));
        }
        figment
            .extract::<Settings>()
            .map(Settings::resolve)
            .map_err(Box::new)
    }

    #[test]
    fn defaults_serve_the_embedded_mode() {
        let s = Settings::default().resolve();
        assert_eq!(s.server.addr.to_string(), "127.0.0.1:8000");
        assert_eq!(s.database.url(), "sqlite://data/tendero.db?mode=rwc");
        assert_eq!(Settings::default().database.url(), s.database.url());
        assert_eq!(s.retrieval.lancedb_uri(), "data/lancedb");
    }

    #[test]
    fn later_layers_override_earlier_ones() {
        let s = layered(
            "addr = \"0.0.0.0:9000\"\ndev = true\nrate_limit_burst = 7",
            &[("rate_limit_burst", "9")],
        )
        .unwrap();
        assert_eq!(s.server.addr.port(), 9000);
        assert!(s.server.dev);
        assert_eq!(s.limits.rate_limit_burst, 9);
        assert_eq!(s.auth.jwt_issuer, "tendero");
    }

    #[test]
    fn flat_keys_reach_every_section() {
        let s = layered(
            "data_dir = \"/srv/tienda\"\nmax_generations = 9\nollama_model = \"m\"",
            &[
                ("voice_max_secs", "12"),
                ("export_max_rows", "10"),
                ("redis_prefix", "tienda"),
                ("database_url", "postgres://db/shop"),
                ("embedder", "hash"),
                ("jwt_ttl_minutes", "5"),
                ("chat_rate_limit_burst", "3"),
            ],
        )
        .unwrap();
        assert_eq!(s.agent.max_generations, 9);
        assert_eq!(s.ollama.ollama_model, "m");
        assert_eq!(s.speech.voice_max_secs, 12);
        assert_eq!(s.export.export_max_rows, 10);
        assert_eq!(s.redis.redis_prefix, "tienda");
        assert_eq!(s.database.url(), "postgres://db/shop");
        assert_eq!(s.retrieval.embedder, EmbedderChoice::Hash);
        assert_eq!(s.auth.jwt_ttl_minutes, 5);
        assert_eq!(s.limits.chat_rate_limit_burst, 3);
        assert_eq!(s.retrieval.lancedb_uri(), "/srv/tienda/lancedb");
        assert_eq!(s.retrieval.faiss_dir(), Path::new("/srv/tienda/faiss"));
    }

    #[test]
    fn dev_mode_logs_readable_lines_unless_told_otherwise() {
        let dev = layered("dev = true", &[]).unwrap();
        assert_eq!(dev.server.log_format(), LogFormat::Pretty);
        let production = layered("", &[]).unwrap();
        assert_eq!(production.server.log_format(), LogFormat::Json);
        let told = layered("dev = true", &[("log_format", "json")]).unwrap();
        assert_eq!(told.server.log_format(), LogFormat::Json);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut s = Settings::default();
        s.auth.jwt_secret = Some(Secret::new("super-secret-value-that-must-not-leak"));
        let printed = format!("{s:?}");
        assert!(!printed.contains("super-secret"));
        assert!(printed.contains("Secret(***)"));
    }

    #[test]
    fn production_requires_a_long_secret() {
        let mut s = Settings::default();
        assert!(matches!(s.check(), Err(ConfigError::MissingJwtSecret)));
        s.auth.jwt_secret = Some(Secret::new("short"));
        assert!(matches!(s.check(), Err(ConfigError::ShortJwtSecret(5))));
        s.auth.jwt_secret = Some(Secret::new("x".repeat(MIN_JWT_SECRET_BYTES)));
        assert!(s.check().is_ok());
        s.auth.jwt_secret = None;
        s.server.dev = true;
        assert!(s.check().is_ok());
    }
}
