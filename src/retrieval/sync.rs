//! Keeping the search index in step with the database, which is the source of truth.
//!
//! Syncing compares content hashes (see [`super::chunks`]), so an unchanged catalog
//! costs a read and nothing else; a changed text is re-embedded, a changed price or
//! stock only rewrites the chunk's metadata.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::Db;
use crate::db::entities::{documento, producto};
use crate::progress::{NoProgress, Progress};

use super::chunks::{document_chunks, product_chunk, text_half};
use super::search::SearchIndex;
use super::store::{Chunk, ChunkKind};

/// Texts embedded per call (and per progress step).
const EMBED_BATCH: usize = 256;

/// What a sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Chunks whose text was (re-)embedded.
    pub embedded: usize,
    /// Chunks whose metadata changed and kept their vector.
    pub restamped: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// Brings the index's products in line with the database: all of them, or only `ids`.
pub async fn sync_products(
    db: &Db,
    index: &SearchIndex,
    ids: Option<&[i64]>,
    progress: &dyn Progress,
) -> anyhow::Result<SyncReport> {
    let mut query = producto::Entity::find().filter(producto::Column::EliminadoAt.is_null());
    if let Some(ids) = ids {
        query = query.filter(producto::Column::Id.is_in(ids.iter().copied()));
    }
    let products = query.all(db.conn()).await?;
    let chunks: Vec<Chunk> = products.iter().map(product_chunk).collect();
    let indexed = index.hashes(ChunkKind::Producto, ids);
    reconcile(index, chunks, indexed, progress).await
}

/// Brings the index's document chunks in line with the database.
pub async fn sync_documents(
    db: &Db,
    index: &SearchIndex,
    progress: &dyn Progress,
) -> anyhow::Result<SyncReport> {
    let documents = documento::Entity::find().all(db.conn()).await?;
    let chunks: Vec<Chunk> = documents.iter().flat_map(document_chunks).collect();
    let indexed = index.hashes(ChunkKind::Documento, None);
    reconcile(index, chunks, indexed, progress).await
}

/// Products and documents.
pub async fn sync_all(db: &Db, index: &SearchIndex) -> anyhow::Result<SyncReport> {
    let products = sync_products(db, index, None, &NoProgress).await?;
    let documents = sync_documents(db, index, &NoProgress).await?;
    Ok(SyncReport {
        embedded: products.embedded + documents.embedded,
        restamped: products.restamped + documents.restamped,
        removed: products.removed + documents.removed,
        unchanged: products.unchanged + documents.unchanged,
    })
}

/// Writes what differs between `wanted` and the `indexed` hashes, embedding only the
/// chunks whose text changed. Nothing is written until every vector exists, so a
/// failure leaves the index as it was.
async fn reconcile(
    index: &SearchIndex,
    wanted: Vec<Chunk>,
    mut indexed: HashMap<i64, String>,
    progress: &dyn Progress,
) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport::default();
    // `pending` need a vector; `restamp` keep the one they have.
    let mut pending = Vec::new();
    let mut restamp = Vec::new();
    for chunk in wanted {
        match indexed.remove(&chunk.key) {
            Some(old) if old == chunk.content_hash => report.unchanged += 1,
            Some(old) if text_half(&old) == text_half(&chunk.content_hash) => restamp.push(chunk),
            _ => pending.push(chunk),
        }
    }
    let deletes: Vec<i64> = indexed.into_keys().collect();
    let mut upserts = Vec::with_capacity(restamp.len() + pending.len());
    if !restamp.is_empty() {
        let keys: Vec<i64> = restamp.iter().map(|c| c.key).collect();
        let mut vectors: HashMap<i64, Vec<f32>> = index
            .store()
            .get(&keys)
            .await?
            .into_iter()
            .map(|c| (c.key, c.vector))
            .collect();
        for mut chunk in restamp {
            match vectors.remove(&chunk.key) {
                Some(vector) => {
                    chunk.vector = vector;
                    upserts.push(chunk);
                }
                None => pending.push(chunk),
            }
        }
        report.restamped = upserts.len();
    }
    if !pending.is_empty() {
        progress.start("embeddings", pending.len() as u64);
        for batch in pending.chunks_mut(EMBED_BATCH) {
            let texts = batch.iter().map(|c| c.text.clone()).collect();
            for (chunk, vector) in batch.iter_mut().zip(index.embed(texts).await?) {
                chunk.vector = vector;
            }
            progress.advance(batch.len() as u64);
        }
        progress.finish();
        report.embedded = pending.len();
    }
    report.removed = deletes.len();
    upserts.extend(pending);
    index.apply(upserts, deletes).await?;
    Ok(report)
}
