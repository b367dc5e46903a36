//! The search the server runs: the index kept in step with the database, and
//! product hits checked against the database as it is now.
//!
//! The index holds a copy of each product's price, stock and state for filtering;
//! the database is the truth. Every product hit is read back from the database and
//! the filters are applied once more to those live values, so a product whose price
//! or stock changed a moment ago is never shown on the wrong side of a filter, and
//! what a caller shows (or an answer states) is the current price and stock.
//!
//! The index's copy catches up in two ways: a product written through the API is
//! re-indexed at once ([`Search::products_changed`]); products whose stock orders
//! changed are re-indexed together by the upkeep within one poll interval
//! ([`Search::stock_changed`]). A re-index that fails keeps its products pending:
//! the upkeep tries them again, waiting longer after each failure, until a sync
//! succeeds ([`Search::backlog`] counts them, for `/ready`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::time::Instant;

use crate::config::RetrievalSettings;
use crate::db::Db;
use crate::db::entities::producto;
use crate::progress::NoProgress;
use crate::text::fold;

use super::search::{Filters, Mode, SearchIndex, SearchOutcome};
use super::store::ChunkKind;
use super::sync;

/// Searches for catch-up retries at most when hits name rows the database lost.
const ATTEMPTS: usize = 3;
/// The longest wait between two attempts at a failing re-index.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// One product hit with the product as the database has it now.
#[derive(Debug, Clone)]
pub struct ProductHit {
    pub score: f32,
    pub producto: producto::Model,
}

/// Products whose copy in the index may be out of date.
#[derive(Debug, Default)]
struct Backlog {
    ids: HashSet<i64>,
    /// Failed syncs in a row, and when the next may run.
    failures: u32,
    retry_at: Option<Instant>,
}

/// What `/ready` reports of the index's catching up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogStatus {
    /// Products waiting to be re-indexed.
    pub pending: usize,
    /// Failed syncs in a row (0 when the last one succeeded).
    pub failures: u32,
}

/// The server's search: see the module docs.
pub struct Search {
    index: Arc<SearchIndex>,
    db: Db,
    max_query_chars: usize,
    backlog: Mutex<Backlog>,
}

impl Search {
    pub fn new(index: Arc<SearchIndex>, db: Db, settings: &RetrievalSettings) -> Self {
        Self {
            index,
            db,
            max_query_chars: settings.search_max_query_chars,
            backlog: Mutex::default(),
        }
    }

    pub fn index(&self) -> &Arc<SearchIndex> {
        &self.index
    }

    /// Longest query (or question) accepted, in characters.
    pub fn max_query_chars(&self) -> usize {
        self.max_query_chars
    }

    /// `query` with its misspelt words replaced by catalog words, or `None`.
    pub fn correct(&self, query: &str) -> Option<String> {
        self.index.correct(query)
    }

    /// `transcript` with its misheard words replaced by catalog words, or `None`.
    pub fn correct_spoken(&self, transcript: &str) -> Option<String> {
        self.index.correct_spoken(transcript)
    }

    /// The best `k` shop-document passages for `q`.
    pub async fn documents(&self, q: &str, k: usize) -> anyhow::Result<SearchOutcome> {
        let filters = Filters {
            kind: Some(ChunkKind::Documento),
            ..Filters::default()
        };
        self.index.search(q, Mode::Hybrid, &filters, k).await
    }

