//! Reports: customers, products, orders and the event log as CSV, JSON or JSON
//! Lines, streamed in constant memory.
//!
//! An export reads keyset pages (see [`rows`]), encodes them into chunks of about
//! 64 KiB and hands each chunk to a [`Sink`]: the HTTP response (through a bounded
//! channel, so a slow client slows the export down and a client that disconnects
//! stops it), a saved file under `exports/` (written under a temporary name and
//! renamed when complete, so there is never half a file), or both.
//!
//! [`Reports`] owns the database handle and the export settings (the folder of
//! saved reports, the row cap).

mod encode;
pub mod files;
pub mod rows;

use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use utoipa::IntoParams;

pub use encode::{ExportFormat, iso8601};
pub use rows::{Report, ReportFilters};

use crate::config::ExportSettings;
use crate::db::Db;
use crate::error::{Code, Coded, FieldError, INTERNAL_MESSAGE};
use crate::learning::events::TYPES as EVENT_TYPES;
use crate::shop::pedidos::{Estado, parse_range};
use encode::Encoder;
use files::{PendingFile, SavedFile};

/// Why a report was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error(
        "la exportación tendría {rows} filas y el máximo es {max_rows}: acota con desde, hasta u otros filtros"
    )]
    TooLarge { rows: u64, max_rows: u64 },
    /// A saved report that does not exist.
    #[error("reporte no encontrado")]
    NotFound,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for ExportError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::TooLarge { .. } => Code::ExportTooLarge,
            Self::NotFound => Code::NotFound,
            Self::Internal(_) => Code::Internal,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Validation(err) => Some(err.field),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for ExportError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// The shop's reports: streamed, saved, listed.
pub struct Reports {
    db: Db,
    settings: ExportSettings,
}

impl Reports {
    pub fn new(db: Db, settings: ExportSettings) -> Self {
        Self { db, settings }
    }

    /// Where saved reports are written.
    pub fn folder(&self) -> &PathBuf {
        &self.settings.exports_dir
    }

    /// Refuses an export larger than the configured cap, before anything is sent;
    /// returns the rows it will have.
    pub async fn check_size(&self, request: &ExportRequest) -> Result<u64, ExportError> {
        let rows = rows::count(&self.db, request.report, &request.filters).await?;
        let max_rows = self.settings.export_max_rows;
        if rows > max_rows {
            return Err(ExportError::TooLarge { rows, max_rows });
        }
        Ok(rows)
    }

    /// A file under the reports folder for `request`, written under a temporary
    /// name until the export completes.
    pub async fn new_file(&self, request: &ExportRequest) -> Result<PendingFile, ExportError> {
        PendingFile::create(&self.settings.exports_dir, request)
            .await
            .map_err(|err| {
                ExportError::Internal(anyhow::Error::new(err).context(format!(
                    "creating a report in {} (TENDERO_EXPORTS_DIR)",
                    self.settings.exports_dir.display()
                )))
            })
    }

    /// Runs an export to its end, the client's departure, or a failure.
    pub async fn run(&self, request: &ExportRequest, sink: Sink) -> anyhow::Result<ExportOutcome> {
        run(&self.db, request, sink).await
    }

    /// Saved reports, newest first.
    pub async fn saved(&self) -> Result<Vec<SavedFile>, ExportError> {
        files::list(&self.settings.exports_dir).await
    }

    /// A saved report by name: (file, size, content type).
    pub async fn open_saved(
        &self,
        name: &str,
    ) -> Result<(tokio::fs::File, u64, &'static str), ExportError> {
        files::open(&self.settings.exports_dir, name).await
    }
}

/// Rows per read: larger pages cost fewer round trips, smaller ones less memory.
const PAGE_ROWS: u64 = 1_000;
const CHUNK_BYTES: usize = 64 * 1024;

/// Query of `GET /api/exportar/{entidad}` (and the `tendero export` flags).
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default), `json` or `jsonl`.
    pub formato: Option<String>,
    /// Created at or after: a date (`2026-01-31`) or an RFC 3339 instant.
    pub desde: Option<String>,
    /// Created at or before: a date (the whole day counts) or an RFC 3339 instant.
    pub hasta: Option<String>,
    /// Orders only.
    pub estado: Option<Estado>,
    /// Orders only.
    pub cliente_id: Option<i64>,
    /// Products only.
    pub categoria: Option<String>,
    /// Customers and products only.
    pub activo: Option<bool>,
    /// Events only: `busqueda`, `respuesta`, `click_producto` or `valoracion`.
    pub tipo: Option<String>,
    /// Comma-separated columns, in the order wanted (default: all).
    pub columnas: Option<String>,
    /// Orders only: `lineas` for one row per order line.
    pub detalle: Option<String>,
    /// CSV for Excel in Spanish locales: BOM, `;` separator, decimal comma.
    pub excel: Option<bool>,
    /// Also save the file under `exports/`.
    pub guardar: Option<bool>,
}

