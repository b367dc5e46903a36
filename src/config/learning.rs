//! The `learning` section: how long the event log keeps what customers did, and how
//! the ranking learns from their clicks.

use serde::Deserialize;

use super::ConfigError;

/// Read by [`crate::learning`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LearningSettings {
    /// Events older than this many days are deleted (once an hour); 0 keeps them all.
    pub events_retention_days: u32,
    /// What the click-learned term is multiplied by before it is added to a hybrid
    /// search's fused score (which runs from 0 to 1); 0 turns it off.
    pub clicks_weight: f32,
    /// Views each product's attractiveness for a query is smoothed with: the larger,
    /// the more clicks it takes to move a product.
    pub clicks_prior_strength: f64,
    /// Clicks a query needs (over all its results) before it is learned.
    pub clicks_min_per_query: u64,
    /// A query never clicked borrows from clicked queries at least this similar in
    /// meaning (cosine of their vectors); above 1 turns borrowing off.
    pub clicks_neighbour_similarity: f32,
    /// The share of the weight a borrowed term gets.
    pub clicks_neighbour_weight: f32,
    /// Days of events the learning reads.
    pub learning_window_days: u32,
    /// Seconds between two learnings on their own; 0 learns only when asked
    /// (`tendero aprender`, `POST /api/aprendizaje/entrenar`).
    pub learning_interval_secs: u64,
    /// How often a node looks for what another node learned.
    pub learning_poll_secs: u64,
    /// Seconds between two folds of new events into the analytics' totals; 0 folds
    /// only when staff ask (each request folds what is new first, a chunk at most).
    pub analytics_interval_secs: u64,
}

impl Default for LearningSettings {
    fn default() -> Self {
        Self {
            events_retention_days: 365,
            // Chosen with the click simulator on the tuning half of the Home Depot
            // queries (docs/search.md#learning-from-clicks).
            clicks_weight: 2.0,
            clicks_prior_strength: 10.0,
            clicks_min_per_query: 1,
            clicks_neighbour_similarity: 0.85,
            clicks_neighbour_weight: 0.1,
            learning_window_days: 90,
            learning_interval_secs: 3600,
            learning_poll_secs: 30,
            analytics_interval_secs: 15,
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
        let finite = [
            self.clicks_weight,
            self.clicks_neighbour_similarity,
            self.clicks_neighbour_weight,
        ]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0);
        if !finite || !self.clicks_prior_strength.is_finite() || self.clicks_prior_strength < 0.0 {
            return Err(ConfigError::Invalid(
                "TENDERO_CLICKS_WEIGHT, TENDERO_CLICKS_PRIOR_STRENGTH, TENDERO_CLICKS_NEIGHBOUR_SIMILARITY \
                 and TENDERO_CLICKS_NEIGHBOUR_WEIGHT must be numbers of at least 0"
                    .to_owned(),
            ));
        }
        if self.learning_window_days == 0 || self.learning_poll_secs == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_LEARNING_WINDOW_DAYS and TENDERO_LEARNING_POLL_SECS must be at least 1"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
