//! A term learned outside retrieval (from what customers clicked) that a hybrid
//! search adds to its fused scores.
//!
//! Retrieval only asks for it: [`LearnedTerm`] is implemented by the click learner
//! (`crate::learning::clicks`), which depends on retrieval, never the other way.

use std::collections::HashMap;
use std::sync::Arc;

/// Amounts to add to candidates' fused scores, by chunk key.
pub type Adjustments = Arc<HashMap<i64, f32>>;

/// What a search adds to its candidates' fused scores for a query.
pub trait LearnedTerm: Send + Sync {
    /// The amounts for `query` (as [`query_key`] writes it), given its vector when the
    /// search has one; `None` when nothing was learned for it or for queries like it.
    fn adjustments(&self, query: &str, vector: Option<&[f32]>) -> Option<Adjustments>;
}

/// A query as learning and search both name it: its folded words, one space apart
/// ("Taladro  inalámbrico!" and "taladro inalambrico" are one query).
pub fn query_key(query: &str) -> String {
    crate::text::words(query).join(" ")
}

/// Adds `adjustments` to `fused` (scores, best first) and orders it again, best
/// first, ties to the smaller key.
pub fn apply(fused: &mut [(i64, f32)], adjustments: &HashMap<i64, f32>) {
    for (key, score) in fused.iter_mut() {
        if let Some(amount) = adjustments.get(key) {
            *score += amount;
        }
    }
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_however_it_is_written() {
        assert_eq!(query_key("  Taladro   Inalámbrico!"), "taladro inalambrico");
        assert_eq!(query_key("¿?"), "");
    }

    #[test]
    fn adjustments_reorder_the_fused_list() {
        let mut fused = vec![(1, 0.9), (2, 0.8), (3, 0.5)];
        apply(&mut fused, &HashMap::from([(3, 0.5), (1, -0.2)]));
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), [3, 2, 1]);
    }
}