    /// The products matching `q` and `filters`, best first, read from the database.
    /// `filters.kind` should be products.
    pub async fn products(
        &self,
        q: &str,
        mode: Mode,
        filters: &Filters,
        k: usize,
    ) -> anyhow::Result<(SearchOutcome, Vec<ProductHit>)> {
        let index = &self.index;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let seen = index.reflected_version();
            let outcome = index.search(q, mode, filters, k).await?;
            let ids: Vec<i64> = outcome.hits.iter().map(|h| h.key).collect();
            let mut rows: HashMap<i64, producto::Model> = producto::Entity::find()
                .filter(producto::Column::Id.is_in(ids.iter().copied()))
                .all(self.db.conn())
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
            let stale = outcome
                .hits
                .iter()
                .any(|h| rows.get(&h.key).is_none_or(|p| p.eliminado_at.is_some()));
            // A hit the database no longer has means another process changed the
            // catalog and this node had not caught up: catch up now and ask again. The
            // index's own upkeep may have caught up meanwhile (this refresh then finds
            // nothing new): that is a reason to ask again too.
            if stale
                && attempts < ATTEMPTS
                && (index.refresh().await? || index.reflected_version() != seen)
            {
                continue;
            }
            let hits = outcome
                .hits
                .iter()
                .filter_map(|hit| {
                    let row = rows.remove(&hit.key)?;
                    still_matches(&row, filters).then_some(ProductHit {
                        score: hit.score,
                        producto: row,
                    })
                })
                .collect();
            return Ok((outcome, hits));
        }
    }

    /// Re-indexes these products after a change through the API. The database
    /// change already happened: when the index cannot take it now, the products stay
    /// pending and the upkeep retries them.
    pub async fn products_changed(&self, ids: &[i64]) {
        if let Err(err) = sync::sync_products(&self.db, &self.index, Some(ids), &NoProgress).await {
            tracing::error!(error = %format!("{err:#}"), ?ids, "re-indexing products failed: kept for the upkeep to retry");
            self.failed(ids.iter().copied());
        }
    }

    /// Notes products whose stock an order changed; the index's copy of their stock
    /// (used to prefilter `en_stock`) is refreshed within one poll interval, in one
    /// write for all of them. Answers read live stock from the database regardless.
    pub fn stock_changed(&self, ids: impl IntoIterator<Item = i64>) {
        self.backlog.lock().expect("backlog lock").ids.extend(ids);
    }

    /// How far the index is behind the database's products.
    pub fn backlog(&self) -> BacklogStatus {
        let backlog = self.backlog.lock().expect("backlog lock");
        BacklogStatus {
            pending: backlog.ids.len(),
            failures: backlog.failures,
        }
    }

    /// Re-indexes the pending products, unless the last failure asks to wait
    /// longer. The products are dropped from the backlog only when their sync
    /// succeeded (products noted meanwhile stay for the next turn).
    pub(super) async fn sync_backlog(&self, poll: Duration) {
        let ids: Vec<i64> = {
            let backlog = self.backlog.lock().expect("backlog lock");
            if backlog.retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            backlog.ids.iter().copied().collect()
        };
        if ids.is_empty() {
            return;
        }
        match sync::sync_products(&self.db, &self.index, Some(&ids), &NoProgress).await {
            Ok(_) => {
                let mut backlog = self.backlog.lock().expect("backlog lock");
                for id in &ids {
                    backlog.ids.remove(id);
                }
                if backlog.failures > 0 {
                    tracing::info!(
                        products = ids.len(),
                        "the index caught up after failed syncs"
                    );
                }
                backlog.failures = 0;
                backlog.retry_at = None;
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), products = ids.len(), "could not re-index changed products: retrying later");
                self.failed(std::iter::empty());
                let mut backlog = self.backlog.lock().expect("backlog lock");
                let wait = poll
                    .saturating_mul(1 << backlog.failures.min(16))
                    .min(MAX_RETRY_WAIT);
                backlog.retry_at = Some(Instant::now() + wait);
            }
        }
    }

    fn failed(&self, ids: impl IntoIterator<Item = i64>) {
        let mut backlog = self.backlog.lock().expect("backlog lock");
        backlog.ids.extend(ids);
        backlog.failures = backlog.failures.saturating_add(1);
    }
}

/// Whether the product, as the database has it now, passes the filters.
pub fn still_matches(p: &producto::Model, filters: &Filters) -> bool {
    p.activo
        && p.eliminado_at.is_none()
        && filters
            .categoria
            .as_deref()
            .is_none_or(|c| fold(c) == fold(&p.categoria))
        && filters
            .precio_min
            .is_none_or(|min| p.precio_centavos >= min)
        && filters
            .precio_max
            .is_none_or(|max| p.precio_centavos <= max)
        && (!filters.en_stock || p.stock > 0)
}
