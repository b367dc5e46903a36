//! Loading a product file or a folder of documents into the database, then bringing
//! the search index in line.
//!
//! The database changes of one ingest are one transaction: a failure leaves the
//! previous catalog, and the index keeps serving it. The index is then reconciled with
//! the whole database by content hash, so an ingest that failed after its commit is
//! completed by the next one, and a second run of the same file changes nothing.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};

use crate::db::Db;
use crate::db::entities::{documento, producto};
use crate::retrieval::search::SearchIndex;

use super::source::{self, ProductRow, RowError, SourceFormat};
use crate::progress::Progress;
use crate::retrieval::passages;
use crate::retrieval::sync::{self, SyncReport};

/// Rows inserted per statement.
const INSERT_BATCH: usize = 500;

/// How an ingest treats bad rows and missing ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Stop at the first bad row (nothing is written).
    pub strict: bool,
    /// Remove what the source no longer has (products are marked deleted and
    /// inactive, so orders keep their history).
    pub prune: bool,
}

/// What an ingest did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub rejected: usize,
    /// Refused rows, in file order.
    pub errors: Vec<RowError>,
    pub index: SyncReport,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// Why an ingest wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("fila rechazada (--strict): {0}")]
    Strict(RowError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for IngestError {
    fn from(err: sea_orm::DbErr) -> Self {
        IngestError::Other(err.into())
    }
}

/// A product file held in memory.
#[derive(Debug, Clone, Copy)]
pub struct ProductFile<'a> {
    /// What error reports call the file.
    pub name: &'a str,
    pub format: SourceFormat,
    pub text: &'a str,
}

