//! The composition module: the one place that knows every service.
//!
//! [`Services::build`] connects to the database (applying migrations) and, to
//! Redis when one is configured, opens the search index in step with the
//! database (loading the demo shop into an empty catalog when allowed), and builds
//! the services from their sections of the settings. [`run`] mounts the HTTP router
//! and Socket.IO in front of it, and serves on a listener the caller binds (tests
//! bind `127.0.0.1:0`) until the shutdown future resolves, then gives requests and
//! answers in flight a grace period to finish. Only `main` and the command line
//! use this module; nothing below it knows it exists.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::middleware;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, AgentParts};
use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::cluster::Cluster;
use crate::config::{Settings, redact_url};
use crate::db::Db;
use crate::export::Reports;
use crate::http::metrics::Metrics;
use crate::http::{self, HttpState, RouterSettings};
use crate::learning::{Analytics, ClickLearner, EventLog, Intake};
use crate::recommend::Recommender;
use crate::retrieval::search::SearchIndex;
use crate::retrieval::{self, Search, upkeep};
use crate::shop::Shop;
use crate::socket::{self, SocketServices, SocketSettings};
use crate::speech::Speech;

/// Every service of a running node, built once at start.
#[derive(Clone)]
pub struct Services {
    settings: Arc<Settings>,
    db: Db,
    auth: Arc<Auth>,
    shop: Arc<Shop>,
    search: Arc<Search>,
    agent: Arc<Agent>,
    speech: Arc<Speech>,
    reports: Arc<Reports>,
    recommender: Arc<Recommender>,
    learner: Arc<ClickLearner>,
    analytics: Arc<Analytics>,
    events: EventLog,
    intake: Arc<Intake>,
    metrics: Arc<Metrics>,
    /// The other nodes, through Redis, when `TENDERO_REDIS_URL` is set.
    cluster: Option<Arc<Cluster>>,
}

impl Services {
    /// Connects, migrates and prepares everything the server needs.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = settings.resolve();
        settings.check()?;
        let db = connect(&settings).await?;
        db.migrate().await.context("applying database migrations")?;
        let cluster = match &settings.redis.redis_url {
            None => None,
            Some(url) => Some(Arc::new(
                Cluster::connect(&settings.redis)
                    .await
                    .with_context(|| format!("connecting to Redis ({})", redact_url(url)))?,
            )),
        };
        let auth = Arc::new(Auth::start(db.clone(), &settings.auth, settings.server.dev).await?);
        let index = open_search(&settings, &db).await?;
        let search = Arc::new(Search::new(index, db.clone(), &settings.retrieval));
        upkeep::spawn(
            &search,
            Duration::from_millis(settings.retrieval.index_poll_ms),
        );
        let events = EventLog::start(db.clone(), &settings.learning);
        // Clients are recorded by a hash salted with the token secret (a random salt
        // in dev mode without one).
        let salt = match &settings.auth.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => uuid::Uuid::new_v4().as_bytes().to_vec(),
        };
        let intake = Arc::new(Intake::new(db.clone(), events.clone(), &salt));
        let shop = Shop::new(db.clone());
        let recommender = Arc::new(Recommender::new(
            db.clone(),
            search.clone(),
            &settings.recommend,
        ));
        recommender.start().await;
        let learner = Arc::new(ClickLearner::new(
            db.clone(),
            search.index().clone(),
            &settings.learning,
        ));
        learner.start().await;
        let analytics = Arc::new(Analytics::new(
            db.clone(),
            settings.learning.analytics_interval_secs,
        ));
        analytics.start();
        let agent = Agent::new(
            AgentParts {
                db: db.clone(),
                search: search.clone(),
                shop: shop.clone(),
                events: events.clone(),
                recommender: recommender.clone(),
            },
            &settings.agent,
            &settings.ollama,
        )
        .context("preparing the sales agent")?;
        let speech = Arc::new(Speech::start(&settings.speech).await);
        keep_vocabulary(
            &shop,
            &speech,
            Duration::from_secs(settings.speech.vocabulary_poll_secs),
        )
        .await;
        let reports = Reports::new(db.clone(), settings.export.clone());
        Ok(Self {
            settings: Arc::new(settings),
            db,
            auth,
            shop: Arc::new(shop),
            search,
            agent: Arc::new(agent),
            speech,
            reports: Arc::new(reports),
            recommender,
            learner,
            analytics,
            events,
            intake,
            metrics: Arc::new(Metrics::new()),
            cluster,
        })
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn index(&self) -> &Arc<SearchIndex> {
        self.search.index()
    }

    pub fn search(&self) -> &Arc<Search> {
        &self.search
    }

    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }
}

