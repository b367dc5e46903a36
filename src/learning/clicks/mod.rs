//! Learning to rank from clicks: a job reads the searches and clicks of the event log
//! ([`read`]), fits a position-based click model to them ([`model`]) and stores what it
//! learned as a generation (`modelos_clics`); every node serves the newest generation
//! as one more term of the hybrid search's fusion ([`LearnedClicks`]), for `/api/search`
//! and the agent's retrieval alike.
//!
//! For a query clicked before, the term is each product's lift: how much more (or
//! less) attractive it proved than the average product, times `clicks_weight`. A query
//! never clicked borrows the lifts of the clicked queries closest in meaning (cosine
//! of their vectors at least `clicks_neighbour_similarity`), at
//! `clicks_neighbour_weight` of the weight. Any other query is ranked as without
//! learning.
//!
//! The job runs every `learning_interval_secs`, on demand (`tendero aprender`,
//! `POST /api/aprendizaje/entrenar`), and with PostgreSQL on one node at a time.

pub mod artifact;
pub mod model;
pub mod read;
pub mod simulate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::config::LearningSettings;
use crate::db::Db;
use crate::db::entities::modelo_clics;
use crate::error::{Code, Coded, INTERNAL_MESSAGE};
use crate::retrieval::faiss_index::{IndexKind, VectorIndex};
use crate::retrieval::learned::{Adjustments, LearnedTerm};
use crate::retrieval::{Embedder, search::SearchIndex};
use model::{ClickModel, FitSettings};

/// The advisory lock nodes take to learn (any number that no other lock uses).
const LEARNING_LOCK: i64 = 7_352_002;
/// Clicked queries a query never clicked borrows from at most.
const NEIGHBOURS: usize = 3;
/// Queries embedded per call.
const EMBED_BATCH: usize = 256;

/// Why a learning did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("otro nodo está aprendiendo de los clics: reintenta en unos segundos")]
    Elsewhere,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for LearnError {
    fn code(&self) -> Code {
        match self {
            Self::Elsewhere => Code::Busy,
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<sea_orm::DbErr> for LearnError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

impl From<anyhow::Error> for LearnError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

/// What one learning read and found, kept with its generation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resumen {
    /// Searches read.
    pub busquedas: u64,
    /// Clicks on searches' results read, and those counted (one per client, query,
    /// product and day).
    pub clics_recibidos: u64,
    pub clics_contados: u64,
    /// Sessions: one client's searches for one query in one day.
    pub sesiones: u64,
    /// Queries learned (with at least `clicks_min_per_query` clicks), and their
    /// products.
    pub consultas: u64,
    pub productos: u64,
    /// The chance that each place, from the first, is looked at (the first is 1).
    pub propensiones: Vec<f64>,
    /// The mean attractiveness lifts are measured from.
    pub atractivo_medio: f64,
    /// The embedder the queries' vectors come from (`null`: none, no borrowing).
    pub embedder: Option<String>,
    /// Events read from this moment on.
    pub desde: DateTime<Utc>,
    pub segundos: f64,
}

/// The generation serving, for `GET /api/aprendizaje/estado`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Estado {
    /// The generation's number (`null`: nothing learned yet).
    pub version: Option<u64>,
    pub aprendido_at: Option<DateTime<Utc>>,
    pub resumen: Option<Resumen>,
    /// Whether searches use it (a weight above 0 and a generation).
    pub activo: bool,
    /// The last learning's failure on this node, if it failed.
    pub ultimo_error: Option<String>,
}

struct Generation {
    version: u64,
    trained_at: DateTime<Utc>,
    summary: Resumen,
}

/// The job and the generation serving: see the module docs.
pub struct ClickLearner {
    db: Db,
    index: Arc<SearchIndex>,
    settings: LearningSettings,
    current: RwLock<Option<Generation>>,
    learning: tokio::sync::Mutex<()>,
    last_error: Mutex<Option<String>>,
}

impl ClickLearner {
    pub fn new(db: Db, index: Arc<SearchIndex>, settings: &LearningSettings) -> Self {
        Self {
            db,
            index,
            settings: settings.clone(),
            current: RwLock::new(None),
            learning: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
        }
    }

    /// Serves the newest stored generation now, then keeps up in the background: it
    /// learns every `learning_interval_secs` (when the newest is that old) and loads
    /// what other nodes learned. The task ends with the server.
    pub async fn start(self: &Arc<Self>) {
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %crate::error::chain(err.as_ref()), "stored click learning not loaded");
        }
        let weak = Arc::downgrade(self);
        let poll = Duration::from_secs(self.settings.learning_poll_secs.max(1));
        let interval = self.settings.learning_interval_secs;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(poll).await;
                let Some(this) = weak.upgrade() else { return };
                if let Err(err) = this.refresh().await {
                    tracing::warn!(error = %crate::error::chain(err.as_ref()), "stored click learning not loaded");
                }
                let due = interval > 0
                    && match newest(&this.db).await {
                        Ok(None) => true,
                        Ok(Some((_, at))) => (Utc::now() - at).num_seconds() >= interval as i64,
                        Err(_) => false,
                    };
                if due {
                    match this.learn().await {
                        Ok(_) | Err(LearnError::Elsewhere) => {}
                        Err(err) => {
                            tracing::warn!(error = %crate::error::chain(&err), "learning from clicks failed; the previous generation keeps serving")
                        }
                    }
                }
            }
        });
    }

    /// Learns from the events now, stores the generation and serves it.
    pub async fn learn(&self) -> Result<Estado, LearnError> {
        let _one = self.learning.lock().await;
        let embedder = self.index.embedder().clone();
        let result = learn_and_store(&self.db, Some(embedder), &self.settings).await;
        if !matches!(result, Err(LearnError::Elsewhere)) {
            *self.last_error.lock().expect("error lock") =
                result.as_ref().err().map(|e| crate::error::chain(e));
        }
        result?;
        self.refresh().await?;
        Ok(self.status())
    }

    /// Serves the newest stored generation when it is newer than the one serving.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some((newest, _)) = newest(&self.db).await? else {
            return Ok(());
        };
        let serving = self
            .current
            .read()
            .expect("generation lock")
            .as_ref()
            .map(|g| g.version);
        if serving.is_some_and(|v| v >= newest) {
            return Ok(());
        }
        let Some(row) = modelo_clics::Entity::find_by_id(newest as i64)
            .one(self.db.conn())
            .await?
        else {
            return Ok(());
        };
        let summary: Resumen = serde_json::from_value(row.resumen)?;
        let (trained_at, datos) = (row.created_at, row.datos);
        // With the weight at 0 searches never read the term: it is not built.
        if self.settings.clicks_weight > 0.0 {
            let settings = self.settings.clone();
            let embedder = self.index.embedder().id().to_owned();
            let dim = self.index.embedder().dim();
            let term = tokio::task::spawn_blocking(move || {
                let stored = artifact::decode(&datos)?;
                anyhow::Ok(LearnedClicks::new(stored, &settings, &embedder, dim)?)
            })
            .await??;
            self.index.set_learned(Some(Arc::new(term)));
        }
        *self.current.write().expect("generation lock") = Some(Generation {
            version: newest,
            trained_at,
            summary,
        });
        Ok(())
    }

    pub fn status(&self) -> Estado {
        let current = self.current.read().expect("generation lock");
        Estado {
            version: current.as_ref().map(|g| g.version),
            aprendido_at: current.as_ref().map(|g| g.trained_at),
            resumen: current.as_ref().map(|g| g.summary.clone()),
            activo: current.is_some() && self.settings.clicks_weight > 0.0,
            ultimo_error: self.last_error.lock().expect("error lock").clone(),
        }
    }
}

