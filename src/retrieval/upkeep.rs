//! The index's upkeep while the server runs: other processes' writes picked up,
//! changed products re-indexed, FAISS saved, LanceDB compacted.

use std::sync::Arc;
use std::time::Duration;

use super::live::Search;

/// Fragments from which the upkeep compacts without waiting for its 10-minute turn.
const COMPACT_FROM_FRAGMENTS: usize = 8;

/// Every `poll`: picks up index changes written by other processes, re-indexes the
/// products pending in [`Search::backlog`], and folds rows the full-text index does
/// not cover yet into it. Every 30 s saves FAISS when it changed. Compacts LanceDB
/// every 10 min, or as soon as writes have left [`COMPACT_FROM_FRAGMENTS`] fragments
/// (at most every 30 s): small writes leave small files and old versions, and each
/// fragment a search touches costs it a file read. Ends when the search is dropped.
pub fn spawn(search: &Arc<Search>, poll: Duration) {
    let weak = Arc::downgrade(search);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = tokio::time::Instant::now();
        // A catalog just ingested at start-up may be compacted at the first turn.
        let mut last_compaction = tokio::time::Instant::now()
            .checked_sub(Duration::from_secs(30))
            .unwrap_or_else(tokio::time::Instant::now);
        loop {
            ticker.tick().await;
            let Some(search) = weak.upgrade() else { return };
            let index = search.index();
            if let Err(err) = index.refresh().await {
                tracing::warn!(error = %format!("{err:#}"), "could not check the index for changes");
            }
            search.sync_backlog(poll).await;
            if last_save.elapsed() >= Duration::from_secs(30) {
                last_save = tokio::time::Instant::now();
                if let Err(err) = index.save().await {
                    tracing::warn!(error = %format!("{err:#}"), "could not save the FAISS index");
                }
            }
            // Rows written since the full-text index was built (a catalog's second
            // batch, a product saved, another node's ingest) are folded in at once: by
            // a compaction when one is allowed, else into the index alone.
            let store = index.store();
            let unindexed = store.unindexed_rows().await.is_ok_and(|n| n > 0);
            let since = last_compaction.elapsed();
            let compact_now = since >= Duration::from_secs(30)
                && (unindexed
                    || store
                        .fragments()
                        .await
                        .is_ok_and(|n| n >= COMPACT_FROM_FRAGMENTS));
            if compact_now || since >= Duration::from_secs(600) {
                last_compaction = tokio::time::Instant::now();
                if let Err(err) = store.compact().await {
                    tracing::warn!(error = %format!("{err:#}"), "could not compact LanceDB");
                }
            } else if unindexed && let Err(err) = store.refresh().await {
                tracing::warn!(error = %format!("{err:#}"), "could not update the full-text index");
            }
        }
    });
}
