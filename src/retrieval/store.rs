//! The LanceDB table of chunks: products and shop-document pieces with their text,
//! vector and filterable metadata, and a BM25 full-text index whose analyzer fits the
//! shop's language (Spanish by default: stemming, stop words, accent folding).
//!
//! LanceDB is an index derived from the database, never the source of truth: every
//! row can be rebuilt from SeaORM tables. Rows added after the full-text index was
//! built are still searched (unindexed rows are scanned) until [`ChunkStore::refresh`]
//! folds them in.
//!
//! Full-text searches run on a pinned snapshot of the table ([`snapshot`]) and ask
//! LanceDB for row addresses only.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use futures::TryStreamExt;
use lancedb::arrow::arrow_array::cast::AsArray;
use lancedb::arrow::arrow_array::types::{Float32Type, Int64Type, UInt64Type};
use lancedb::arrow::arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use lancedb::arrow::arrow_schema::DataType;
use lancedb::index::Index;
use lancedb::index::scalar::{FtsIndexBuilder, FullTextSearchQuery};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::{OptimizeAction, OptimizeOptions};
use lancedb::{Connection, Table};

use arrow::{column, read_chunks, schema, to_batch};
use snapshot::{Pinned, Pins};

mod arrow;
mod snapshot;

const FTS_INDEX: &str = "text_idx";

/// What a chunk is a piece of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    Producto,
    Documento,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Producto => "producto",
            ChunkKind::Documento => "documento",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "producto" => Some(ChunkKind::Producto),
            "documento" => Some(ChunkKind::Documento),
            _ => None,
        }
    }
}

/// One searchable row.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Stable key chosen by the ingester (unique across kinds).
    pub key: i64,
    pub kind: ChunkKind,
    pub sku: Option<String>,
    pub categoria: Option<String>,
    pub precio_centavos: Option<i64>,
    pub stock: Option<i64>,
    pub activo: bool,
    /// Written, never read back by [`ChunkStore::scan`] (the database holds it).
    pub title: String,
    /// The text searched by BM25 and embedded into `vector`; read back only for the
    /// index's lexicon (see [`Read`]).
    pub text: String,
    /// Hash of everything the chunk was built from, for incremental ingestion.
    pub content_hash: String,
    pub vector: Vec<f32>,
}

/// Which columns [`ChunkStore::scan`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Key, metadata and content hash: what filters and syncs compare.
    Metadata,
    /// Also the text: what the lexicon of query corrections counts.
    WithText,
    /// Also the text and the vector: what FAISS is built from. (The title is never
    /// read back: the database holds it.)
    WithVectors,
}

/// The chunk table in a LanceDB database (a local folder or an object-store URI).
#[derive(Clone)]
pub struct ChunkStore {
    db: Connection,
    table: Table,
    dim: usize,
    language: String,
    /// The snapshot full-text searches run on (shared by clones of the store).
    pins: Arc<Pins>,
}