/// The newest stored generation's version and when it was learned.
async fn newest(db: &Db) -> Result<Option<(u64, DateTime<Utc>)>, sea_orm::DbErr> {
    let row: Option<(i64, DateTime<Utc>)> = modelo_clics::Entity::find()
        .select_only()
        .column(modelo_clics::Column::Id)
        .column(modelo_clics::Column::CreatedAt)
        .order_by_desc(modelo_clics::Column::Id)
        .into_tuple()
        .one(db.conn())
        .await?;
    Ok(row.map(|(id, at)| (id as u64, at)))
}

/// The summary of the stored generation `version`.
pub async fn summary(db: &Db, version: u64) -> anyhow::Result<Option<Resumen>> {
    let row = modelo_clics::Entity::find_by_id(version as i64)
        .select_only()
        .column(modelo_clics::Column::Resumen)
        .into_tuple::<serde_json::Value>()
        .one(db.conn())
        .await?;
    Ok(row.map(serde_json::from_value).transpose()?)
}

/// The fit's settings from the `learning` section.
pub fn fit_settings(settings: &LearningSettings) -> FitSettings {
    FitSettings {
        prior_strength: settings.clicks_prior_strength,
        min_clicks: settings.clicks_min_per_query,
    }
}

/// Reads the events of the window, fits the model, embeds its queries with
/// `embedder` (for borrowing), stores the generation and returns its version. Keeps
/// the previous generation and removes older ones.
pub async fn learn_and_store(
    db: &Db,
    embedder: Option<Arc<dyn Embedder>>,
    settings: &LearningSettings,
) -> Result<u64, LearnError> {
    let claim = db
        .claim(LEARNING_LOCK)
        .await?
        .ok_or(LearnError::Elsewhere)?;
    let started = Instant::now();
    let since = Utc::now() - chrono::Duration::days(i64::from(settings.learning_window_days));
    let sessions = read::sessions(db, since).await?;
    let fit = fit_settings(settings);
    let (sessions, model) = tokio::task::spawn_blocking(move || {
        let model = model::fit(&sessions, fit);
        (sessions, model)
    })
    .await
    .map_err(anyhow::Error::from)?;
    let vectors = match &embedder {
        Some(embedder) => embed_queries(embedder.clone(), &model).await?,
        None => vec![None; model.queries.len()],
    };
    let summary = Resumen {
        busquedas: sessions.searches(),
        clics_recibidos: sessions.clicks_seen(),
        clics_contados: sessions.clicks(),
        sesiones: sessions.len() as u64,
        consultas: model.queries.len() as u64,
        productos: model.queries.iter().map(|q| q.lifts.len() as u64).sum(),
        propensiones: model.propensities.clone(),
        atractivo_medio: model.mean,
        embedder: embedder.as_ref().map(|e| e.id().to_owned()),
        desde: since,
        segundos: started.elapsed().as_secs_f64(),
    };
    let stored = artifact::Stored {
        embedder: embedder
            .as_ref()
            .map(|e| e.id().to_owned())
            .unwrap_or_default(),
        model,
        vectors,
    };
    let bytes = tokio::task::spawn_blocking(move || artifact::encode(&stored))
        .await
        .map_err(anyhow::Error::from)?;
    let row = modelo_clics::ActiveModel {
        resumen: Set(serde_json::to_value(&summary).map_err(anyhow::Error::from)?),
        datos: Set(bytes),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let txn = db.write_claimed(claim).await?;
    let version = row.insert(&*txn).await?.id;
    modelo_clics::Entity::delete_many()
        .filter(modelo_clics::Column::Id.lt(version - 1))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    tracing::info!(
        version,
        searches = summary.busquedas,
        clicks = summary.clics_contados,
        queries = summary.consultas,
        seconds = summary.segundos,
        "learned from clicks"
    );
    Ok(version as u64)
}

async fn embed_queries(
    embedder: Arc<dyn Embedder>,
    model: &ClickModel,
) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
    let texts: Vec<String> = model.queries.iter().map(|q| q.query.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            vectors.extend(embedder.embed(&refs)?.into_iter().map(Some));
        }
        Ok(vectors)
    })
    .await?
}

