//! The demo shop compiled into the binary (from `ingest/demo/`), so that a fresh
//! `tendero serve` has a catalog and shop documents to talk about.

use sea_orm::{EntityTrait, PaginatorTrait};

use crate::db::Db;
use crate::db::entities::producto;
use crate::retrieval::search::SearchIndex;

use super::ingest::{self, DocumentFile, Options, ProductFile};
use super::source::SourceFormat;
use crate::progress::NoProgress;

/// The demo catalog (CSV).
pub const PRODUCTS: &str = include_str!("../../demo/productos.csv");

/// The demo shop documents, by file name.
pub const DOCUMENTS: [(&str, &str); 6] = [
    ("envios.md", include_str!("../../demo/docs/envios.md")),
    (
        "devoluciones.md",
        include_str!("../../demo/docs/devoluciones.md"),
    ),
    ("garantias.md", include_str!("../../demo/docs/garantias.md")),
    (
        "medios-de-pago.md",
        include_str!("../../demo/docs/medios-de-pago.md"),
    ),
    (
        "horarios-y-contacto.md",
        include_str!("../../demo/docs/horarios-y-contacto.md"),
    ),
    (
        "preguntas-frecuentes.md",
        include_str!("../../demo/docs/preguntas-frecuentes.md"),
    ),
];

/// Loads the demo shop when the catalog has no product at all; `true` when it did.
pub(super) async fn load_if_empty(db: &Db, index: &SearchIndex) -> anyhow::Result<bool> {
    if producto::Entity::find().count(db.conn()).await? > 0 {
        return Ok(false);
    }
    let file = ProductFile {
        name: "demo/productos.csv",
        format: SourceFormat::Csv,
        text: PRODUCTS,
    };
    let products = ingest::products(db, index, file, Options::default(), &NoProgress).await?;
    anyhow::ensure!(
        products.rejected == 0,
        "the demo catalog has bad rows: {:?}",
        products.errors
    );
    let files = DOCUMENTS
        .iter()
        .map(|(ruta, text)| DocumentFile {
            ruta: (*ruta).to_owned(),
            text: (*text).to_owned(),
        })
        .collect();
    let documents = ingest::documents(db, index, files, Options::default(), &NoProgress).await?;
    tracing::info!(
        productos = products.inserted,
        documentos = documents.inserted,
        seconds = products.seconds + documents.seconds,
        "demo shop loaded (TENDERO_DEMO=false to start empty)"
    );
    Ok(true)
}
