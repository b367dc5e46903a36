//! Keeping the search index in step with the database, which is the source of truth.
//!
//! Each product is one chunk keyed by its id; each document is several chunks keyed by
//! negative numbers derived from the document id. A chunk's content hash has two
//! halves, the text's and the metadata's: a changed text is re-embedded, a changed
//! price or stock only rewrites the metadata and keeps the vector. Syncing compares
//! hashes, so an unchanged catalog costs a read and nothing else.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::Db;
use crate::db::entities::{documento, producto};
use crate::retrieval::hash::fnv1a;
use crate::retrieval::search::SearchIndex;
use crate::retrieval::store::{Chunk, ChunkKind};

use super::Progress;
use super::docs;

/// Chunks one document may have at most (keys are spaced by this).
pub const MAX_CHUNKS_PER_DOC: i64 = 100_000;
/// Texts embedded per call (and per progress step).
const EMBED_BATCH: usize = 256;

/// The search key of a document's `n`th chunk (negative: never a product id).
pub fn document_key(documento_id: i64, n: usize) -> i64 {
    -(documento_id * MAX_CHUNKS_PER_DOC + n as i64 + 1)
}

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

/// The text a product is searched and embedded by.
pub fn product_text(p: &producto::Model) -> String {
    let mut text = format!("{}\n{}", p.nombre, p.categoria);
    if let Some(d) = &p.descripcion {
        text.push('\n');
        text.push_str(d);
    }
    if let Some(attributes) = p.atributos.as_object() {
        for (name, value) in attributes {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            text.push_str(&format!("\n{name}: {value}"));
        }
    }
    text
}

fn hash_of(text: &str, meta: &str) -> String {
    format!(
        "{:016x}-{:016x}",
        fnv1a(text.as_bytes()),
        fnv1a(meta.as_bytes())
    )
}

fn text_half(hash: &str) -> &str {
    hash.split_once('-').map_or(hash, |(text, _)| text)
}

/// The chunk of a product (without its vector).
pub fn product_chunk(p: &producto::Model) -> Chunk {
    let text = product_text(p);
    let meta = format!(
        "{}|{}|{}|{}|{}",
        p.sku, p.categoria, p.precio_centavos, p.stock, p.activo
    );
    Chunk {
        key: p.id,
        kind: ChunkKind::Producto,
        sku: Some(p.sku.clone()),
        categoria: Some(p.categoria.clone()),
        precio_centavos: Some(p.precio_centavos),
        stock: Some(p.stock),
        activo: p.activo,
        title: p.nombre.clone(),
        content_hash: hash_of(&text, &meta),
        text,
        vector: Vec::new(),
    }
}

/// The chunks of a document (without vectors).
pub fn document_chunks(d: &documento::Model) -> Vec<Chunk> {
    docs::chunk(&d.titulo, &d.contenido)
        .into_iter()
        .take(MAX_CHUNKS_PER_DOC as usize)
        .enumerate()
        .map(|(n, piece)| {
            let title = if piece.heading.is_empty() {
                d.titulo.clone()
            } else {
                format!("{} — {}", d.titulo, piece.heading)
            };
            Chunk {
                key: document_key(d.id, n),
                kind: ChunkKind::Documento,
                sku: None,
                categoria: None,
                precio_centavos: None,
                stock: None,
                activo: true,
                content_hash: hash_of(&piece.text, &format!("{}|{}", d.ruta, title)),
                title,
                text: piece.text,
                vector: Vec::new(),
            }
        })
        .collect()
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
    let products = sync_products(db, index, None, &super::NoProgress).await?;
    let documents = sync_documents(db, index, &super::NoProgress).await?;
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
