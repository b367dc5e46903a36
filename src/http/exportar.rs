//! `/api/exportar`: reports for staff, streamed, optionally saved.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::ReaderStream;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, Staff};
use super::metrics::Metrics;
use crate::export::files::SavedFile;
use crate::export::{ExportOutcome, ExportQuery, ExportRequest, Reports, Sink};

/// Streams a report. CSV by default; `formato=json|jsonl`; filters by dates, state,
/// category, activity and customer; `columnas=` picks and orders columns;
/// `detalle=lineas` gives one row per order line; `guardar=true` also saves it.
#[utoipa::path(get, path = "/api/exportar/{entidad}", tag = "exportar",
    params(("entidad" = String, Path, description = "clientes, productos, pedidos or eventos"), ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report, streamed", content_type = "text/csv"),
        (status = 400, body = ErrorBody),
        (status = 422, description = "More rows than TENDERO_EXPORT_MAX_ROWS", body = ErrorBody),
    ))]
pub async fn export(
    staff: Staff,
    State(reports): State<Arc<Reports>>,
    State(metrics): State<Arc<Metrics>>,
    ApiPath(entity): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let request = ExportRequest::parse(&entity, query)?;
    let rows = reports.check_size(&request).await?;
    let file = if request.save {
        Some(reports.new_file(&request).await?)
    } else {
        None
    };
    tracing::info!(
        user = staff.id,
        report = request.report.slug(),
        rows,
        "export started"
    );

    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let download_name = request.download_name();
    let format = request.format;
    let task = async move {
        let _running = metrics.export_started();
        let slug = request.report.slug();
        match reports.run(&request, Sink::new(Some(sender), file)).await {
            Ok(ExportOutcome::Completed { rows, .. }) => {
                metrics.export_finished(slug, "completed", rows)
            }
            Ok(ExportOutcome::Cancelled { rows }) => {
                metrics.export_finished(slug, "cancelled", rows)
            }
            Err(_) => metrics.export_finished(slug, "failed", 0),
        }
    };
    tokio::spawn(tracing::Instrument::instrument(
        task,
        tracing::Span::current(),
    ));

    let mut response = Body::from_stream(ReceiverStream::new(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{download_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert("x-export-rows", HeaderValue::from(rows));
    Ok(response)
}

/// Saved reports, newest first.
#[utoipa::path(get, path = "/api/exportar/archivos", tag = "exportar", security(("bearer" = [])),
    responses((status = 200, body = Vec<SavedFile>)))]
pub async fn list_files(
    _: Staff,
    State(reports): State<Arc<Reports>>,
) -> Result<Json<Vec<SavedFile>>, ApiError> {
    Ok(Json(reports.saved().await?))
}

/// Downloads a saved report by name; names that try to leave the folder are refused.
#[utoipa::path(get, path = "/api/exportar/archivos/{nombre}", tag = "exportar",
    security(("bearer" = [])), params(("nombre" = String, Path)),
    responses((status = 200, description = "The file"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn download_file(
    _: Staff,
    State(reports): State<Arc<Reports>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (file, length, content_type) = reports.open_saved(&name).await?;
    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
