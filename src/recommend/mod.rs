//! Recommendations: products similar to a product, bought with it, and "for you",
//! from models trained in-process on the shop's own orders.
//!
//! [`Recommender`] owns the current generation of the models ([`train::Trained`]) and
//! swaps it whole when a newer one is stored: requests in flight keep the generation
//! they started with, and a training that fails leaves the previous one serving.
//! Generations are stored in the database (`train::train_and_store`), so one trained
//! by another node or by `tendero entrenar` reaches every node within
//! `TENDERO_RECOMMEND_POLL_SECS`, and a restart serves the last one at once. A
//! customer's history is read from the database at every request, so an order changes
//! their recommendations at once, without retraining. Every product shown is read back
//! from the database (`serve::pick`).
//!
//! The models (`models`), their fusion (`fusion`) and the offline evaluation (`eval`)
//! are plain computations over dense item numbers (`data`); `tendero eval
//! recomendaciones` runs the same code on an orders file.

mod activity;
pub mod artifact;
pub mod data;
pub mod eval;
pub mod fusion;
pub mod item_item;
pub mod linalg;
pub mod models;
pub mod orders_file;
pub mod sequential;
pub mod serve;
mod status;
pub mod train;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::config::RecommendSettings;
use crate::db::Db;
use crate::db::entities::{cliente, conversacion, producto};
use crate::error::{Code, Coded, FieldError, INTERNAL_MESSAGE};
use crate::retrieval::Search;
use crate::retrieval::filters::Filters;
use crate::retrieval::search::Mode;
use crate::retrieval::store::ChunkKind;
use data::Bought;
use models::ModelSettings;
use sequential::SequentialSettings;
use serve::{Candidate, Choice, Rows, append_popular, pick, rank_for};
pub use serve::{Motivo, Recomendacion};
pub use status::{EstadoRecomendaciones, Modelo};
use train::{TrainError, Trained};

/// Results per request at most, and customers per batch at most.
pub const MAX_K: usize = 100;
pub const MAX_BATCH: usize = 100;
/// Clicks read per conversation or customer at most (the most recent).
const MAX_CLICKS: u64 = 50;

/// Why a recommendation could not be given.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error("{0} no encontrado")]
    NotFound(String),
    #[error("otro nodo está entrenando los modelos de recomendación: reintenta en unos segundos")]
    TrainingElsewhere,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for RecommendError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::NotFound(_) => Code::NotFound,
            Self::TrainingElsewhere => Code::Busy,
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

impl From<sea_orm::DbErr> for RecommendError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// The models' settings from the `recommend` section.
pub fn model_settings(settings: &RecommendSettings) -> ModelSettings {
    ModelSettings {
        half_life_days: settings.recommend_half_life_days,
        ease_lambda: settings.recommend_ease_lambda,
        ease_max_items: settings.recommend_ease_max_items,
        min_support: settings.recommend_min_support,
        sequential: settings.recommend_sequential.then(|| SequentialSettings {
            epochs: settings.recommend_sequential_epochs,
            max_seconds: settings.recommend_sequential_max_secs,
            ..SequentialSettings::default()
        }),
        ..ModelSettings::default()
    }
}

/// What is asked of a "for you" list, already checked.
#[derive(Clone, Debug)]
pub struct Ask {
    pub k: usize,
    pub filters: Filters,
    /// Only products the customer has not bought.
    pub exclude_bought: bool,
}

impl Ask {
    /// Checks `k` (1 to [`MAX_K`]) and the price range.
    pub fn new(
        k: Option<usize>,
        filters: Filters,
        exclude_bought: bool,
    ) -> Result<Self, FieldError> {
        let k = k.unwrap_or(10);
        if !(1..=MAX_K).contains(&k) {
            return Err(FieldError::new(
                "k",
                format!("debe estar entre 1 y {MAX_K}"),
            ));
        }
        if let (Some(min), Some(max)) = (filters.precio_min, filters.precio_max)
            && min > max
        {
            return Err(FieldError::new(
                "precio_min",
                "no puede ser mayor que precio_max",
            ));
        }
        Ok(Self {
            k,
            filters: Filters {
                kind: Some(ChunkKind::Producto),
                ..filters
            },
            exclude_bought,
        })
    }

    fn choice<'a>(&'a self, exclude: &'a HashSet<i64>, not_category: Option<String>) -> Choice<'a> {
        Choice {
            k: self.k,
            filters: &self.filters,
            exclude,
            not_category,
        }
    }
}