/// Connects to the configured database (creating a SQLite file when missing).
pub async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    let url = settings.database.url();
    Db::connect(url, settings.database.db_max_connections)
        .await
        .with_context(|| format!("connecting to the database ({})", redact_url(url)))
}

/// Words Whisper is given: the shop's, as they are now (before the first
/// question), then again after each change to the catalog, checked every `poll`.
/// The check stops with the last user of `speech`; without a model, or with the
/// vocabulary off, the catalog is not read at all.
async fn keep_vocabulary(shop: &Shop, speech: &Arc<Speech>, poll: Duration) {
    /// Prompt words gathered: more than a prompt holds, so that it is full.
    const WORDS: usize = 400;
    if !speech.wants_vocabulary() {
        return;
    }
    async fn refresh(shop: &Shop, speech: &Speech) -> Result<(), crate::shop::ShopError> {
        speech.set_vocabulary(&shop.vocabulary(WORDS).await?);
        Ok(())
    }
    let mut version = shop.catalog_version().await.ok();
    if let Err(err) = refresh(shop, speech).await {
        tracing::warn!(error = %err, "the shop's vocabulary could not be read");
    }
    let shop = shop.clone();
    let speech = Arc::downgrade(speech);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            let Some(speech) = speech.upgrade() else {
                return;
            };
            let now = shop.catalog_version().await.ok();
            if now.is_none() || now == version {
                continue;
            }
            match refresh(&shop, &speech).await {
                Ok(()) => version = now,
                Err(err) => tracing::warn!(error = %err, "the shop's vocabulary could not be read"),
            }
        }
    });
}

/// The embedder, the index in step with the database, and the demo shop when the
/// catalog is empty and `TENDERO_DEMO` allows.
async fn open_search(settings: &Settings, db: &Db) -> anyhow::Result<Arc<SearchIndex>> {
    let embedder = retrieval::embedders::resolve(&settings.retrieval, &settings.ollama).await?;
    tracing::info!(embedder = embedder.id(), "embedder ready");
    let index = retrieval::open_index(&settings.retrieval, embedder, true)
        .await
        .context("opening the search index")?;
    let report = retrieval::sync::sync_all(db, &index)
        .await
        .context("bringing the search index in line with the database")?;
    if report.embedded + report.restamped + report.removed > 0 {
        tracing::info!(?report, "search index synced with the database");
    }
    let index = Arc::new(index);
    if settings.server.demo {
        Catalog::new(db.clone(), index.clone())
            .load_demo_if_empty()
            .await
            .context("loading the demo shop")?;
    }
    index.save().await?;
    Ok(index)
}

/// Serves until `shutdown` resolves; requests and Socket.IO answers in flight then
/// get `shutdown_grace_secs` to finish, and Socket.IO connections are closed (their
/// clients reconnect to the next server).
pub async fn run(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = services.settings.clone();
    let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
    let index = services.index().clone();
    let router = http::router(
        HttpState {
            db: services.db.clone(),
            auth: services.auth.clone(),
            shop: services.shop.clone(),
            search: services.search.clone(),
            agent: services.agent.clone(),
            speech: services.speech.clone(),
            reports: services.reports.clone(),
            recommender: services.recommender.clone(),
            learner: services.learner.clone(),
            analytics: services.analytics.clone(),
            events: services.events.clone(),
            intake: services.intake.clone(),
            metrics: services.metrics.clone(),
            cluster: services.cluster.clone(),
        },
        RouterSettings {
            server: &settings.server,
            limits: &settings.limits,
        },
    );
    // Socket.IO traffic (polling and WebSocket under /socket.io/) has its own
    // limits and must not be compressed or cut by the request timeout: it goes in
    // front of the router's layers. Its requests get a head of their own first: the
    // outermost layer (routing, which notes the `OriginalUri`, runs before it).
    let (router, sockets) = socket::attach(
        router,
        SocketServices {
            agent: services.agent.clone(),
            speech: services.speech.clone(),
            auth: services.auth.clone(),
            intake: services.intake.clone(),
            shop: services.shop.clone(),
            cluster: services.cluster.clone(),
        },
        SocketSettings {
            limits: settings.limits.clone(),
            max_body_bytes: settings.server.max_body_bytes,
        },
    )
    .await?;
    let router = router.layer(middleware::map_request(socket::own_head));
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
    // What customers did in the last moments is written before the process ends.
    services.events.flush().await;
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
