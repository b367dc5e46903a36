//! The `redis` section: the Redis that joins several Tendero nodes.

use serde::Deserialize;

use super::ConfigError;

/// Read by [`crate::cluster`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// Redis shared by several Tendero nodes: Socket.IO rooms and broadcasts reach
    /// the clients of every node, and `cancel` stops an answer on whichever node
    /// writes it. `None` serves one node on its own.
    pub redis_url: Option<String>,
    /// What the nodes of one shop prefix their Redis channels with, so that several
    /// shops can share one Redis.
    pub redis_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_prefix: "tendero".to_owned(),
        }
    }
}

impl RedisSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}
