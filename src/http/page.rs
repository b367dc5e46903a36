//! The customer chat page (`static/index.html` at `/`) and the staff dashboard
//! (`static/panel.html` at `/panel`), their scripts and styles under `/assets/`, and
//! the two libraries they use, installed by `npm ci` in the pages' folder and not kept
//! in the repository: the official Socket.IO client at `/vendor/socket.io.min.js`
//! and Chart.js at `/vendor/chart.umd.js`.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use super::HttpState;

/// Where `npm ci` puts the client inside the page's folder.
const SOCKET_IO_CLIENT: &str = "node_modules/socket.io-client/dist/socket.io.min.js";
/// Where `npm ci` puts the dashboard's charting library.
const CHART_JS: &str = "node_modules/chart.js/dist/chart.umd.js";

/// The page may load only its own files and talk only to this server.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     media-src 'self' blob:; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

pub fn routes(dir: &Path) -> Router<HttpState> {
    let client = dir.join(SOCKET_IO_CLIENT);
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "no chat page: index.html is missing (TENDERO_STATIC_DIR)");
    } else if !client.is_file() || !dir.join(CHART_JS).is_file() {
        tracing::warn!(
            dir = %dir.display(),
            "the pages' libraries are missing: the chat page cannot connect nor the dashboard draw (run `npm ci` in that folder; make run does)"
        );
    }
    Router::new()
        .route_service("/", ServeFile::new(dir.join("index.html")))
        .route_service("/panel", ServeFile::new(dir.join("panel.html")))
        .route_service("/vendor/socket.io.min.js", ServeFile::new(client))
        .route_service("/vendor/chart.umd.js", ServeFile::new(dir.join(CHART_JS)))
        .nest_service("/assets", ServeDir::new(dir.join("assets")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}