/// Ingests a product file.
pub(super) async fn products(
    db: &Db,
    index: &SearchIndex,
    file: ProductFile<'_>,
    options: Options,
    progress: &dyn Progress,
) -> Result<Summary, IngestError> {
    let started = Instant::now();
    let parsed = source::parse(file.name, file.format, file.text);
    let file = file.name;
    let mut errors = parsed.errors;
    let mut rows = Vec::with_capacity(parsed.rows.len());
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for row in parsed.rows {
        if let Some(line) = first_line.get(&row.sku) {
            errors.push(RowError {
                file: file.to_owned(),
                line: row.line,
                column: "sku".to_owned(),
                reason: format!("el SKU {} ya apareció en la línea {line}", row.sku),
            });
            continue;
        }
        first_line.insert(row.sku.clone(), row.line);
        rows.push(row);
    }
    errors.sort_by_key(|e| e.line);
    if options.strict
        && let Some(first) = errors.first()
    {
        return Err(IngestError::Strict(first.clone()));
    }
    let total_rows = rows.len() + errors.len();
    let in_source: HashSet<String> = rows.iter().map(|r| r.sku.clone()).collect();
    let mut summary = write_products(db, rows, progress).await?;
    summary.rejected = errors.len();
    summary.errors = errors;
    // New and changed products reach the index before pruned ones leave the database,
    // so a search in between finds the old catalog or the new one, never neither.
    summary.index = sync::sync_products(db, index, None, progress).await?;
    if options.prune {
        summary.removed = prune_products(db, index, &in_source).await?;
        summary.index.removed += summary.removed;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.rows_per_second = total_rows as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

fn differs(current: &producto::Model, row: &ProductRow) -> bool {
    current.nombre != row.nombre
        || current.descripcion != row.descripcion
        || current.categoria != row.categoria
        || current.precio_centavos != row.precio_centavos
        || current.stock != row.stock
        || current.atributos != row.atributos
        || current.activo != row.activo
        || current.eliminado_at.is_some()
}

async fn write_products(
    db: &Db,
    rows: Vec<ProductRow>,
    progress: &dyn Progress,
) -> Result<Summary, IngestError> {
    let mut summary = Summary::default();
    let txn = db.begin_write().await?;
    let existing: HashMap<String, producto::Model> = producto::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|p| (p.sku.clone(), p))
        .collect();
    let now = Utc::now();
    let mut inserts = Vec::new();
    progress.start("productos", rows.len() as u64);
    for row in rows {
        match existing.get(&row.sku) {
            None => inserts.push(producto::ActiveModel {
                sku: Set(row.sku),
                nombre: Set(row.nombre),
                descripcion: Set(row.descripcion),
                categoria: Set(row.categoria),
                precio_centavos: Set(row.precio_centavos),
                stock: Set(row.stock),
                atributos: Set(row.atributos),
                activo: Set(row.activo),
                eliminado_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }),
            Some(current) if differs(current, &row) => {
                let mut model = current.clone().into_active_model();
                model.nombre = Set(row.nombre);
                model.descripcion = Set(row.descripcion);
                model.categoria = Set(row.categoria);
                model.precio_centavos = Set(row.precio_centavos);
                model.stock = Set(row.stock);
                model.atributos = Set(row.atributos);
                model.activo = Set(row.activo);
                model.eliminado_at = Set(None);
                model.updated_at = Set(now);
                model.update(&*txn).await?;
                summary.updated += 1;
                progress.advance(1);
            }
            Some(_) => {
                summary.unchanged += 1;
                progress.advance(1);
            }
        }
    }
    summary.inserted = inserts.len();
    for batch in inserts.chunks(INSERT_BATCH) {
        producto::Entity::insert_many(batch.to_vec())
            .exec(&*txn)
            .await?;
        progress.advance(batch.len() as u64);
    }
    progress.finish();
    txn.commit().await?;
    Ok(summary)
}

/// Marks deleted (and inactive) the products whose SKU the source no longer has. They
/// leave the index first: a search in between sees the new catalog, not a gap.
async fn prune_products(
    db: &Db,
    index: &SearchIndex,
    in_source: &HashSet<String>,
) -> Result<usize, IngestError> {
    let gone: Vec<i64> = producto::Entity::find()
        .filter(producto::Column::EliminadoAt.is_null())
        .all(db.conn())
        .await?
        .into_iter()
        .filter(|p| !in_source.contains(&p.sku))
        .map(|p| p.id)
        .collect();
    index.apply(Vec::new(), gone.clone()).await?;
    let txn = db.begin_write().await?;
    let now = Utc::now();
    for group in gone.chunks(INSERT_BATCH) {
        producto::Entity::update_many()
            .col_expr(producto::Column::Activo, Expr::value(false))
            .col_expr(producto::Column::EliminadoAt, Expr::value(Some(now)))
            .col_expr(producto::Column::UpdatedAt, Expr::value(now))
            .filter(producto::Column::Id.is_in(group.iter().copied()))
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;
    Ok(gone.len())
}

/// One document to ingest: its path relative to the folder, and its text.
#[derive(Debug, Clone)]
pub struct DocumentFile {
    pub ruta: String,
    pub text: String,
}

/// Ingests shop documents (Markdown or plain text).
pub(super) async fn documents(
    db: &Db,
    index: &SearchIndex,
    files: Vec<DocumentFile>,
    options: Options,
    progress: &dyn Progress,
) -> Result<Summary, IngestError> {
    let started = Instant::now();
    let total = files.len();
    let mut summary = Summary::default();
    let txn = db.begin_write().await?;
    let existing: HashMap<String, documento::Model> = documento::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|d| (d.ruta.clone(), d))
        .collect();
    let now = Utc::now();
    let in_source: HashSet<String> = files.iter().map(|f| f.ruta.clone()).collect();
    for file in files {
        let stem = file
            .ruta
            .rsplit('/')
            .next()
            .unwrap_or(&file.ruta)
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let titulo = passages::title(&file.text, &stem);
        let hash = format!(
            "{:016x}",
            crate::retrieval::hash::fnv1a(file.text.as_bytes())
        );
        match existing.get(&file.ruta) {
            Some(current) if current.content_hash == hash && current.titulo == titulo => {
                summary.unchanged += 1;
            }
            Some(current) => {
                let mut model = current.clone().into_active_model();
                model.titulo = Set(titulo);
                model.contenido = Set(file.text);
                model.content_hash = Set(hash);
                model.updated_at = Set(now);
                model.update(&*txn).await?;
                summary.updated += 1;
            }
            None => {
                documento::ActiveModel {
                    ruta: Set(file.ruta),
                    titulo: Set(titulo),
                    contenido: Set(file.text),
                    content_hash: Set(hash),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&*txn)
                .await?;
                summary.inserted += 1;
            }
        }
    }
    if options.prune {
        let gone: Vec<i64> = existing
            .values()
            .filter(|d| !in_source.contains(&d.ruta))
            .map(|d| d.id)
            .collect();
        if !gone.is_empty() {
            documento::Entity::delete_many()
                .filter(documento::Column::Id.is_in(gone.iter().copied()))
                .exec(&*txn)
                .await?;
        }
        summary.removed = gone.len();
    }
    txn.commit().await?;
    summary.index = sync::sync_documents(db, index, progress).await?;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.rows_per_second = total as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}
