//! The `recommend` section: how often the recommendation models retrain and how.

use serde::Deserialize;

use super::ConfigError;

/// Read by [`crate::recommend`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RecommendSettings {
    /// Seconds between two trainings from the orders, counted from the newest stored
    /// generation (0: only when none is stored, and when staff ask:
    /// `POST /api/recomendaciones/entrenar`, `tendero entrenar`).
    pub recommend_interval_secs: u64,
    /// Seconds between two looks for a generation stored by another node or by
    /// `tendero entrenar`.
    pub recommend_poll_secs: u64,
    /// Days after which a purchase counts half (repurchase and recency).
    pub recommend_half_life_days: f32,
    /// EASE's regularisation.
    pub recommend_ease_lambda: f64,
    /// Products EASE keeps at most (the most bought; its matrix is dense: 4,000
    /// products take 64 MB).
    pub recommend_ease_max_items: usize,
    /// Orders two products must share before one is served as the other's complement.
    pub recommend_min_support: u32,
    /// Whether the sequential model (gSASRec-style, candle) is trained.
    pub recommend_sequential: bool,
    /// Passes over every customer's sequence the sequential model trains for at most.
    pub recommend_sequential_epochs: usize,
    /// Seconds after which the sequential model's training stops (at the end of the
    /// epoch that reaches them).
    pub recommend_sequential_max_secs: f64,
}

impl Default for RecommendSettings {
    fn default() -> Self {
        Self {
            recommend_interval_secs: 3_600,
            recommend_poll_secs: 30,
            recommend_half_life_days: 365.0,
            recommend_ease_lambda: 200.0,
            recommend_ease_max_items: 4_000,
            recommend_min_support: 2,
            recommend_sequential: true,
            recommend_sequential_epochs: 40,
            recommend_sequential_max_secs: 300.0,
        }
    }
}

impl RecommendSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !self.recommend_half_life_days.is_finite() || self.recommend_half_life_days <= 0.0 {
            return Err(ConfigError::Invalid(
                "TENDERO_RECOMMEND_HALF_LIFE_DAYS must be above 0".into(),
            ));
        }
        if !self.recommend_ease_lambda.is_finite() || self.recommend_ease_lambda <= 0.0 {
            return Err(ConfigError::Invalid(
                "TENDERO_RECOMMEND_EASE_LAMBDA must be above 0".into(),
            ));
        }
        if self.recommend_min_support == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_RECOMMEND_MIN_SUPPORT must be at least 1".into(),
            ));
        }
        if self.recommend_sequential
            && (self.recommend_sequential_epochs == 0
                || self.recommend_sequential_max_secs.is_nan()
                || self.recommend_sequential_max_secs <= 0.0)
        {
            return Err(ConfigError::Invalid(
                "TENDERO_RECOMMEND_SEQUENTIAL_EPOCHS and TENDERO_RECOMMEND_SEQUENTIAL_MAX_SECS must be above 0"
                    .into(),
            ));
        }
        Ok(())
    }
}
