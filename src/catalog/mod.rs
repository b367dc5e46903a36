//! The catalog's way in: product files and shop documents read ([`source`]),
//! loaded into the database and then into the search index ([`ingest`]), and the
//! demo shop ([`demo`]). `tendero ingest` and the server's start-up use it through
//! [`Catalog`].

pub mod demo;
pub mod ingest;
pub mod source;

use std::sync::Arc;

use crate::db::Db;
use crate::progress::Progress;
use crate::retrieval::search::SearchIndex;

use ingest::{DocumentFile, IngestError, Options, ProductFile, Summary};

/// Loads catalogs into the database and the index that serves them.
pub struct Catalog {
    db: Db,
    index: Arc<SearchIndex>,
}

impl Catalog {
    pub fn new(db: Db, index: Arc<SearchIndex>) -> Self {
        Self { db, index }
    }

    /// Ingests a product file (CSV, JSON or JSON Lines), incrementally.
    pub async fn products(
        &self,
        file: ProductFile<'_>,
        options: Options,
        progress: &dyn Progress,
    ) -> Result<Summary, IngestError> {
        ingest::products(&self.db, &self.index, file, options, progress).await
    }

    /// Ingests shop documents (Markdown or plain text), incrementally.
    pub async fn documents(
        &self,
        files: Vec<DocumentFile>,
        options: Options,
        progress: &dyn Progress,
    ) -> Result<Summary, IngestError> {
        ingest::documents(&self.db, &self.index, files, options, progress).await
    }

    /// Loads the demo shop when the catalog has no product at all; `true` when it did.
    pub async fn load_demo_if_empty(&self) -> anyhow::Result<bool> {
        demo::load_if_empty(&self.db, &self.index).await
    }
}
