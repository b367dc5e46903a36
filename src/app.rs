//! Application state, start-up and serving.
//!
//! [`AppState::build`] connects to the database, applies migrations, creates the first
//! admin and prepares the keys; [`run`] serves a router on a listener the caller
//! binds (tests bind `127.0.0.1:0`) until the shutdown future resolves, then gives
//! requests in flight a grace period to finish.

use std::collections::HashSet;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::auth::{JwtKeys, hash_password};
use crate::catalog;
use crate::config::Settings;
use crate::db::Db;
use crate::events::EventLog;
use crate::http;
use crate::http::metrics::Metrics;
use crate::retrieval;
use crate::retrieval::search::SearchIndex;
use crate::shop::usuarios;
use crate::socket::nodes::Nodes;
use crate::speech::Speech;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    settings: Arc<Settings>,
    db: Db,
    jwt: Arc<JwtKeys>,
    metrics: Arc<Metrics>,
    dummy_hash: String,
    index: Arc<SearchIndex>,
    events: EventLog,
    agent: Arc<Agent>,
    speech: Arc<Speech>,
    /// Products whose stock orders changed, re-indexed by the upkeep task.
    stock_changed: Arc<std::sync::Mutex<HashSet<i64>>>,
    /// The other nodes, through Redis, when `TENDERO_REDIS_URL` is set.
    nodes: Option<Arc<Nodes>>,
}

impl AppState {
    /// Connects, migrates and prepares everything the server needs.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.check()?;
        let url = settings.database_url();
        let db = Db::connect(&url, settings.db_max_connections)
            .await
            .with_context(|| format!("connecting to the database ({})", redact_url(&url)))?;
        db.migrate().await.context("applying database migrations")?;
        let nodes = match &settings.redis_url {
            None => None,
            Some(url) => Some(Arc::new(
                Nodes::connect(url, &settings.redis_prefix)
                    .await
                    .with_context(|| format!("connecting to Redis ({})", redact_url(url)))?,
            )),
        };

        if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
            let created = usuarios::ensure_admin(&db, email, password.expose())
                .await
                .map_err(|err| anyhow::anyhow!("creating the first admin {email}: {err}"))?;
            if created {
                tracing::info!(%email, "first admin created");
            }
        }

        let secret = match &settings.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "dev mode without TENDERO_JWT_SECRET: using a random secret, tokens end with the process"
                );
                let mut bytes = vec![0u8; 48];
                rand::rng().fill_bytes(&mut bytes);
                bytes
            }
        };
        let jwt = Arc::new(JwtKeys::new(
            &secret,
            &settings.jwt_issuer,
            settings.jwt_ttl_minutes,
        ));
        let dummy_hash = hash_password("tendero-timing-equaliser".to_owned()).await?;
        let index = Arc::new(open_search(&settings, &db).await?);
        let stock_changed = Arc::default();
        spawn_index_upkeep(
            &index,
            db.clone(),
            Arc::clone(&stock_changed),
            Duration::from_millis(settings.index_poll_ms),
        );
        let events = EventLog::start(db.clone());
        let agent = Arc::new(Agent::new(&settings).context("preparing the sales agent")?);
        let speech = Arc::new(Speech::start(&settings).await);

        Ok(Self(Arc::new(Inner {
            settings: Arc::new(settings),
            db,
            jwt,
            metrics: Arc::new(Metrics::new()),
            dummy_hash,
            index,
            events,
            agent,
            speech,
            stock_changed,
            nodes,
        })))
    }

    pub fn index(&self) -> &Arc<SearchIndex> {
        &self.0.index
    }

    pub fn agent(&self) -> &Agent {
        &self.0.agent
    }

    /// The other nodes sharing this one's Redis, if any.
    pub fn nodes(&self) -> Option<&Arc<Nodes>> {
        self.0.nodes.as_ref()
    }

    pub fn speech(&self) -> &Speech {
        &self.0.speech
    }

    pub fn events(&self) -> &EventLog {
        &self.0.events
    }

    /// Notes products whose stock an order changed; the index's copy of their stock
    /// (used to prefilter `en_stock`) is refreshed within one poll interval, in one
    /// write for all of them. Answers read live stock from the database regardless.
    pub fn stock_changed(&self, ids: impl IntoIterator<Item = i64>) {
        self.0
            .stock_changed
            .lock()
            .expect("stock_changed lock")
            .extend(ids);
    }

    /// Re-indexes these products after a change through the API. The database change
    /// already happened: a failure here is logged, and the next sync repairs it.
    pub async fn reindex_products(&self, ids: &[i64]) {
        if let Err(err) =
            catalog::sync::sync_products(self.db(), self.index(), Some(ids), &catalog::NoProgress)
                .await
        {
            tracing::error!(error = %format!("{err:#}"), ?ids, "re-indexing products failed");
        }
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.0.settings
    }

    pub fn db(&self) -> &Db {
        &self.0.db
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.0.jwt
    }

    pub fn jwt_arc(&self) -> Arc<JwtKeys> {
        self.0.jwt.clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// A real Argon2 hash that no password matches, to verify against for unknown users.
    pub fn dummy_hash(&self) -> &str {
        &self.0.dummy_hash
    }
}

