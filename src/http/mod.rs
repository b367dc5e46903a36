//! The HTTP surface: routes, extractors, rate limits, metrics, OpenAPI.
//!
//! Handlers are thin: they extract typed input (auth is visible in their signatures),
//! take the one service they use as `State<Arc<…>>` (see [`HttpState`]) and call
//! one of its methods; domain errors become HTTP answers at this edge
//! ([`error::ApiError`]). The Socket.IO transport is mounted beside this router by
//! the composition module, not by it.

mod analitica;
mod aprendizaje;
mod auth;
mod clientes;
mod conversaciones;
pub mod error;
mod eventos;
mod exportar;
pub mod extract;
pub mod metrics;
mod openapi;
mod ops;
mod page;
mod pedidos;
mod productos;
pub mod query;
pub mod rate_limit;
mod recomendaciones;
pub mod search;
mod voice;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::agent::Agent;
use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::config::{LimitSettings, ServerSettings};
use crate::db::Db;
use crate::error::Refusal;
use crate::export::Reports;
use crate::learning::{Analytics, ClickLearner, EventLog, Intake};
use crate::recommend::Recommender;
use crate::retrieval::Search;
use crate::shop::Shop;
use crate::speech::Speech;
use error::ApiError;
use metrics::Metrics;

/// Room for the multipart framing and the `chat_id` field around a recording.
pub use voice::MULTIPART_OVERHEAD;

/// The services the handlers use; each handler takes the one it needs.
#[derive(Clone, FromRef)]
pub struct HttpState {
    pub db: Db,
    pub auth: Arc<Auth>,
    pub shop: Arc<Shop>,
    pub search: Arc<Search>,
    pub agent: Arc<Agent>,
    pub speech: Arc<Speech>,
    pub reports: Arc<Reports>,
    pub recommender: Arc<Recommender>,
    pub learner: Arc<ClickLearner>,
    pub analytics: Arc<Analytics>,
    pub events: EventLog,
    pub intake: Arc<Intake>,
    pub metrics: Arc<Metrics>,
    /// The other nodes, for `/ready`, when several share a Redis.
    pub cluster: Option<Arc<Cluster>>,
}

/// The error shape, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `insufficient_stock`.
    code: String,
    /// What went wrong, in Spanish, for people.
    message: String,
    /// The offending field, for `validation_failed`.
    field: Option<String>,
}

/// What the router is built with besides its services.
pub struct RouterSettings<'a> {
    pub server: &'a ServerSettings,
    pub limits: &'a LimitSettings,
}