/// A validated export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub report: Report,
    pub format: ExportFormat,
    pub filters: ReportFilters,
    /// (name, index) of the selected columns, in output order.
    pub columns: Vec<(&'static str, usize)>,
    pub save: bool,
}

impl ExportRequest {
    /// Parses the entity path segment and the query.
    pub fn parse(entity: &str, q: ExportQuery) -> Result<Self, FieldError> {
        let lines = match q.detalle.as_deref() {
            None | Some("pedidos") => false,
            Some("lineas") => true,
            Some(_) => return Err(FieldError::new("detalle", "admite `lineas` o `pedidos`")),
        };
        let report = match (entity, lines) {
            ("clientes", false) => Report::Clientes,
            ("productos", false) => Report::Productos,
            ("pedidos", false) => Report::Pedidos,
            ("pedidos", true) => Report::PedidoLineas,
            ("eventos", false) => Report::Eventos,
            ("clientes" | "productos" | "eventos", true) => {
                return Err(FieldError::new("detalle", "solo aplica a pedidos"));
            }
            _ => {
                return Err(FieldError::new(
                    "entidad",
                    "se exportan clientes, productos, pedidos o eventos",
                ));
            }
        };
        let excel = q.excel.unwrap_or(false);
        let format = match q.formato.as_deref().unwrap_or("csv") {
            "csv" => ExportFormat::Csv { excel },
            "json" | "jsonl" if excel => {
                return Err(FieldError::new("excel", "solo aplica a formato=csv"));
            }
            "json" => ExportFormat::Json,
            "jsonl" => ExportFormat::JsonLines,
            _ => return Err(FieldError::new("formato", "admite csv, json o jsonl")),
        };

        let is_orders = matches!(report, Report::Pedidos | Report::PedidoLineas);
        let only = |present: bool, field: &'static str, applies: bool, to: &str| {
            if present && !applies {
                Err(FieldError::new(field, format!("solo aplica a {to}")))
            } else {
                Ok(())
            }
        };
        only(q.estado.is_some(), "estado", is_orders, "pedidos")?;
        only(q.cliente_id.is_some(), "cliente_id", is_orders, "pedidos")?;
        only(
            q.categoria.is_some(),
            "categoria",
            report == Report::Productos,
            "productos",
        )?;
        only(
            q.activo.is_some(),
            "activo",
            matches!(report, Report::Clientes | Report::Productos),
            "clientes y productos",
        )?;
        only(
            q.tipo.is_some(),
            "tipo",
            report == Report::Eventos,
            "eventos",
        )?;
        let tipo = match q.tipo.as_deref().map(str::trim) {
            None => None,
            Some(tipo) if EVENT_TYPES.contains(&tipo) => Some(tipo.to_owned()),
            Some(_) => {
                return Err(FieldError::new(
                    "tipo",
                    format!("admite {}", EVENT_TYPES.join(", ")),
                ));
            }
        };

        let (desde, hasta) = parse_range(q.desde.as_deref(), q.hasta.as_deref())?;

        let available = report.columns();
        let columns = match q
            .columnas
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => available
                .iter()
                .copied()
                .enumerate()
                .map(|(i, c)| (c, i))
                .collect(),
            Some(list) => {
                let mut chosen = Vec::new();
                for name in list.split(',').map(str::trim) {
                    let index = available.iter().position(|c| *c == name).ok_or_else(|| {
                        FieldError::new(
                            "columnas",
                            format!("`{name}` no existe; columnas: {}", available.join(", ")),
                        )
                    })?;
                    if chosen.iter().any(|(_, i)| *i == index) {
                        return Err(FieldError::new(
                            "columnas",
                            format!("`{name}` está repetida"),
                        ));
                    }
                    chosen.push((available[index], index));
                }
                chosen
            }
        };

        Ok(Self {
            report,
            format,
            filters: ReportFilters {
                desde,
                hasta,
                estado: q.estado,
                categoria: q.categoria.map(|c| c.trim().to_owned()),
                activo: q.activo,
                cliente_id: q.cliente_id,
                tipo,
            },
            columns,
            save: q.guardar.unwrap_or(false),
        })
    }

    /// The download name, e.g. `pedidos-2026-11-21.csv`.
    pub fn download_name(&self) -> String {
        format!(
            "{}-{}.{}",
            self.report.slug(),
            chrono::Utc::now().format("%Y-%m-%d"),
            self.format.extension()
        )
    }
}

/// Where exported bytes go.
pub struct Sink {
    client: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    file: Option<PendingFile>,
}

/// How an export ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ExportOutcome {
    Completed {
        rows: u64,
        saved: Option<String>,
    },
    /// The client went away; nothing was saved.
    Cancelled {
        rows: u64,
    },
}