/// The embedder, the index in step with the database, and the demo shop when the
/// catalog is empty and `TENDERO_DEMO` allows.
async fn open_search(settings: &Settings, db: &Db) -> anyhow::Result<SearchIndex> {
    let embedder = retrieval::embedders::resolve(settings).await?;
    tracing::info!(embedder = embedder.id(), "embedder ready");
    let index = retrieval::open_index(settings, embedder, true)
        .await
        .context("opening the search index")?;
    let report = catalog::sync::sync_all(db, &index)
        .await
        .context("bringing the search index in line with the database")?;
    if report.embedded + report.restamped + report.removed > 0 {
        tracing::info!(?report, "search index synced with the database");
    }
    if settings.demo {
        catalog::demo::load_if_empty(db, &index)
            .await
            .context("loading the demo shop")?;
    }
    index.save().await?;
    Ok(index)
}

/// Fragments from which the upkeep compacts without waiting for its 10-minute turn.
const COMPACT_FROM_FRAGMENTS: usize = 8;

/// Every `poll`: picks up index changes written by other processes and re-indexes the
/// stock of ordered products, and folds rows the full-text index does not cover yet into
/// it. Every 30 s saves FAISS when it changed. Compacts LanceDB
/// every 10 min, or as soon as writes have left [`COMPACT_FROM_FRAGMENTS`] fragments
/// (at most every 30 s): small writes leave small files and old versions, and each
/// fragment a search touches costs it a file read. Ends when the index is dropped.
fn spawn_index_upkeep(
    index: &Arc<SearchIndex>,
    db: Db,
    stock_changed: Arc<std::sync::Mutex<HashSet<i64>>>,
    poll: Duration,
) {
    let weak = Arc::downgrade(index);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = tokio::time::Instant::now();
        // A catalog just ingested at start-up may be compacted at the first turn.
        let mut last_compaction = tokio::time::Instant::now()
            .checked_sub(Duration::from_secs(30))
            .unwrap_or_else(tokio::time::Instant::now);
        loop {
            ticker.tick().await;
            let Some(index) = weak.upgrade() else { return };
            if let Err(err) = index.refresh().await {
                tracing::warn!(error = %format!("{err:#}"), "could not check the index for changes");
            }
            let ids: Vec<i64> = std::mem::take(&mut *stock_changed.lock().expect("lock"))
                .into_iter()
                .collect();
            if !ids.is_empty()
                && let Err(err) =
                    catalog::sync::sync_products(&db, &index, Some(&ids), &catalog::NoProgress)
                        .await
            {
                tracing::warn!(error = %format!("{err:#}"), "could not re-index ordered products");
            }
            if last_save.elapsed() >= Duration::from_secs(30) {
                last_save = tokio::time::Instant::now();
                if let Err(err) = index.save().await {
                    tracing::warn!(error = %format!("{err:#}"), "could not save the FAISS index");
                }
            }
            // Rows written since the full-text index was built (a catalog's second
            // batch, a product saved, another node's ingest) are folded in at once: by
            // a compaction when one is allowed, else into the index alone.
            let unindexed = index.store().unindexed_rows().await.is_ok_and(|n| n > 0);
            let since = last_compaction.elapsed();
            let compact_now = since >= Duration::from_secs(30)
                && (unindexed
                    || index
                        .store()
                        .fragments()
                        .await
                        .is_ok_and(|n| n >= COMPACT_FROM_FRAGMENTS));
            if compact_now || since >= Duration::from_secs(600) {
                last_compaction = tokio::time::Instant::now();
                if let Err(err) = index.store().compact().await {
                    tracing::warn!(error = %format!("{err:#}"), "could not compact LanceDB");
                }
            } else if unindexed && let Err(err) = index.store().refresh().await {
                tracing::warn!(error = %format!("{err:#}"), "could not update the full-text index");
            }
        }
    });
}

/// Serves until `shutdown` resolves; requests and Socket.IO answers in flight then
/// get `shutdown_grace_secs` to finish, and Socket.IO connections are closed (their
/// clients reconnect to the next server).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(state.settings().shutdown_grace_secs);
    let index = state.index().clone();
    let (router, sockets) = http::router(state).await?;
    let stopping = CancellationToken::new();
    let stop = stopping.clone();
    let refuse = sockets.clone();
    // Without TCP_NODELAY, a small write that follows another unacknowledged one
    // (an SSE piece after the response head) waits for the peer's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set on a connection");
        }
    });
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests and answers in flight");
        // Before the listener closes: whoever sees it closed sees questions refused.
        refuse.stop_accepting();
        stop.cancel();
    })
    .into_future();
    let deadline = {
        let stopping = stopping.clone();
        async move {
            stopping.cancelled().await;
            tokio::time::sleep(grace).await;
        }
    };
    let http = async {
        let served = tokio::select! {
            result = server => result.context("serving HTTP"),
            () = deadline => {
                tracing::warn!(?grace, "grace period over: dropping requests still running");
                Ok(())
            }
        };
        stopping.cancel();
        served
    };
    // Upgraded WebSocket connections are not the HTTP server's to wait for.
    let sockets = async {
        stopping.cancelled().await;
        sockets.close(grace).await;
    };
    let (served, ()) = tokio::join!(http, sockets);
    served?;
    if let Err(err) = index.save().await {
        tracing::warn!(error = %format!("{err:#}"), "could not save the FAISS index at shutdown");
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite://data/t.db"), "sqlite://data/t.db");
    }
}