impl ChunkStore {
    /// Opens (creating when missing) the table `name` at `uri`. `language` is the
    /// full-text analyzer's language as LanceDB names it (`Spanish`, `English`, …).
    pub async fn open(uri: &str, name: &str, dim: usize, language: &str) -> anyhow::Result<Self> {
        let db: Connection = lancedb::connect(uri)
            .execute()
            .await
            .with_context(|| format!("opening LanceDB at {uri} (TENDERO_LANCEDB_URI)"))?;
        let table = match db.open_table(name).execute().await {
            Ok(table) => table,
            Err(lancedb::Error::TableNotFound { .. }) => db
                .create_empty_table(name, schema(dim))
                .execute()
                .await
                .with_context(|| format!("creating the LanceDB table {name}"))?,
            Err(err) => {
                return Err(err).with_context(|| format!("opening the LanceDB table {name}"));
            }
        };
        let stored = table.schema().await?;
        let stored_dim = match stored
            .field_with_name("vector")
            .map(|f| f.data_type().clone())
        {
            Ok(DataType::FixedSizeList(_, n)) => n as usize,
            _ => anyhow::bail!("the LanceDB table {name} has no vector column"),
        };
        anyhow::ensure!(
            stored_dim == dim,
            "the LanceDB table {name} holds vectors of dimension {stored_dim}, not {dim}"
        );
        Ok(Self {
            db,
            table,
            dim,
            language: language.to_owned(),
            pins: Arc::default(),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The full-text analyzer's language.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The table version: it changes with every write.
    pub async fn version(&self) -> anyhow::Result<u64> {
        Ok(self.table.version().await?)
    }

    /// Moves to the newest version, including writes made by other processes.
    pub async fn checkout_latest(&self) -> anyhow::Result<()> {
        Ok(self.table.checkout_latest().await?)
    }

    pub async fn count(&self) -> anyhow::Result<usize> {
        Ok(self.table.count_rows(None).await?)
    }

    /// Inserts chunks, replacing those with the same key.
    pub async fn upsert(&self, chunks: &[Chunk]) -> anyhow::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let batch = to_batch(chunks, self.dim)?;
        let reader: Box<dyn RecordBatchReader + Send> =
            Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema(self.dim)));
        let mut merge = self.table.merge_insert(&["key"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all();
        merge
            .execute(reader)
            .await
            .context("writing chunks to LanceDB")?;
        self.ensure_fts_index().await
    }

    /// Appends chunks to the table; the caller guarantees their keys are new (a fresh
    /// table), which skips the key join of [`ChunkStore::upsert`].
    pub async fn append(&self, chunks: &[Chunk]) -> anyhow::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let batch = to_batch(chunks, self.dim)?;
        let reader: Box<dyn RecordBatchReader + Send> =
            Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema(self.dim)));
        self.table
            .add(reader)
            .execute()
            .await
            .context("appending chunks to LanceDB")?;
        self.ensure_fts_index().await
    }

    /// Removes the chunks with these keys.
    pub async fn delete(&self, keys: &[i64]) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        for group in keys.chunks(KEYS_PER_FILTER) {
            self.table
                .delete(&keys_filter(group))
                .await
                .context("deleting chunks from LanceDB")?;
        }
        Ok(())
    }

    async fn ensure_fts_index(&self) -> anyhow::Result<()> {
        let exists = self
            .table
            .list_indices()
            .await?
            .iter()
            .any(|index| index.name == FTS_INDEX);
        if exists {
            return Ok(());
        }
        let params = FtsIndexBuilder::default()
            .language(&self.language)
            .with_context(|| {
                format!(
                    "{} is not a full-text language LanceDB knows",
                    self.language
                )
            })?
            .stem(true)
            .remove_stop_words(true)
            .ascii_folding(true)
            .lower_case(true);
        self.table
            .create_index(&["text"], Index::FTS(params))
            .name(FTS_INDEX.to_owned())
            .execute()
            .await
            .context("building the full-text index")?;
        Ok(())
    }

    /// Rows the full-text index does not cover yet (written since it was built or last
    /// refreshed). A search scans and analyses each of them, which costs every BM25 query
    /// milliseconds even for a few dozen rows.
    pub async fn unindexed_rows(&self) -> anyhow::Result<usize> {
        let stats = self
            .table
            .index_stats(FTS_INDEX)
            .await
            .context("reading the full-text index statistics")?;
        Ok(stats.map_or(0, |s| s.num_unindexed_rows))
    }

    /// Folds rows written since the last refresh into the full-text index.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        self.table
            .optimize(OptimizeAction::Index(OptimizeOptions::default()))
            .await
            .context("refreshing LanceDB indexes")?;
        Ok(())
    }

    /// Compacts small files, prunes old versions and folds new rows into the indexes.
    pub async fn compact(&self) -> anyhow::Result<()> {
        self.table
            .optimize(OptimizeAction::All)
            .await
            .context("compacting LanceDB")?;
        Ok(())
    }

    /// Data fragments in the table. Every write adds one, and a search opens each
    /// fragment its hits fall in to read their keys: many fragments slow every search.
    pub async fn fragments(&self) -> anyhow::Result<usize> {
        let stats = self
            .table
            .stats()
            .await
            .context("reading LanceDB statistics")?;
        Ok(stats.fragment_stats.num_fragments)
    }

    /// Content hash of every chunk, by key.
    pub async fn hashes(&self) -> anyhow::Result<HashMap<i64, String>> {
        let mut stream = self
            .table
            .query()
            .select(Select::columns(&["key", "content_hash"]))
            .execute()
            .await?;
        let mut hashes = HashMap::new();
        while let Some(batch) = stream.try_next().await? {
            let keys = column(&batch, "key")?.as_primitive::<Int64Type>();
            let values = column(&batch, "content_hash")?.as_string::<i32>();
            for row in 0..batch.num_rows() {
                hashes.insert(keys.value(row), values.value(row).to_owned());
            }
        }
        Ok(hashes)
    }

    /// Every chunk matching the SQL `filter` (all when `None`), with the columns `read`
    /// asks for; the others are left empty.
    pub async fn scan(&self, filter: Option<&str>, read: Read) -> anyhow::Result<Vec<Chunk>> {
        let mut columns = vec![
            "key",
            "kind",
            "sku",
            "categoria",
            "precio_centavos",
            "stock",
            "activo",
            "content_hash",
        ];
        if read != Read::Metadata {
            columns.push("text");
        }
        if read == Read::WithVectors {
            columns.push("vector");
        }
        let mut query = self.table.query().select(Select::columns(&columns));
        if let Some(filter) = filter {
            query = query.only_if(filter);
        }
        let mut stream = query.execute().await?;
        let mut chunks = Vec::new();
        while let Some(batch) = stream.try_next().await? {
            read_chunks(&batch, self.dim, &mut chunks)?;
        }
        Ok(chunks)
    }

    /// The chunks with these keys, vectors included.
    pub async fn get(&self, keys: &[i64]) -> anyhow::Result<Vec<Chunk>> {
        let mut chunks = Vec::with_capacity(keys.len());
        for group in keys.chunks(KEYS_PER_FILTER) {
            chunks.extend(
                self.scan(Some(&keys_filter(group)), Read::WithVectors)
                    .await?,
            );
        }
        Ok(chunks)
    }

    /// The `k` chunks nearest to `vector` (cosine) among those matching the SQL
    /// `filter`, by exhaustive scan: for filters too selective for FAISS over-fetch.
    pub async fn nearest(
        &self,
        vector: &[f32],
        k: usize,
        filter: &str,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let batches: Vec<RecordBatch> = self
            .table
            .query()
            .nearest_to(vector)?
            .distance_type(lancedb::DistanceType::Cosine)
            .only_if(filter)
            .select(Select::columns(&["key", "_distance"]))
            .limit(k)
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut hits = Vec::with_capacity(k);
        for batch in &batches {
            let keys = column(batch, "key")?.as_primitive::<Int64Type>();
            let distances = column(batch, "_distance")?.as_primitive::<Float32Type>();
            for row in 0..batch.num_rows() {
                hits.push((keys.value(row), 1.0 - distances.value(row)));
            }
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(hits)
    }

    /// The best `k` chunks by BM25 for `query`, among those matching the SQL `filter`
    /// (applied before ranking, so `k` results come back when `k` exist).
    pub async fn full_text(
        &self,
        query: &str,
        k: usize,
        filter: Option<&str>,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        if query.trim().is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let pinned = self.pinned().await?;
        let search = FullTextSearchQuery::new(query.to_owned()).with_column("text".to_owned())?;
        let mut request = pinned
            .table
            .query()
            .full_text_search(search)
            .select(Select::columns(&["_score"]))
            .with_row_id()
            .limit(k);
        if let Some(filter) = filter {
            request = request.only_if(filter);
        }
        let batches: Vec<RecordBatch> = request.execute().await?.try_collect().await?;
        let mut hits = Vec::with_capacity(k);
        for batch in &batches {
            let rows = column(batch, "_rowid")?.as_primitive::<UInt64Type>();
            let scores = column(batch, "_score")?.as_primitive::<Float32Type>();
            for row in 0..batch.num_rows() {
                match pinned.keys.get(&rows.value(row)) {
                    Some(&key) => hits.push((key, scores.value(row))),
                    // Both come from the same version: this would be a LanceDB fault.
                    None => tracing::warn!(
                        row = rows.value(row),
                        version = pinned.version,
                        "full-text hit at a row address the table does not have"
                    ),
                }
            }
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(hits)
    }

    /// The snapshot at the table's current version.
    async fn pinned(&self) -> anyhow::Result<Arc<Pinned>> {
        self.pins
            .at(&self.db, self.table.name(), self.version().await?)
            .await
    }
}

/// Keys per `key IN (…)` filter, to keep each statement small.
const KEYS_PER_FILTER: usize = 1000;

fn keys_filter(keys: &[i64]) -> String {
    let list: Vec<String> = keys.iter().map(i64::to_string).collect();
    format!("key IN ({})", list.join(","))
}
