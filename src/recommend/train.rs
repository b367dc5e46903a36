//! Training from the shop's own orders and storing the result: the purchases read from
//! `pedidos` and `pedido_items` (cancelled orders left out), every catalog product
//! numbered (so products nobody bought yet can still be served by content and
//! popularity), the models trained off the runtime, the fusion weights chosen on the
//! shop's own temporal split when it has orders enough (else the ones chosen on Online
//! Retail), and the generation stored in `modelos_recomendacion` for every node.
//!
//! With PostgreSQL, one node trains at a time: a training holds a transaction-scoped
//! advisory lock, and a node that does not get it leaves the training to the other.

use std::time::Instant;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, Set,
};
use serde::{Deserialize, Serialize};

use super::artifact;
use super::data::{Dataset, Purchase};
use super::eval;
use super::fusion::Weights;
use super::models::{ModelSettings, Models};
use crate::db::Db;
use crate::db::entities::{modelo_recomendacion, pedido, pedido_item, producto};
use crate::shop::pedidos::Estado;

/// Orders a shop needs before its own validation split chooses the fusion weights.
pub const MIN_ORDERS_TO_TUNE: usize = 200;
/// The advisory lock nodes take to train (any number that no other lock uses).
const TRAINING_LOCK: i64 = 7_352_001;

/// The fusion weights per use.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Uses {
    /// "For you", own products included (repurchase counts).
    pub para_ti: Weights,
    /// "For you", only products new to the customer.
    pub nuevos: Weights,
}

impl Default for Uses {
    /// The weights Online Retail's validation split chose (docs/recommendations.md).
    fn default() -> Self {
        Self {
            para_ti: Weights([0.5, 0.0, 0.0, 0.0, 0.201]),
            nuevos: Weights([0.0, 1.0, 0.0, 0.0, 0.201]),
        }
    }
}

/// What a generation learnt from, and how it ranks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Seconds the training took (models and, with orders enough, the evaluation).
    pub seconds: f64,
    pub orders: usize,
    pub lines: usize,
    pub customers: usize,
    pub products: usize,
    pub uses: Uses,
    /// The shop's own temporal evaluation (`eval::TemporalReport`), with orders enough.
    pub evaluation: Option<serde_json::Value>,
    /// How the sequential model trained, when it was.
    #[serde(default)]
    pub sequential: Option<eval::SequentialTraining>,
}

/// One generation of the models, served until a newer one replaces it.
pub struct Trained {
    pub version: u64,
    pub trained_at: DateTime<Utc>,
    pub summary: Summary,
    /// The item numbering (product ids); no histories.
    pub items: Dataset,
    pub models: Models,
    /// How much the process's resident memory grew while this generation was read and
    /// decoded (where `/proc` tells it). In a process that has just trained, memory the
    /// training freed is reused and the growth understates the models' size; read it in
    /// a freshly started server.
    pub loaded_rss_bytes: Option<u64>,
}

/// Why no generation was stored.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("another node is training the recommendation models")]
    Elsewhere,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for TrainError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Failed(err.into())
    }
}

/// Every purchase in a non-cancelled order, and every product id of the catalog.
pub async fn purchases(db: &Db) -> Result<(Vec<Purchase>, Vec<i64>), sea_orm::DbErr> {
    let rows: Vec<(i64, i64, i64, DateTime<Utc>)> = pedido_item::Entity::find()
        .select_only()
        .column(pedido_item::Column::ProductoId)
        .column(pedido::Column::ClienteId)
        .column(pedido::Column::Id)
        .column(pedido::Column::CreatedAt)
        .join(JoinType::InnerJoin, pedido_item::Relation::Pedido.def())
        .filter(pedido::Column::Estado.ne(Estado::Cancelado.as_str()))
        .into_tuple()
        .all(db.conn())
        .await?;
    let purchases = rows
        .into_iter()
        .map(|(product, customer, order, at)| Purchase {
            customer,
            product,
            order,
            at: at.timestamp(),
        })
        .collect();
    let products: Vec<i64> = producto::Entity::find()
        .select_only()
        .column(producto::Column::Id)
        .filter(producto::Column::EliminadoAt.is_null())
        .into_tuple()
        .all(db.conn())
        .await?;
    Ok((purchases, products))
}

