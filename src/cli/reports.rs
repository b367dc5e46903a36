//! `tendero export`: a report written to a file, for scheduled jobs, as
//! `GET /api/exportar/…` would stream it.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Settings;
use crate::export::files::PendingFile;
use crate::export::{ExportOutcome, ExportQuery, ExportRequest, Reports, Sink};
use crate::shop::pedidos::Estado;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// clientes, productos, pedidos or eventos.
    pub entidad: String,
    /// csv, json or jsonl.
    #[arg(long, default_value = "csv")]
    pub formato: String,
    /// Created at or after (AAAA-MM-DD or RFC 3339).
    #[arg(long)]
    pub desde: Option<String>,
    /// Created at or before (AAAA-MM-DD, the whole day, or RFC 3339).
    #[arg(long)]
    pub hasta: Option<String>,
    /// Orders in this state.
    #[arg(long)]
    pub estado: Option<String>,
    #[arg(long)]
    pub cliente_id: Option<i64>,
    #[arg(long)]
    pub categoria: Option<String>,
    #[arg(long)]
    pub activo: Option<bool>,
    /// Events of this type (busqueda, respuesta, click_producto, valoracion).
    #[arg(long)]
    pub tipo: Option<String>,
    /// Comma-separated columns, in order.
    #[arg(long)]
    pub columnas: Option<String>,
    /// `lineas`: one row per order line.
    #[arg(long)]
    pub detalle: Option<String>,
    /// CSV for Excel in Spanish locales (BOM, `;`, decimal comma).
    #[arg(long)]
    pub excel: bool,
    /// The file to write (written under a temporary name, then renamed).
    #[arg(long)]
    pub salida: PathBuf,
}

pub(super) async fn export(args: ExportArgs, settings: &Settings) -> anyhow::Result<()> {
    let estado = match args.estado.as_deref() {
        Some(raw) => Some(Estado::parse(raw).with_context(|| {
            format!("--estado {raw}: use pendiente, confirmado, enviado, entregado o cancelado")
        })?),
        None => None,
    };
    let query = ExportQuery {
        formato: Some(args.formato),
        desde: args.desde,
        hasta: args.hasta,
        estado,
        cliente_id: args.cliente_id,
        categoria: args.categoria,
        activo: args.activo,
        tipo: args.tipo,
        columnas: args.columnas,
        detalle: args.detalle,
        excel: Some(args.excel),
        guardar: None,
    };
    let request =
        ExportRequest::parse(&args.entidad, query).map_err(|err| anyhow::anyhow!("{err}"))?;
    let db = super::connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let reports = Reports::new(db, settings.export.clone());
    let started = std::time::Instant::now();
    reports
        .check_size(&request)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let file = PendingFile::create_at(&args.salida)
        .await
        .with_context(|| format!("creating {}", args.salida.display()))?;
    match reports.run(&request, Sink::new(None, Some(file))).await? {
        ExportOutcome::Completed { rows, .. } => {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "exported {rows} rows to {} in {seconds:.2} s ({:.0} rows/s)",
                args.salida.display(),
                rows as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        ExportOutcome::Cancelled { .. } => anyhow::bail!("the export stopped before the end"),
    }
}
