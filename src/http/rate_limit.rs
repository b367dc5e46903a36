//! Per-client rate limiting with tower_governor.
//!
//! A client is the signed-in user when the request carries a valid token, as found
//! by [`crate::http::extract::identify`] (so staff behind one office IP do not share
//! a budget), otherwise the peer IP, or the
//! right-most `X-Forwarded-For` address (the one the trusted proxy itself appended;
//! the ones before it are whatever the client sent) when Tendero is configured to
//! trust its proxy.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use super::error::ApiError;
use super::extract::Identity;
use crate::config::LimitSettings;
use crate::error::Refusal;

/// Identifies who a request counts against.
#[derive(Clone)]
pub struct ClientKey {
    trust_forwarded_for: bool,
}

impl ClientKey {
    fn peer_ip<T>(&self, req: &Request<T>) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
    }
}

impl KeyExtractor for ClientKey {
    type Key = String;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        if let Some(Identity::Staff(staff)) = req.extensions().get::<Identity>() {
            return Ok(format!("user:{}", staff.id));
        }
        Ok(match self.peer_ip(req) {
            Some(ip) => format!("ip:{ip}"),
            None => "ip:unknown".to_owned(),
        })
    }
}

/// Who a request counts against (`user:…` or `ip:…`), noted by [`note_client`] for
/// handlers that record it.
#[derive(Clone, Debug)]
pub struct Client(pub String);

/// Notes the request's [`Client`] the way the limits count it.
pub async fn note_client(
    axum::extract::State(trust_forwarded_for): axum::extract::State<bool>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let key = ClientKey {
        trust_forwarded_for,
    }
    .extract(&req)
    .unwrap_or_else(|_| "ip:unknown".to_owned());
    req.extensions_mut().insert(Client(key));
    next.run(req).await
}

fn limited(err: GovernorError) -> Response<Body> {
    match err {
        GovernorError::TooManyRequests { wait_time, .. } => ApiError::from(Refusal::RateLimited {
            retry_after_secs: wait_time.max(1),
        })
        .into_response(),
        GovernorError::UnableToExtractKey | GovernorError::Other { .. } => ApiError::internal(
            anyhow::anyhow!("rate limiter could not identify the client"),
        )
        .into_response(),
    }
}

type Layer = GovernorLayer<
    ClientKey,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    Body,
>;

/// The general limit of the API routes.
pub fn api_layer(settings: &LimitSettings) -> Layer {
    let period = Duration::from_nanos(1_000_000_000 / u64::from(settings.rate_limit_per_second));
    layer(
        period,
        settings.rate_limit_burst,
        settings.trust_forwarded_for,
    )
}

/// The stricter limit of the export routes.
pub fn export_layer(settings: &LimitSettings) -> Layer {
    let period = Duration::from_millis(60_000 / u64::from(settings.export_rate_limit_per_minute));
    layer(
        period,
        settings.export_rate_limit_burst,
        settings.trust_forwarded_for,
    )
}

/// The limit on questions to the sales agent (each costs a generation).
pub fn chat_layer(settings: &LimitSettings) -> Layer {
    let period = Duration::from_millis(60_000 / u64::from(settings.chat_rate_limit_per_minute));
    layer(
        period,
        settings.chat_rate_limit_burst,
        settings.trust_forwarded_for,
    )
}

/// A limiter replenishing one request per `period` up to `burst`, plus a task that
/// forgets idle clients every minute.
fn layer(period: Duration, burst: u32, trust_forwarded_for: bool) -> Layer {
    let config = GovernorConfigBuilder::default()
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(burst)
        .key_extractor(ClientKey {
            trust_forwarded_for,
        })
        .finish()
        .expect("rate limits are checked to be non-zero in Settings::check");
    let limiter = config.limiter().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
    GovernorLayer::new(config).error_handler(limited)
}