/// Clicked queries a query never clicked may borrow from.
struct Neighbours {
    index: VectorIndex,
    /// By the key the index gives: the query's lifts at the borrowing weight.
    lifts: Vec<Arc<HashMap<i64, f32>>>,
}

/// A generation as searches use it: see the module docs.
pub struct LearnedClicks {
    exact: HashMap<String, Adjustments>,
    neighbours: Option<Neighbours>,
    similarity: f32,
}

impl LearnedClicks {
    /// The term of `stored` with the weights of `settings`; queries' vectors are used
    /// only when they come from `embedder` (the one searches use), of dimension `dim`.
    pub fn new(
        stored: artifact::Stored,
        settings: &LearningSettings,
        embedder: &str,
        dim: usize,
    ) -> anyhow::Result<Self> {
        let weight = settings.clicks_weight;
        let borrowed = weight * settings.clicks_neighbour_weight;
        let scaled = |lifts: &[(i64, f32)], by: f32| -> HashMap<i64, f32> {
            lifts.iter().map(|&(p, lift)| (p, lift * by)).collect()
        };
        let usable = stored.embedder == embedder
            && borrowed > 0.0
            && settings.clicks_neighbour_similarity <= 1.0;
        let mut neighbours = None;
        if usable {
            let mut keys = Vec::new();
            let mut flat = Vec::new();
            let mut lifts = Vec::new();
            for (query, vector) in stored.model.queries.iter().zip(&stored.vectors) {
                if let Some(vector) = vector.as_ref().filter(|v| v.len() == dim) {
                    keys.push(lifts.len() as i64);
                    flat.extend_from_slice(vector);
                    lifts.push(Arc::new(scaled(&query.lifts, borrowed)));
                }
            }
            if !keys.is_empty() {
                let index = VectorIndex::new(IndexKind::Flat, dim)?;
                index.upsert(&keys, &flat)?;
                neighbours = Some(Neighbours { index, lifts });
            }
        }
        let exact = stored
            .model
            .queries
            .iter()
            .map(|q| (q.query.clone(), Arc::new(scaled(&q.lifts, weight))))
            .collect();
        Ok(Self {
            exact,
            neighbours,
            similarity: settings.clicks_neighbour_similarity,
        })
    }
}

impl LearnedTerm for LearnedClicks {
    fn adjustments(&self, query: &str, vector: Option<&[f32]>) -> Option<Adjustments> {
        if let Some(found) = self.exact.get(query) {
            return Some(found.clone());
        }
        let (neighbours, vector) = (self.neighbours.as_ref()?, vector?);
        let close: Vec<(i64, f32)> = neighbours
            .index
            .search(vector, NEIGHBOURS, |_| true)
            .ok()?
            .into_iter()
            .filter(|(_, similarity)| *similarity >= self.similarity)
            .collect();
        let total: f32 = close.iter().map(|(_, s)| s).sum();
        if close.is_empty() || total <= 0.0 {
            return None;
        }
        let mut merged: HashMap<i64, f32> = HashMap::new();
        for (key, similarity) in close {
            for (product, lift) in neighbours.lifts[key as usize].iter() {
                *merged.entry(*product).or_default() += lift * similarity / total;
            }
        }
        Some(Arc::new(merged))
    }
}