/// Builds the whole HTTP router (without Socket.IO, which the composition module
/// puts in front of it).
pub fn router(state: HttpState, settings: RouterSettings<'_>) -> Router {
    let RouterSettings { server, limits } = settings;
    // One budget per client for every `/api` route under the general limit.
    let api_limit = rate_limit::api_layer(limits);
    let api = Router::new()
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/me", get(auth::me))
        .route("/api/clientes", get(clientes::list).post(clientes::create))
        .route("/api/clientes/buscar", get(clientes::search))
        .route(
            "/api/clientes/{id}",
            get(clientes::get)
                .patch(clientes::update)
                .delete(clientes::delete),
        )
        .route(
            "/api/productos",
            get(productos::list).post(productos::create),
        )
        .route(
            "/api/productos/{id}",
            get(productos::get)
                .patch(productos::update)
                .delete(productos::delete),
        )
        .route(
            "/api/productos/{id}/similares",
            get(recomendaciones::similar),
        )
        .route(
            "/api/productos/{id}/complementos",
            get(recomendaciones::complements),
        )
        .route(
            "/api/clientes/{id}/recomendaciones",
            get(recomendaciones::for_customer),
        )
        .route("/api/recomendaciones/lote", post(recomendaciones::batch))
        .route("/api/recomendaciones/estado", get(recomendaciones::status))
        .route("/api/aprendizaje/estado", get(aprendizaje::status))
        .route("/api/analitica/serie", get(analitica::serie))
        .route("/api/analitica/consultas", get(analitica::consultas))
        .route("/api/analitica/productos", get(analitica::productos))
        .route("/api/analitica/valoraciones", get(analitica::valoraciones))
        .route("/api/pedidos", get(pedidos::list).post(pedidos::create))
        .route(
            "/api/pedidos/{id}",
            get(pedidos::get)
                .patch(pedidos::update)
                .delete(pedidos::delete),
        )
        .route("/api/conversaciones", get(conversaciones::list))
        .route("/api/conversaciones/{chat_id}", get(conversaciones::get))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs_page))
        .layer(api_limit.clone());

    let exports = Router::new()
        .route("/api/exportar/archivos", get(exportar::list_files))
        .route(
            "/api/exportar/archivos/{nombre}",
            get(exportar::download_file),
        )
        .route("/api/exportar/{entidad}", get(exportar::export))
        .layer(rate_limit::export_layer(limits));

    // Searches and the clicks on their results note their client, for the click
    // learning's one-per-client count; events are small and have their own body limit.
    let noted = |router: Router<HttpState>| {
        router
            .layer(middleware::from_fn_with_state(
                limits.trust_forwarded_for,
                rate_limit::note_client,
            ))
            .layer(api_limit.clone())
    };
    let searches = noted(Router::new().route("/api/search", get(search::search)));
    let events = noted(Router::new().route("/api/eventos", post(eventos::create)));

    let page = page::routes(&server.static_dir);

    let ops = Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(metrics::render));

    // Answers have their own first-token and total timeouts, and stream for as long
    // as they are written: the request timeout bounds every other route.
    let bounded = Router::new()
        .merge(api)
        .merge(searches)
        .merge(exports)
        .merge(ops)
        .merge(page)
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(server.request_timeout_secs),
            timeout,
        ));
    // A training on demand runs for as long as it takes (minutes with the sequential
    // model): outside the request timeout.
    let training = Router::new()
        .route(
            "/api/recomendaciones/entrenar",
            post(recomendaciones::train),
        )
        .route("/api/aprendizaje/entrenar", post(aprendizaje::learn))
        .layer(api_limit.clone());
    // Typed and spoken questions share each client's question budget; a recording
    // may be larger than any other body.
    let text = Router::new().route("/api/query/text", post(query::text));
    let spoken = Router::new().route("/api/query/voice", post(voice::voice));
    let answers = Router::new()
        .merge(limit_bodies(text, server.max_body_bytes))
        .merge(limit_bodies(
            spoken,
            state.speech.max_bytes() + voice::MULTIPART_OVERHEAD,
        ))
        .layer(rate_limit::chat_layer(limits));

    Router::new()
        .merge(limit_bodies(bounded, server.max_body_bytes))
        .merge(limit_bodies(events, eventos::MAX_EVENT_BYTES))
        .merge(limit_bodies(training, server.max_body_bytes))
        .merge(answers)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.auth.clone(),
            extract::identify,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        // Outside the body limit, the timeout and the panic guard, so that 413, 503 and
        // 500 answers are counted too.
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(cors(&server.cors_origins))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(|response: &Response, latency: Duration, span: &Span| {
                    span.record("status", response.status().as_u16());
                    tracing::info!(latency_ms = latency.as_secs_f64() * 1000.0, "request");
                }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn request_span(req: &Request) -> Span {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "http",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        status = tracing::field::Empty,
    )
}

fn cors(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::ACCEPT,
        ])
}

async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::from(Refusal::Timeout).into_response(),
    }
}

/// Bodies larger than `max` bytes are refused: from the announced `Content-Length`
/// before the body is read, or cut off at that size while it is read.
fn limit_bodies(router: Router<HttpState>, max: usize) -> Router<HttpState> {
    router
        .layer(DefaultBodyLimit::max(max))
        .layer(middleware::from_fn_with_state(max, refuse_oversized))
}

/// Answers 413 from the announced `Content-Length` before reading the body; bodies
/// without one are cut off at the same size by `DefaultBodyLimit`.
async fn refuse_oversized(State(max): State<usize>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > max as u64 => {
            ApiError::from(Refusal::PayloadTooLarge).into_response()
        }
        _ => next.run(req).await,
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    ApiError::internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}

async fn route_not_found() -> ApiError {
    Refusal::RouteNotFound.into()
}

async fn method_not_allowed() -> ApiError {
    Refusal::MethodNotAllowed.into()
}
