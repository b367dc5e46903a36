//! The `limits` section: how many requests, questions and exports each client may
//! send, and how a client is told apart.

use serde::Deserialize;

use super::ConfigError;

/// Read by the HTTP rate limiters and the Socket.IO sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Requests replenished per second for each client (IP, or user when authenticated).
    pub rate_limit_per_second: u32,
    /// Requests a client may send in a burst before being limited.
    pub rate_limit_burst: u32,
    /// Take the client IP from `X-Forwarded-For`/`Forwarded` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Questions each client (socket, user or IP) may ask per minute, and in a burst.
    pub chat_rate_limit_per_minute: u32,
    pub chat_rate_limit_burst: u32,
    /// Exports each staff member may start per minute, and in a burst.
    pub export_rate_limit_per_minute: u32,
    pub export_rate_limit_burst: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            trust_forwarded_for: false,
            chat_rate_limit_per_minute: 20,
            chat_rate_limit_burst: 5,
            export_rate_limit_per_minute: 20,
            export_rate_limit_burst: 5,
        }
    }
}

impl LimitSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
        if self.chat_rate_limit_per_minute == 0 || self.chat_rate_limit_burst == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_CHAT_RATE_LIMIT_PER_MINUTE and TENDERO_CHAT_RATE_LIMIT_BURST must be at \
                 least 1"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
