//! The `database` section: which database holds the shop, and its pool.

use serde::Deserialize;

/// The database URL when nothing sets one and the data folder is the default.
const DEFAULT_URL: &str = "sqlite://data/tendero.db?mode=rwc";

/// Read by the composition module and the command line, which connect.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// SQLite or PostgreSQL URL; `None` means `sqlite://{data_dir}/tendero.db?mode=rwc`
    /// (filled in by [`super::Settings::resolve`]).
    pub database_url: Option<String>,
    /// Connections in the database pool.
    pub db_max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            db_max_connections: 16,
        }
    }
}

impl DatabaseSettings {
    /// The database URL in force.
    pub fn url(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_URL)
    }
}
