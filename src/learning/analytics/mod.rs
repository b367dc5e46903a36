//! Analytics for staff: what customers searched (and did not find), clicked, rated and
//! bought, per day or week, per query and per product.
//!
//! Nothing is computed from the raw log at request time. A fold ([`fold`]) adds each
//! event once to running totals per day, per day and query, and per day and product
//! (tables `analitica_*`, with the mark of the last event folded), in chunks, every
//! `analytics_interval_secs` and before a request answers (at most one chunk then, so
//! a backlog never holds a request). Every node keeps those totals in memory
//! ([`report::Cube`]) and reloads only the rows a fold changed since it last looked;
//! a request sums the days of its range in memory.
//!
//! A click and an order count on the day of the search they came from, in its query;
//! a product's figures count on the day they happened. Days are UTC days.

pub mod filters;
pub mod fold;
pub mod report;
pub mod tables;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::Db;
use crate::db::entities::{evento, producto};
use crate::error::{Code, Coded, FieldError, INTERNAL_MESSAGE};
use crate::learning::events::RATING;
use filters::{
    FiltroLista, FiltroSerie, FiltroValoraciones, OrdenConsultas, OrdenProductos, Por, Rango,
};
use fold::Folded;
use report::{Comentario, Consultas, Cube, ProductoAnalitica, Productos, Serie, Valoraciones};
use tables::{DAYS, Day, DayTotals, PRODUCTS, QUERIES, add_to};

/// Chunks a request folds at most before it answers.
const CHUNKS_PER_REQUEST: usize = 1;
/// Ratings read to find the newest comments, per comment asked for.
const RATINGS_PER_COMMENT: u64 = 5;

/// Why an analytics request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for AnalyticsError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::Internal(_) => Code::Internal,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Validation(err) => Some(err.field),
            Self::Internal(_) => None,
        }
    }
}

impl From<sea_orm::DbErr> for AnalyticsError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// The analytics service: folds the log, holds the totals, answers staff.
pub struct Analytics {
    db: Db,
    cube: RwLock<Cube>,
    /// One fold and reload at a time on this node.
    refreshing: tokio::sync::Mutex<()>,
    interval: Duration,
}

impl Analytics {
    /// `interval_secs`: seconds between two folds on their own (0: only when asked).
    pub fn new(db: Db, interval_secs: u64) -> Self {
        Self {
            db,
            cube: RwLock::new(Cube {
                seen: -1,
                ..Cube::default()
            }),
            refreshing: tokio::sync::Mutex::new(()),
            interval: Duration::from_secs(interval_secs),
        }
    }

