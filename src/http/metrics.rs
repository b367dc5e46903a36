//! Prometheus metrics: requests and latency by method, route and status; exports;
//! how far the search index is behind the database; and the event log's writes and
//! drops.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::learning::EventLog;
use crate::retrieval::Search;

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    report: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    report: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    outcome: &'static str,
}

/// The registry and the metric families Tendero updates.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram>,
    exports_running: Gauge,
    exports: Family<ExportLabels, Counter>,
    export_rows: Family<ReportLabels, Counter>,
    index_backlog: Gauge,
    index_sync_failures: Gauge,
    events: Family<EventLabels, Counter>,
    /// Held while the event counters are moved up, so two scrapes do not both add.
    events_sync: std::sync::Mutex<()>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tendero");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            latency.clone(),
        );
        let exports_running = Gauge::default();
        let exports = Family::<ExportLabels, Counter>::default();
        let export_rows = Family::<ReportLabels, Counter>::default();
        registry.register(
            "exports_running",
            "Exports streaming right now",
            exports_running.clone(),
        );
        registry.register(
            "exports",
            "Exports by report and outcome (completed, cancelled, failed)",
            exports.clone(),
        );
        registry.register(
            "export_rows",
            "Rows written by exports",
            export_rows.clone(),
        );
        let index_backlog = Gauge::default();
        let index_sync_failures = Gauge::default();
        registry.register(
            "index_backlog_products",
            "Products changed in the database and not yet re-indexed",
            index_backlog.clone(),
        );
        registry.register(
            "index_sync_failures",
            "Failed attempts in a row to re-index changed products (0 once one succeeds)",
            index_sync_failures.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Events of the event log by outcome: written, dropped (its queue was full), \
             failed (the write failed)",
            events.clone(),
        );
        Self {
            registry,
            events,
            events_sync: std::sync::Mutex::new(()),
            requests,
            latency,
            exports_running,
            exports,
            export_rows,
            index_backlog,
            index_sync_failures,
        }
    }

    /// Counts an export in flight until the returned guard is dropped.
    pub fn export_started(&self) -> ExportGuard<'_> {
        self.exports_running.inc();
        ExportGuard(self)
    }

    /// Records how an export ended.
    pub fn export_finished(&self, report: &'static str, outcome: &'static str, rows: u64) {
        self.exports
            .get_or_create(&ExportLabels { report, outcome })
            .inc();
        self.export_rows
            .get_or_create(&ReportLabels { report })
            .inc_by(rows);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Keeps `tendero_exports_running` up while an export runs.
pub struct ExportGuard<'a>(&'a Metrics);

impl Drop for ExportGuard<'_> {
    fn drop(&mut self) {
        self.0.exports_running.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts and times every request under its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Any token is a valid HTTP method: unknown ones share a label, so clients cannot
    // grow the metric families without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let labels = HttpLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn render(
    State(metrics): State<Arc<Metrics>>,
    State(search): State<Arc<Search>>,
    State(events): State<EventLog>,
) -> impl IntoResponse {
    // The log counts since the start; each counter is moved up to its total.
    let counts = events.counts();
    let _sync = metrics.events_sync.lock().expect("event counters lock");
    for (outcome, total) in [
        ("written", &counts.written),
        ("dropped", &counts.dropped),
        ("failed", &counts.failed),
    ] {
        let counter = metrics.events.get_or_create(&EventLabels { outcome });
        let total = total.load(std::sync::atomic::Ordering::Relaxed);
        counter.inc_by(total.saturating_sub(counter.get()));
    }
    let backlog = search.backlog();
    metrics
        .index_backlog
        .set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
    metrics.index_sync_failures.set(i64::from(backlog.failures));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}
