//! The event log (`eventos`): what customers did (searches, answers, product clicks,
//! ratings of answers, orders).
//!
//! Recording never slows the request that causes it: events go through a bounded
//! channel to one writer task that inserts them in batches. When the writer falls
//! behind by more than [`QUEUE`] events, new ones are dropped; drops, writes and
//! failed writes are counted ([`EventLog::counts`], shown in `/metrics`). The same
//! task deletes events older than the retention setting once an hour.
//!
//! A search is also remembered in memory ([`Recent`]) with the products it showed, so
//! that a click on one of them is checked at once, before its search reaches the
//! database.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::config::LearningSettings;
use crate::db::Db;
use crate::db::entities::evento;
use crate::shop::pedidos::Pedido;

/// Events waiting to be written at most.
const QUEUE: usize = 10_000;
/// Events written per transaction at most.
const BATCH: usize = 500;
/// Searches remembered in memory at most (the most recent).
const RECENT_SEARCHES: usize = 50_000;
/// How often old events are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// A search: its query, filters, the products shown and its latency.
pub const SEARCH: &str = "busqueda";
/// An answer in a conversation, with the product cards it showed.
pub const ANSWER: &str = "respuesta";
/// A click on a product shown by a search or an answer.
pub const CLICK: &str = "click_producto";
/// A customer's rating of an answer: useful or not, with an optional comment.
pub const RATING: &str = "valoracion";
/// An order, with what it is attributed to: the search it followed or the
/// conversation it was taken in.
pub const ORDER: &str = "pedido";
/// Every type of event.
pub const TYPES: [&str; 5] = [SEARCH, ANSWER, CLICK, RATING, ORDER];

/// How many events were written, dropped (the queue was full) and lost to a failed
/// write, since the start.
#[derive(Debug, Default)]
pub struct Counts {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// What the writer task is sent: an event, or a request to report once everything
/// sent before it is written.
enum Message {
    Event(&'static str, Value),
    Flush(oneshot::Sender<()>),
}

/// Where handlers record events; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    sender: mpsc::Sender<Message>,
    counts: Arc<Counts>,
    recent: Arc<Recent>,
}

impl EventLog {
    /// Starts the writer task on `db`, which also applies the retention.
    pub fn start(db: Db, settings: &LearningSettings) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        tokio::spawn(write_events(db.clone(), receiver, Arc::clone(&counts)));
        if settings.events_retention_days > 0 {
            tokio::spawn(apply_retention(db, settings.events_retention_days));
        }
        Self {
            sender,
            counts,
            recent: Arc::new(Recent::default()),
        }
    }

    /// Queues one event of type `tipo` (one of the constants of this module).
    pub fn record(&self, tipo: &'static str, datos: Value) {
        if self.sender.try_send(Message::Event(tipo, datos)).is_err() {
            let dropped = self.counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "event log is behind: events dropped");
            }
        }
    }

    /// Queues a search that showed `shown` (product ids, in their order), and
    /// remembers it until its clicks can be checked against the database.
    pub fn record_search(&self, id: &str, shown: Vec<i64>, datos: Value) {
        self.recent.remember(id, shown);
        self.record(SEARCH, datos);
    }

    /// Queues an order: its total and lines, the search it followed and the
    /// conversation it was taken in, where it has them; `canal` is `rest` or `agente`.
    pub fn record_order(&self, pedido: &Pedido, canal: &'static str) {
        let lineas: Vec<Value> = pedido
            .items
            .iter()
            .map(|l| {
                serde_json::json!({
                    "producto_id": l.producto_id,
                    "cantidad": l.cantidad,
                    "subtotal_centavos": l.subtotal.cents(),
                })
            })
            .collect();
        self.record(
            ORDER,
            serde_json::json!({
                "pedido_id": pedido.id,
                "cliente_id": pedido.cliente_id,
                "total_centavos": pedido.total.cents(),
                "lineas": lineas,
                "busqueda_id": pedido.busqueda_id,
                "chat_id": pedido.conversacion_id,
                "canal": canal,
            }),
        );
    }

    /// The products a recent search of this node showed, in order.
    pub fn recent_search(&self, id: &str) -> Option<Vec<i64>> {
        self.recent.get(id)
    }

    /// Waits until every event recorded before the call is written (or its write
    /// failed): at shutdown, so that a stop loses none of the queue.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Written, dropped and failed events since the start.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// The most recent searches and the products each showed.
#[derive(Default)]
struct Recent {
    inner: Mutex<Remembered>,
}

/// Searches by id, and their ids oldest first (the next to forget).
#[derive(Default)]
struct Remembered {
    shown: HashMap<String, Vec<i64>>,
    order: VecDeque<String>,
}

impl Recent {
    fn remember(&self, id: &str, shown: Vec<i64>) {
        let mut guard = self.inner.lock().expect("recent searches lock");
        let remembered = &mut *guard;
        if remembered.order.len() >= RECENT_SEARCHES
            && let Some(oldest) = remembered.order.pop_front()
        {
            remembered.shown.remove(&oldest);
        }
        remembered.shown.insert(id.to_owned(), shown);
        remembered.order.push_back(id.to_owned());
    }

    fn get(&self, id: &str) -> Option<Vec<i64>> {
        self.inner
            .lock()
            .expect("recent searches lock")
            .shown
            .get(id)
            .cloned()
    }
}

/// The search or answer an event is (or came from), as stored in `ref_id`.
fn reference(datos: &Value) -> Option<String> {
    match (&datos["busqueda_id"], &datos["respuesta_id"]) {
        (Value::String(search), _) => Some(search.clone()),
        (_, Value::Number(answer)) => Some(answer.to_string()),
        _ => None,
    }
}

async fn write_events(db: Db, mut receiver: mpsc::Receiver<Message>, counts: Arc<Counts>) {
    let mut pending = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut pending, BATCH).await > 0 {
        let now = Utc::now();
        let mut rows = Vec::with_capacity(pending.len());
        let mut flushed = Vec::new();
        for message in pending.drain(..) {
            match message {
                Message::Event(tipo, datos) => rows.push(evento::ActiveModel {
                    tipo: Set(tipo.to_owned()),
                    chat_id: Set(datos["chat_id"].as_str().map(str::to_owned)),
                    producto_id: Set(datos["producto_id"].as_i64()),
                    ref_id: Set(reference(&datos)),
                    datos: Set(datos),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }),
                Message::Flush(done) => flushed.push(done),
            }
        }
        if !rows.is_empty() {
            let count = rows.len() as u64;
            let written = async {
                let txn = db.begin_write().await?;
                evento::Entity::insert_many(rows).exec(&*txn).await?;
                txn.commit().await
            }
            .await;
            match written {
                Ok(()) => counts.written.fetch_add(count, Ordering::Relaxed),
                Err(err) => {
                    tracing::warn!(error = %err, count, "events not written");
                    counts.failed.fetch_add(count, Ordering::Relaxed)
                }
            };
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// Deletes events older than `days`, now and then every [`RETENTION_EVERY`].
async fn apply_retention(db: Db, days: u32) {
    let mut every = tokio::time::interval(RETENTION_EVERY);
    loop {
        every.tick().await;
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        match delete_before(&db, before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "old events deleted"),
            Err(err) => tracing::warn!(error = %err, "old events could not be deleted"),
        }
    }
}

/// Deletes the events recorded before `before`; returns how many.
pub async fn delete_before(db: &Db, before: chrono::DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
    let txn = db.begin_write().await?;
    let deleted = evento::Entity::delete_many()
        .filter(evento::Column::CreatedAt.lt(before))
        .exec(&*txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(deleted)
}