    /// Loads the totals and then keeps folding every interval, in the background; the
    /// task ends with the server.
    pub fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let interval = self.interval;
        tokio::spawn(async move {
            if let Some(this) = weak.upgrade()
                && let Err(err) = this.refresh(Some(0)).await
            {
                tracing::warn!(error = %err, "analytics totals not loaded");
            }
            if interval.is_zero() {
                return;
            }
            let mut every = tokio::time::interval(interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(this) = weak.upgrade() else { return };
                // A chunk at a time, so that a request waits for one chunk at most.
                loop {
                    match this.refresh(Some(1)).await {
                        Ok(true) => break,
                        Ok(false) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "analytics fold failed");
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Folds the events not counted yet (at most `chunks` chunks; all with `None`),
    /// then reloads the totals that changed. Answers whether every settled event is
    /// counted.
    pub async fn refresh(&self, chunks: Option<usize>) -> Result<bool, sea_orm::DbErr> {
        let _one = self.refreshing.lock().await;
        let newest = fold::newest_settled(&self.db).await?;
        let mut folded = 0;
        let mut caught_up = false;
        while chunks.is_none_or(|max| folded < max) {
            folded += 1;
            match fold::fold_chunk(&self.db, newest).await? {
                Folded::To(mark) if mark < newest => {}
                Folded::To(_) | Folded::Nothing => {
                    caught_up = true;
                    break;
                }
                // Another node folded that chunk: read on from its mark.
                Folded::Raced => {}
            }
        }
        let mark = self.load().await?;
        Ok(caught_up || mark >= newest)
    }

    /// Reloads the rows folded since the last load; answers the mark loaded.
    async fn load(&self) -> Result<i64, sea_orm::DbErr> {
        let conn = self.db.conn();
        let seen = self.cube.read().expect("analytics lock").seen;
        let mark = fold::mark(conn).await?;
        if mark <= seen {
            return Ok(seen);
        }
        let days = DAYS.changed::<Day, _>(conn, seen).await?;
        let queries = QUERIES.changed::<(Day, String), _>(conn, seen).await?;
        let products = PRODUCTS.changed::<(Day, i64), _>(conn, seen).await?;
        let mut cube = self.cube.write().expect("analytics lock");
        for (day, totals) in days {
            cube.days.insert(day, totals);
        }
        for ((day, query), totals) in queries {
            let name = cube.intern(query);
            cube.queries.entry(day).or_default().insert(name, totals);
        }
        for ((day, id), totals) in products {
            cube.products.entry(day).or_default().insert(id, totals);
        }
        cube.seen = mark;
        Ok(mark)
    }

    /// Catches up before an answer, within what a request may spend.
    async fn fresh(&self) -> Result<bool, AnalyticsError> {
        Ok(self.refresh(Some(CHUNKS_PER_REQUEST)).await?)
    }

    fn today() -> chrono::NaiveDate {
        Utc::now().date_naive()
    }

    /// The figures per day or week over a range, and over the whole range.
    pub async fn serie(&self, filtro: &FiltroSerie) -> Result<Serie, AnalyticsError> {
        let rango = Rango::parse(
            filtro.desde.as_deref(),
            filtro.hasta.as_deref(),
            Self::today(),
        )?;
        let por = Por::parse(filtro.por.as_deref())?;
        let al_dia = self.fresh().await?;
        Ok(self
            .cube
            .read()
            .expect("analytics lock")
            .serie(rango, por, al_dia))
    }

    /// The popular queries, those without results or those without clicks.
    pub async fn consultas(&self, filtro: &FiltroLista) -> Result<Consultas, AnalyticsError> {
        let rango = Rango::parse(
            filtro.desde.as_deref(),
            filtro.hasta.as_deref(),
            Self::today(),
        )?;
        let orden = OrdenConsultas::parse(filtro.orden.as_deref())?;
        let limit = filters::limit(filtro.limite)?;
        let al_dia = self.fresh().await?;
        let totals = self.cube.read().expect("analytics lock").queries_in(rango);
        Ok(Consultas {
            desde: rango.desde,
            hasta: rango.hasta,
            orden: orden.name(),
            al_dia,
            consultas: report::rank_queries(totals, orden, limit),
        })
    }

    /// The products with the most clicks, impressions, units or revenue.
    pub async fn productos(&self, filtro: &FiltroLista) -> Result<Productos, AnalyticsError> {
        let rango = Rango::parse(
            filtro.desde.as_deref(),
            filtro.hasta.as_deref(),
            Self::today(),
        )?;
        let orden = OrdenProductos::parse(filtro.orden.as_deref())?;
        let limit = filters::limit(filtro.limite)?;
        let al_dia = self.fresh().await?;
        let totals = self.cube.read().expect("analytics lock").products_in(rango);
        let ranked = report::rank_products(totals, orden, limit);
        let names: std::collections::HashMap<i64, (String, String)> = producto::Entity::find()
            .select_only()
            .column(producto::Column::Id)
            .column(producto::Column::Sku)
            .column(producto::Column::Nombre)
            .filter(producto::Column::Id.is_in(ranked.iter().map(|(id, _)| *id)))
            .into_tuple::<(i64, String, String)>()
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|(id, sku, nombre)| (id, (sku, nombre)))
            .collect();
        Ok(Productos {
            desde: rango.desde,
            hasta: rango.hasta,
            orden: orden.name(),
            al_dia,
            productos: ranked
                .iter()
                .map(|(id, totals)| {
                    let (sku, nombre) = names.get(id).cloned().unzip();
                    ProductoAnalitica::new(*id, totals, sku, nombre)
                })
                .collect(),
        })
    }

    /// The ratings of answers over a range, and the newest comments.
    pub async fn valoraciones(
        &self,
        filtro: &FiltroValoraciones,
    ) -> Result<Valoraciones, AnalyticsError> {
        let rango = Rango::parse(
            filtro.desde.as_deref(),
            filtro.hasta.as_deref(),
            Self::today(),
        )?;
        let limit = filters::limit(filtro.limite)?;
        let al_dia = self.fresh().await?;
        let mut totals = DayTotals::default();
        {
            let cube = self.cube.read().expect("analytics lock");
            for (_, day) in cube.days.range(rango.days()) {
                add_to(&mut totals, day);
            }
        }
        let start = rango.desde.and_time(chrono::NaiveTime::MIN).and_utc();
        let end = (rango.hasta + chrono::Days::new(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        // The newest ratings, a page at a time, until `limit` comments are found (most
        // ratings come without one) or the range's ratings run out.
        let mut comentarios = Vec::with_capacity(limit);
        let page = limit as u64 * RATINGS_PER_COMMENT;
        let mut before: Option<i64> = None;
        while comentarios.len() < limit {
            let mut ratings = evento::Entity::find()
                .filter(evento::Column::Tipo.eq(RATING))
                .filter(evento::Column::CreatedAt.gte(start))
                .filter(evento::Column::CreatedAt.lt(end));
            if let Some(id) = before {
                ratings = ratings.filter(evento::Column::Id.lt(id));
            }
            let ratings = ratings
                .order_by_desc(evento::Column::Id)
                .limit(page)
                .all(self.db.conn())
                .await?;
            let Some(last) = ratings.last().map(|e| e.id) else {
                break;
            };
            let read = ratings.len() as u64;
            comentarios.extend(
                ratings
                    .into_iter()
                    .filter_map(|event| {
                        let comment = event.datos["comentario"].as_str()?.to_owned();
                        Some(Comentario {
                            respuesta_id: event.datos["respuesta_id"].as_i64(),
                            chat_id: event.chat_id,
                            util: event.datos["util"] == serde_json::Value::Bool(true),
                            comentario: comment,
                            fecha: event.created_at,
                        })
                    })
                    .take(limit - comentarios.len()),
            );
            if read < page {
                break;
            }
            before = Some(last);
        }
        Ok(Valoraciones::new(rango, al_dia, &totals, comentarios))
    }
}