/// Trains every model on `purchases` (CPU-bound: call off the runtime); returns the
/// summary and the models' bytes.
pub fn train(
    purchases: &[Purchase],
    products: &[i64],
    settings: &ModelSettings,
) -> anyhow::Result<(Summary, Vec<u8>)> {
    let started = Instant::now();
    let mut data = Dataset::new(purchases, products);
    if data.now == 0 {
        data.now = Utc::now().timestamp();
    }
    let mut models = Models::train(&data, settings)?;
    let orders = data.baskets.len();
    let (uses, evaluation) = if orders >= MIN_ORDERS_TO_TUNE {
        let report = eval::temporal(purchases, settings, 10)?;
        models = models.with_recency(&data, report.recency_all.0, report.recency_all.1);
        let uses = Uses {
            para_ti: report.weights_all,
            nuevos: report.weights_new,
        };
        (uses, serde_json::to_value(&report).ok())
    } else {
        (Uses::default(), None)
    };
    let summary = Summary {
        seconds: started.elapsed().as_secs_f64(),
        orders,
        lines: data.lines(),
        customers: data.customers.len(),
        products: data.items(),
        uses,
        evaluation,
        sequential: eval::SequentialTraining::of(&models),
    };
    Ok((summary, artifact::encode(&data.products, &models)))
}

/// Trains from the orders and stores the generation; returns its version. Keeps the
/// previous generation and removes older ones.
pub async fn train_and_store(db: &Db, settings: &ModelSettings) -> Result<u64, TrainError> {
    let claim = db
        .claim(TRAINING_LOCK)
        .await?
        .ok_or(TrainError::Elsewhere)?;
    let (purchases, products) = purchases(db).await?;
    let settings = settings.clone();
    let (summary, bytes) =
        tokio::task::spawn_blocking(move || train(&purchases, &products, &settings))
            .await
            .map_err(anyhow::Error::from)??;
    let row = modelo_recomendacion::ActiveModel {
        resumen: Set(serde_json::to_value(&summary).map_err(anyhow::Error::from)?),
        datos: Set(bytes),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let txn = db.write_claimed(claim).await?;
    let version = store(&*txn, row).await?;
    txn.commit().await?;
    tracing::info!(
        version,
        orders = summary.orders,
        seconds = summary.seconds,
        "recommendation models trained"
    );
    Ok(version as u64)
}

/// Inserts a generation and removes all but it and the one before.
async fn store(
    conn: &impl ConnectionTrait,
    row: modelo_recomendacion::ActiveModel,
) -> Result<i64, sea_orm::DbErr> {
    let version = row.insert(conn).await?.id;
    modelo_recomendacion::Entity::delete_many()
        .filter(modelo_recomendacion::Column::Id.lt(version - 1))
        .exec(conn)
        .await?;
    Ok(version)
}

/// The newest stored generation's version and when it was trained.
pub async fn newest(db: &Db) -> Result<Option<(u64, DateTime<Utc>)>, sea_orm::DbErr> {
    let row: Option<(i64, DateTime<Utc>)> = modelo_recomendacion::Entity::find()
        .select_only()
        .column(modelo_recomendacion::Column::Id)
        .column(modelo_recomendacion::Column::CreatedAt)
        .order_by_desc(modelo_recomendacion::Column::Id)
        .into_tuple()
        .one(db.conn())
        .await?;
    Ok(row.map(|(id, at)| (id as u64, at)))
}

/// Reads and decodes a stored generation.
pub async fn load(db: &Db, version: u64) -> anyhow::Result<Option<Trained>> {
    let before = resident_bytes();
    let Some(row) = modelo_recomendacion::Entity::find_by_id(version as i64)
        .one(db.conn())
        .await?
    else {
        return Ok(None);
    };
    let summary: Summary = serde_json::from_value(row.resumen)?;
    let trained_at = row.created_at;
    // The stored bytes are dropped with the row once decoded.
    let (products, models) =
        tokio::task::spawn_blocking(move || artifact::decode(&row.datos)).await??;
    let items = Dataset::new(&[], &products);
    let loaded_rss_bytes = before
        .zip(resident_bytes())
        .map(|(before, after)| after.saturating_sub(before));
    Ok(Some(Trained {
        version,
        trained_at,
        summary,
        items,
        models,
        loaded_rss_bytes,
    }))
}

/// The process's resident memory (`VmRSS`), where `/proc` tells it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