impl Sink {
    pub fn new(
        client: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
        file: Option<PendingFile>,
    ) -> Self {
        Self { client, file }
    }

    /// Writes a chunk; `Ok(false)` when the client is gone.
    async fn write(&mut self, chunk: Vec<u8>) -> anyhow::Result<bool> {
        let chunk = Bytes::from(chunk);
        if let Some(file) = &mut self.file {
            file.file.write_all(&chunk).await?;
        }
        if let Some(client) = &self.client
            && client.send(Ok(chunk)).await.is_err()
        {
            return Ok(false);
        }
        Ok(true)
    }

    async fn fail(&mut self, message: &str) {
        if let Some(client) = &self.client {
            let _ = client
                .send(Err(std::io::Error::other(message.to_owned())))
                .await;
        }
        if let Some(file) = self.file.take() {
            file.discard().await;
        }
    }
}

#[tracing::instrument(skip_all, fields(report = request.report.slug()))]
async fn run(db: &Db, request: &ExportRequest, mut sink: Sink) -> anyhow::Result<ExportOutcome> {
    let started = Instant::now();
    let result = write_all(db, request, &mut sink).await;
    match result {
        Ok((rows, true)) => {
            let saved = match sink.file.take() {
                Some(file) => Some(file.commit().await?),
                None => None,
            };
            tracing::info!(
                rows,
                seconds = started.elapsed().as_secs_f64(),
                ?saved,
                "export finished"
            );
            Ok(ExportOutcome::Completed { rows, saved })
        }
        Ok((rows, false)) => {
            if let Some(file) = sink.file.take() {
                file.discard().await;
            }
            tracing::info!(rows, "export cancelled: the client disconnected");
            Ok(ExportOutcome::Cancelled { rows })
        }
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "export failed");
            sink.fail("la exportación falló").await;
            Err(err)
        }
    }
}

/// Encodes every row into the sink. Returns the rows encoded and whether the export
/// completed (`false`: the client went away).
///
/// A reader task fetches the next page while the current one is encoded, so reading
/// (in the database driver) overlaps encoding; at most three pages are in memory.
async fn write_all(
    db: &Db,
    request: &ExportRequest,
    sink: &mut Sink,
) -> anyhow::Result<(u64, bool)> {
    let (pages_tx, mut pages) = mpsc::channel::<Result<rows::RowPage, sea_orm::DbErr>>(1);
    let reader_db = db.clone();
    let report = request.report;
    let filters = request.filters.clone();
    let reader = tokio::spawn(async move {
        let mut after = 0;
        loop {
            let page = rows::page(&reader_db, report, &filters, after, PAGE_ROWS).await;
            let next = match &page {
                Ok(page) if page.len() as u64 == PAGE_ROWS => page.last_key(),
                _ => None,
            };
            if pages_tx.send(page).await.is_err() {
                return;
            }
            match next {
                Some(key) => after = key,
                None => return,
            }
        }
    });
    let _stop_reader = AbortOnDrop(reader);

    let mut encoder = Encoder::new(request.format, &request.columns);
    let mut buffer = Vec::with_capacity(CHUNK_BYTES * 2);
    encoder.begin(&mut buffer);
    let mut rows = 0u64;
    while let Some(page) = pages.recv().await {
        let page = page?;
        let delivered = match &page {
            rows::RowPage::Clientes(items) => {
                encode_rows(items, &mut encoder, &mut buffer, sink).await?
            }
            rows::RowPage::Productos(items) => {
                encode_rows(items, &mut encoder, &mut buffer, sink).await?
            }
            rows::RowPage::Pedidos(items) => {
                encode_rows(items, &mut encoder, &mut buffer, sink).await?
            }
            rows::RowPage::Lineas(items) => {
                encode_rows(items, &mut encoder, &mut buffer, sink).await?
            }
            rows::RowPage::Eventos(items) => {
                encode_rows(items, &mut encoder, &mut buffer, sink).await?
            }
        };
        if !delivered {
            return Ok((rows, false));
        }
        rows += page.len() as u64;
    }
    encoder.end(&mut buffer);
    let delivered = sink.write(buffer).await?;
    Ok((rows, delivered))
}

/// Encodes rows, handing the buffer to the sink whenever it passes [`CHUNK_BYTES`]
/// (so a chunk stays near that size however wide the rows are). `false` when the
/// client went away.
async fn encode_rows<R: encode::Record>(
    items: &[R],
    encoder: &mut Encoder,
    buffer: &mut Vec<u8>,
    sink: &mut Sink,
) -> anyhow::Result<bool> {
    for item in items {
        encoder.row(buffer, item);
        if buffer.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(buffer, Vec::with_capacity(CHUNK_BYTES * 2));
            if !sink.write(chunk).await? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Aborts the page reader when the export ends early.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
