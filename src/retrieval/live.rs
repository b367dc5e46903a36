//! Searches whose product hits are checked against the database as it is now.
//!
//! The index holds a copy of each product's price, stock and state for filtering;
//! the database is the truth. Every product hit is read back from the database and
//! the filters are applied once more to those live values, so a product whose price
//! or stock changed a moment ago is never shown on the wrong side of a filter, and
//! what a caller shows (or an answer states) is the current price and stock.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::Db;
use crate::db::entities::producto;
use crate::retrieval::search::{Filters, Mode, Outcome, SearchIndex};
use crate::retrieval::text::fold;

/// Searches for catch-up retries at most when hits name rows the database lost.
const ATTEMPTS: usize = 3;

/// One product hit with the product as the database has it now.
#[derive(Debug, Clone)]
pub struct ProductHit {
    pub score: f32,
    pub producto: producto::Model,
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

/// The products matching `q` and `filters`, best first, read from the database.
/// `filters.kind` should be products.
pub async fn products(
    index: &SearchIndex,
    db: &Db,
    q: &str,
    mode: Mode,
    filters: &Filters,
    k: usize,
) -> anyhow::Result<(Outcome, Vec<ProductHit>)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let seen = index.reflected_version();
        let outcome = index.search(q, mode, filters, k).await?;
        let ids: Vec<i64> = outcome.hits.iter().map(|h| h.key).collect();
        let mut rows: HashMap<i64, producto::Model> = producto::Entity::find()
            .filter(producto::Column::Id.is_in(ids.iter().copied()))
            .all(db.conn())
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