/// The service: see the module docs.
pub struct Recommender {
    db: Db,
    search: Arc<Search>,
    settings: RecommendSettings,
    current: RwLock<Option<Arc<Trained>>>,
    training: Arc<tokio::sync::Mutex<()>>,
    last_error: Mutex<Option<String>>,
}

impl Recommender {
    pub fn new(db: Db, search: Arc<Search>, settings: &RecommendSettings) -> Self {
        Self {
            db,
            search,
            settings: settings.clone(),
            current: RwLock::new(None),
            training: Arc::new(tokio::sync::Mutex::new(())),
            last_error: Mutex::new(None),
        }
    }

    /// Serves the newest stored generation now (when there is one), then keeps up in
    /// the background: it trains when nothing is stored or the newest generation is
    /// older than `TENDERO_RECOMMEND_INTERVAL_SECS`, and loads what other nodes store.
    /// A first training holds the training lock from this call on, so a training asked
    /// for after it (`POST /api/recomendaciones/entrenar`) runs after it, never before.
    pub async fn start(self: &Arc<Self>) {
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %crate::error::chain(err.as_ref()), "stored recommendation models not loaded");
        }
        // The task holds the service weakly: it ends when the server does.
        let weak = Arc::downgrade(self);
        let first = if self.is_trained() {
            None
        } else {
            self.training.clone().try_lock_owned().ok()
        };
        let interval = self.settings.recommend_interval_secs;
        let poll = Duration::from_secs(self.settings.recommend_poll_secs.max(1));
        tokio::spawn(async move {
            if let Some(_held) = first {
                let Some(this) = weak.upgrade() else { return };
                this.log_failure(this.train_locked().await);
            }
            loop {
                tokio::time::sleep(poll).await;
                let Some(this) = weak.upgrade() else { return };
                if let Err(err) = this.refresh().await {
                    tracing::warn!(error = %crate::error::chain(err.as_ref()), "stored recommendation models not loaded");
                }
                let due = match train::newest(&this.db).await {
                    Ok(None) => true,
                    Ok(Some((_, at))) => {
                        interval > 0 && (chrono::Utc::now() - at).num_seconds() >= interval as i64
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not read the stored recommendation models");
                        false
                    }
                };
                if due {
                    this.log_failure(this.train().await);
                }
            }
        });
    }

    fn log_failure(&self, outcome: Result<u64, RecommendError>) {
        match outcome {
            Ok(_) | Err(RecommendError::TrainingElsewhere) => {}
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "recommendation training failed; the previous models keep serving")
            }
        }
    }

    /// Trains a new generation from the orders, stores it and serves it; on failure the
    /// current one keeps serving and the error is kept for [`Recommender::status`].
    /// One training at a time on this node (a call during another waits for it and
    /// trains again), and with PostgreSQL one in the cluster (`TrainingElsewhere`).
    #[tracing::instrument(skip(self))]
    pub async fn train(&self) -> Result<u64, RecommendError> {
        let _one = self.training.lock().await;
        self.train_locked().await
    }

    async fn train_locked(&self) -> Result<u64, RecommendError> {
        let result = match train::train_and_store(&self.db, &model_settings(&self.settings)).await {
            Ok(version) => self
                .refresh()
                .await
                .map(|_| version)
                .map_err(RecommendError::Internal),
            Err(TrainError::Elsewhere) => Err(RecommendError::TrainingElsewhere),
            Err(TrainError::Failed(err)) => Err(RecommendError::Internal(err)),
        };
        if !matches!(result, Err(RecommendError::TrainingElsewhere)) {
            *self.last_error.lock().expect("error lock") =
                result.as_ref().err().map(|e| crate::error::chain(e));
        }
        result
    }

    /// Serves the newest stored generation when it is newer than the one serving.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some((newest, _)) = train::newest(&self.db).await? else {
            return Ok(());
        };
        if self.status_version().is_some_and(|v| v >= newest) {
            return Ok(());
        }
        if let Some(trained) = train::load(&self.db, newest).await? {
            let mut current = self.current.write().expect("models lock");
            if current.as_ref().is_none_or(|c| c.version < trained.version) {
                *current = Some(Arc::new(trained));
            }
        }
        Ok(())
    }

    /// The generation serving now.
    pub fn status_version(&self) -> Option<u64> {
        self.trained().map(|t| t.version)
    }

    /// Whether a generation is serving.
    pub fn is_trained(&self) -> bool {
        self.current.read().expect("models lock").is_some()
    }

    fn trained(&self) -> Option<Arc<Trained>> {
        self.current.read().expect("models lock").clone()
    }

    /// Every one of `ids` is a customer, or the first that is not is named.
    async fn require_customers(&self, ids: &[i64]) -> Result<(), RecommendError> {
        let found: HashSet<i64> = cliente::Entity::find()
            .select_only()
            .column(cliente::Column::Id)
            .filter(cliente::Column::Id.is_in(ids.iter().copied()))
            .into_tuple::<i64>()
            .all(self.db.conn())
            .await?
            .into_iter()
            .collect();
        match ids.iter().find(|id| !found.contains(id)) {
            Some(missing) => Err(RecommendError::NotFound(format!("cliente {missing}"))),
            None => Ok(()),
        }
    }

    async fn require_product(&self, id: i64) -> Result<producto::Model, RecommendError> {
        producto::Entity::find_by_id(id)
            .one(self.db.conn())
            .await?
            .filter(|p| p.eliminado_at.is_none())
            .ok_or_else(|| RecommendError::NotFound(format!("producto {id}")))
    }

    /// "For you": the customer's own products again (unless excluded), what customers
    /// like them bought and what comes next after their purchases and clicks, the
    /// shop's popular products for the rest.
    #[tracing::instrument(skip(self, ask))]
    pub async fn for_customer(
        &self,
        customer: i64,
        ask: &Ask,
    ) -> Result<Vec<Recomendacion>, RecommendError> {
        let mut lists = self.for_customers(&[customer], ask).await?;
        Ok(lists.pop().unwrap_or_default())
    }

    /// "For you" for several customers, in the order given: their histories read in
    /// one query, their rankings computed in parallel off the runtime, and the product
    /// rows read once for all the lists.
    #[tracing::instrument(skip(self, ask), fields(customers = customers.len()))]
    pub async fn for_customers(
        &self,
        customers: &[i64],
        ask: &Ask,
    ) -> Result<Vec<Vec<Recomendacion>>, RecommendError> {
        self.require_customers(customers).await?;
        let mut rows = Rows::default();
        let Some(trained) = self.trained() else {
            let list = pick(&self.db, &[], &ask.choice(&HashSet::new(), None), &mut rows).await?;
            return Ok(vec![list; customers.len()]);
        };
        let histories = self.histories(customers, &trained).await?;
        let clicks = self.customers_clicks(customers, &trained).await?;
        // A customer asked for twice gets the same list twice.
        let inputs: Vec<_> = customers
            .iter()
            .map(|customer| {
                let (history, bought) = histories.get(customer).cloned().unwrap_or_default();
                let clicks = clicks.get(customer).cloned().unwrap_or_default();
                (history, clicks, bought)
            })
            .collect();
        let weights = if ask.exclude_bought {
            trained.summary.uses.nuevos
        } else {
            trained.summary.uses.para_ti
        };
        let exclude_bought = ask.exclude_bought;
        let ranker = Arc::clone(&trained);
        let (inputs, rankings) = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            let rankings: Vec<Vec<Candidate>> = inputs
                .par_iter()
                .map(|(history, clicks, _)| {
                    rank_for(&ranker, history, clicks, &weights, exclude_bought)
                })
                .collect();
            (inputs, rankings)
        })
        .await
        .map_err(|err| RecommendError::Internal(err.into()))?;
        let mut lists = Vec::with_capacity(customers.len());
        let none = HashSet::new();
        for ((_, _, bought), ranking) in inputs.iter().zip(&rankings) {
            let exclude = if exclude_bought { bought } else { &none };
            lists.push(pick(&self.db, ranking, &ask.choice(exclude, None), &mut rows).await?);
        }
        Ok(lists)
    }

    /// For a conversation: what goes with the products it asked about or was shown
    /// (`products`) and the products clicked in it, those products left out. When an
    /// order was taken in the conversation, its customer's purchases count too.
    #[tracing::instrument(skip(self, ask))]
    pub async fn for_conversation(
        &self,
        chat_id: Option<&str>,
        products: &[i64],
        ask: &Ask,
    ) -> Result<Vec<Recomendacion>, RecommendError> {
        let mut seen: HashSet<i64> = products.iter().copied().collect();
        let Some(trained) = self.trained() else {
            return Ok(pick(
                &self.db,
                &[],
                &ask.choice(&seen, None),
                &mut Rows::default(),
            )
            .await?);
        };
        let (history, mut steps) = match chat_id {
            None => (Vec::new(), Vec::new()),
            Some(chat) => {
                let chats = [chat.to_owned()];
                let customer = conversacion::Entity::find_by_id(chat)
                    .one(self.db.conn())
                    .await?
                    .and_then(|c| c.cliente_id);
                let history = match customer {
                    Some(customer) => self.history(customer, &trained).await?.0,
                    None => Vec::new(),
                };
                (history, self.clicks_in(&chats, &trained).await?)
            }
        };
        seen.extend(
            steps
                .iter()
                .map(|b| trained.items.products[b.item as usize]),
        );
        // What the question is about is the latest step.
        let now = Utc::now().timestamp();
        steps.extend(products.iter().filter_map(|&p| {
            Some(Bought {
                item: trained.items.item(p)?,
                order: u32::MAX,
                at: now,
            })
        }));
        let ranking = rank_for(
            &trained,
            &history,
            &steps,
            &trained.summary.uses.nuevos,
            true,
        );
        Ok(pick(
            &self.db,
            &ranking,
            &ask.choice(&seen, None),
            &mut Rows::default(),
        )
        .await?)
    }

    /// Products bought in the same orders as `product` (confidence among pairs with lift
    /// above 1 and enough orders), then those bought by the same customers, then the
    /// popular ones of other categories.
    #[tracing::instrument(skip(self, ask))]
    pub async fn complements(
        &self,
        product: i64,
        ask: &Ask,
    ) -> Result<Vec<Recomendacion>, RecommendError> {
        let row = self.require_product(product).await?;
        let mut ranking = Vec::new();
        if let Some(trained) = self.trained()
            && let Some(item) = trained.items.item(product)
        {
            for &(other, score) in trained.models.together.of(item) {
                ranking.push(Candidate {
                    product: trained.items.products[other as usize],
                    score,
                    motivo: Motivo::CompradosJuntos,
                });
            }
            for &(other, score) in trained.models.knn.of(item) {
                ranking.push(Candidate {
                    product: trained.items.products[other as usize],
                    score: score * 0.5,
                    motivo: Motivo::MismosClientes,
                });
            }
            append_popular(&trained, &mut ranking);
        }
        // A complement is something else: a second drill is not what goes with a drill
        // (unless the caller asks for that category).
        let not_category = ask
            .filters
            .categoria
            .is_none()
            .then(|| crate::text::fold(&row.categoria));
        Ok(pick(
            &self.db,
            &ranking,
            &ask.choice(&HashSet::from([product]), not_category),
            &mut Rows::default(),
        )
        .await?)
    }

    /// Products bought by the same customers as `product`, and products whose text is
    /// close to its own (what serves a product nobody has bought yet).
    #[tracing::instrument(skip(self, ask))]
    pub async fn similar(
        &self,
        product: i64,
        ask: &Ask,
    ) -> Result<Vec<Recomendacion>, RecommendError> {
        let row = self.require_product(product).await?;
        let text = format!("{} {}", row.nombre, row.categoria);
        let (_, hits) = self
            .search
            .products(
                &text,
                Mode::Hybrid,
                &ask.filters,
                (ask.k * 3).min(MAX_K) + 1,
            )
            .await
            .map_err(RecommendError::Internal)?;
        let mut ranking: Vec<Candidate> = Vec::new();
        let content: Vec<(i64, f32)> = hits
            .iter()
            .filter(|h| h.producto.id != product)
            .map(|h| (h.producto.id, h.score))
            .collect();
        let content_max = content
            .iter()
            .map(|c| c.1)
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let mut collaborative: Vec<(i64, f32)> = Vec::new();
        if let Some(trained) = self.trained()
            && let Some(item) = trained.items.item(product)
        {
            collaborative = trained
                .models
                .knn
                .of(item)
                .iter()
                .map(|&(o, s)| (trained.items.products[o as usize], s))
                .collect();
        }
        let collab_max = collaborative
            .iter()
            .map(|c| c.1)
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let mut scores: HashMap<i64, (f32, Motivo)> = HashMap::new();
        for (id, s) in content {
            scores.insert(id, (s / content_max, Motivo::Parecido));
        }
        for (id, s) in collaborative {
            let entry = scores.entry(id).or_insert((0.0, Motivo::MismosClientes));
            let collab = s / collab_max;
            if collab >= entry.0 {
                entry.1 = Motivo::MismosClientes;
            }
            entry.0 += collab;
        }
        ranking.extend(
            scores
                .into_iter()
                .map(|(product, (score, motivo))| Candidate {
                    product,
                    score,
                    motivo,
                }),
        );
        ranking.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.product.cmp(&b.product)));
        Ok(pick(
            &self.db,
            &ranking,
            &ask.choice(&HashSet::from([product]), None),
            &mut Rows::default(),
        )
        .await?)
    }
}
