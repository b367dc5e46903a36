//! Combining the vector and BM25 candidate lists into one ranking.
//!
//! Reciprocal-rank fusion ignores how far ahead a candidate is; on judged product
//! queries it loses to BM25 alone (see the README's quality table). The convex
//! combination of min-max-normalised scores keeps the margins: a strong lexical match
//! stays ahead of a vague semantic one, and a candidate found by both lists gains.

use std::collections::{HashMap, HashSet};

use super::faiss_index::VectorIndex;

/// How two ranked lists become one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// `sum 1 / (k + rank)` over the lists a candidate appears in.
    Rrf { k: f32 },
    /// `weight * bm25' + (1 - weight) * vector'`, each score min-max normalised over its
    /// own list; a candidate absent from a list gets 0 from it.
    Convex { bm25_weight: f32 },
    /// The same combination with each score divided by its list's best ("theoretical"
    /// min-max: BM25 and cosine both have 0 as their floor), so a list of near-equal
    /// scores stays near-equal instead of being stretched over 0..1. A candidate absent
    /// from a list gets 0 from it: below the last entry of a list is no better than no
    /// match (scoring it as the last instead was measured worse: README, Search).
    Theoretical { bm25_weight: f32 },
}

impl Fusion {
    /// What hybrid search uses unless told otherwise (measured: README).
    pub const DEFAULT: Fusion = Fusion::Convex { bm25_weight: 0.7 };

    /// Parses `rrf`, `rrf:60`, `convex`, `convex:0.7`, `tmm` or `tmm:0.7`.
    pub fn parse(value: &str) -> Option<Self> {
        let (name, param) = match value.split_once(':') {
            Some((name, param)) => (name, Some(param.parse::<f32>().ok()?)),
            None => (value, None),
        };
        match name {
            "rrf" => Some(Fusion::Rrf {
                k: param.unwrap_or(60.0),
            }),
            "convex" | "tmm" => {
                let bm25_weight = param.unwrap_or(0.7);
                (0.0..=1.0)
                    .contains(&bm25_weight)
                    .then_some(if name == "tmm" {
                        Fusion::Theoretical { bm25_weight }
                    } else {
                        Fusion::Convex { bm25_weight }
                    })
            }
            _ => None,
        }
    }

    /// The best `k` keys of the two lists (each sorted best first), best first.
    pub fn fuse(self, vector: &[(i64, f32)], bm25: &[(i64, f32)], k: usize) -> Vec<(i64, f32)> {
        let mut scores: HashMap<i64, f32> = HashMap::with_capacity(vector.len() + bm25.len());
        match self {
            Fusion::Rrf { k: rrf_k } => {
                for list in [vector, bm25] {
                    for (rank, (key, _)) in list.iter().enumerate() {
                        *scores.entry(*key).or_default() += 1.0 / (rrf_k + rank as f32 + 1.0);
                    }
                }
            }
            Fusion::Convex { bm25_weight } | Fusion::Theoretical { bm25_weight } => {
                for (list, weight) in [(vector, 1.0 - bm25_weight), (bm25, bm25_weight)] {
                    let (min, max) = list.iter().fold((f32::MAX, f32::MIN), |(lo, hi), h| {
                        (lo.min(h.1), hi.max(h.1))
                    });
                    // Min-max scales from the list's lowest score, best-score from 0.
                    let floor = match self {
                        Fusion::Theoretical { .. } => 0.0,
                        _ => min,
                    };
                    let span = max - floor;
                    for (key, score) in list {
                        let normalised = if span > f32::EPSILON {
                            (score.max(floor) - floor) / span
                        } else {
                            1.0
                        };
                        *scores.entry(*key).or_default() += weight * normalised;
                    }
                }
            }
        }
        let mut fused: Vec<(i64, f32)> = scores.into_iter().collect();
        // Ties go to the smaller key, so equal inputs always give the same order.
        fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        fused.truncate(k);
        fused
    }
}

/// The vector candidates plus the BM25 candidates they miss, each scored by its own
/// similarity to `query` (read back from `vectors`): a lexical match then gains or
/// loses by how close it is in meaning, instead of counting as the least similar
/// product of all. Measured on judged queries: README, Search.
pub fn with_similarities(
    vectors: &VectorIndex,
    query: &[f32],
    mut vector_hits: Vec<(i64, f32)>,
    bm25_hits: &[(i64, f32)],
) -> anyhow::Result<Vec<(i64, f32)>> {
    let seen: HashSet<i64> = vector_hits.iter().map(|h| h.0).collect();
    let missing: Vec<i64> = bm25_hits
        .iter()
        .map(|h| h.0)
        .filter(|key| !seen.contains(key))
        .collect();
    let scores = vectors.scores(query, &missing)?;
    vector_hits.extend(
        missing
            .into_iter()
            .zip(scores)
            .filter_map(|(key, score)| score.map(|s| (key, s))),
    );
    Ok(vector_hits)
}

