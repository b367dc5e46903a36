//! The event log (`eventos`): what customers did (searches, answers, product clicks).
//!
//! Recording never slows the request that causes it: events go through a bounded
//! channel to one writer task that inserts them in batches. When the writer falls
//! behind by more than [`QUEUE`] events, new ones are dropped and counted in a
//! warning rather than holding a customer's request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use sea_orm::{EntityTrait, Set};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::db::Db;
use crate::db::entities::evento;

/// Events waiting to be written at most.
const QUEUE: usize = 10_000;
/// Events written per transaction at most.
const BATCH: usize = 500;

/// Where handlers record events; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    sender: mpsc::Sender<(String, Value)>,
    dropped: Arc<AtomicU64>,
}

impl EventLog {
    /// Starts the writer task on `db`.
    pub fn start(db: Db) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_events(db, receiver));
        Self {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues one event of type `tipo` (e.g. `busqueda`).
    pub fn record(&self, tipo: &str, datos: Value) {
        if self.sender.try_send((tipo.to_owned(), datos)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "event log is behind: events dropped");
            }
        }
    }
}

/// The products clicked in `chats`, most recent last, with when: at most `limit`
/// (the most recent ones).
pub async fn clicks(
    db: &Db,
    chats: &[String],
    limit: u64,
) -> Result<Vec<(i64, chrono::DateTime<Utc>)>, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    if chats.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<(Option<i64>, chrono::DateTime<Utc>)> = evento::Entity::find()
        .select_only()
        .column(evento::Column::ProductoId)
        .column(evento::Column::CreatedAt)
        .filter(evento::Column::ChatId.is_in(chats.iter().cloned()))
        .filter(evento::Column::Tipo.eq(CLICK))
        .filter(evento::Column::ProductoId.is_not_null())
        .order_by_desc(evento::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db.conn())
        .await?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .filter_map(|(product, at)| Some((product?, at)))
        .collect())
}

/// The event type of a product click.
pub const CLICK: &str = "click_producto";

async fn write_events(db: Db, mut receiver: mpsc::Receiver<(String, Value)>) {
    let mut pending = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut pending, BATCH).await > 0 {
        let now = Utc::now();
        let rows: Vec<evento::ActiveModel> = pending
            .drain(..)
            .map(|(tipo, datos)| evento::ActiveModel {
                tipo: Set(tipo),
                chat_id: Set(datos["chat_id"].as_str().map(str::to_owned)),
                producto_id: Set(datos["producto_id"].as_i64()),
                datos: Set(datos),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .collect();
        let count = rows.len();
        let written = async {
            let txn = db.begin_write().await?;
            evento::Entity::insert_many(rows).exec(&*txn).await?;
            txn.commit().await
        }
        .await;
        if let Err(err) = written {
            tracing::warn!(error = %err, count, "events not written");
        }
    }
}
