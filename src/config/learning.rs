//! The `learning` section: how long the event log keeps what customers did.

use serde::Deserialize;

use super::ConfigError;

/// Read by [`crate::learning`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LearningSettings {
    /// Events older than this many days are deleted (once an hour); 0 keeps them all.
    pub events_retention_days: u32,
}

impl Default for LearningSettings {
    fn default() -> Self {
        Self {
            events_retention_days: 365,
        }
    }
}

impl LearningSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        // About 270 years: a retention beyond it is a typo, not a policy.
        if self.events_retention_days > 100_000 {
            return Err(ConfigError::Invalid(format!(
                "TENDERO_EVENTS_RETENTION_DAYS is {}; use 0 to keep events forever, or up to 100000 days",
                self.events_retention_days
            )));
        }
        Ok(())
    }
}