#[cfg(test)]
mod tests {
    use super::Fusion;

    #[test]
    fn rrf_rewards_agreement() {
        let vector = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let bm25 = [(3, 12.0), (4, 11.0), (1, 2.0)];
        let fused = Fusion::Rrf { k: 60.0 }.fuse(&vector, &bm25, 10);
        let keys: Vec<i64> = fused.iter().map(|h| h.0).collect();
        assert_eq!(keys, [1, 3, 2, 4]);
    }

    #[test]
    fn convex_keeps_score_margins() {
        // BM25 is sure about 7 and barely likes 8; the vector list slightly prefers 8.
        let vector = [(8, 0.62), (7, 0.60), (9, 0.20)];
        let bm25 = [(7, 30.0), (8, 3.0), (10, 2.9)];
        let fused = Fusion::Convex { bm25_weight: 0.5 }.fuse(&vector, &bm25, 2);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), [7, 8]);
        assert!(fused[0].1 > fused[1].1);
    }

    #[test]
    fn theoretical_keeps_near_equal_scores_near_equal() {
        // Both BM25 hits match the query about as well; the vector list clearly prefers 2.
        // Min-max stretches 10.0 vs 9.8 into 1 vs 0 and lets BM25 decide; dividing by
        // the best keeps them at 1 vs 0.98 and lets the meaning decide.
        let vector = [(2, 0.80), (1, 0.40)];
        let bm25 = [(1, 10.0), (2, 9.8)];
        let order = |fusion: Fusion| -> Vec<i64> {
            fusion.fuse(&vector, &bm25, 2).iter().map(|h| h.0).collect()
        };
        assert_eq!(order(Fusion::Convex { bm25_weight: 0.7 }), [1, 2]);
        assert_eq!(order(Fusion::Theoretical { bm25_weight: 0.7 }), [2, 1]);
    }

    #[test]
    fn theoretical_gives_an_absent_candidate_nothing_from_that_list() {
        // 3 was not among BM25's hits: only its similarity counts (0.5 * 0.9 / 0.9).
        let vector = [(3, 0.9), (1, 0.5), (2, 0.36)];
        let bm25 = [(1, 8.0), (2, 4.0)];
        let fused = Fusion::Theoretical { bm25_weight: 0.5 }.fuse(&vector, &bm25, 3);
        let score = |key: i64| fused.iter().find(|h| h.0 == key).unwrap().1;
        assert!((score(3) - 0.5).abs() < 1e-6, "{fused:?}");
        assert!(
            (score(1) - (0.5 * 0.5 / 0.9 + 0.5)).abs() < 1e-6,
            "{fused:?}"
        );
        assert!(
            (score(2) - (0.5 * 0.4 + 0.5 * 0.5)).abs() < 1e-6,
            "{fused:?}"
        );
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3, 2]);
    }

    #[test]
    fn one_empty_list_ranks_by_the_other() {
        let bm25 = [(5, 3.0), (6, 2.0), (4, 1.0)];
        let theoretical = Fusion::Theoretical { bm25_weight: 0.7 };
        for fusion in [Fusion::DEFAULT, Fusion::Rrf { k: 60.0 }, theoretical] {
            let fused = fusion.fuse(&[], &bm25, 2);
            assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), [5, 6]);
        }
    }

    #[test]
    fn bm25_only_candidates_get_their_own_similarity() {
        use super::super::faiss_index::{IndexKind, VectorIndex};
        let vectors = VectorIndex::new(IndexKind::Flat, 2).unwrap();
        vectors
            .upsert(&[1, 2, 3], &[1.0, 0.0, 0.6, 0.8, 0.0, 1.0])
            .unwrap();
        let query = [1.0, 0.0];
        // The vector search found 1; BM25 found 2, 3 and a key FAISS does not hold.
        let filled = super::with_similarities(
            &vectors,
            &query,
            vec![(1, 1.0)],
            &[(2, 9.0), (3, 8.0), (7, 1.0)],
        )
        .unwrap();
        assert_eq!(filled.len(), 3, "{filled:?}");
        assert_eq!(filled[0], (1, 1.0));
        assert_eq!(filled[1].0, 2);
        assert!((filled[1].1 - 0.6).abs() < 1e-6);
        assert_eq!(filled[2].0, 3);
        assert!(filled[2].1.abs() < 1e-6);
    }

    #[test]
    fn parses_names_and_parameters() {
        assert_eq!(Fusion::parse("rrf"), Some(Fusion::Rrf { k: 60.0 }));
        assert_eq!(
            Fusion::parse("convex:0.3"),
            Some(Fusion::Convex { bm25_weight: 0.3 })
        );
        assert_eq!(Fusion::parse("convex:2"), None);
        assert_eq!(
            Fusion::parse("tmm"),
            Some(Fusion::Theoretical { bm25_weight: 0.7 })
        );
        assert_eq!(Fusion::parse("tmm:-0.1"), None);
        assert_eq!(Fusion::parse("best"), None);
    }
}
