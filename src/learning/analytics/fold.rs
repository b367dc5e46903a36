//! The fold: the events past the mark, read in id order a chunk at a time, turned into
//! what they add to the totals, and written with the new mark in one transaction.
//!
//! Two nodes may fold at once: the mark is moved first in the transaction, and only
//! from the value the fold started at, so the second to get there finds it moved,
//! rolls back and adds nothing twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;

use super::tables::{
    DAYS, Day, DayTotals, MARK, MARKS, PRODUCTS, ProductTotals, QUERIES, QueryTotals, day, product,
    query,
};
use crate::db::Db;
use crate::db::entities::evento;
use crate::learning::events::{ANSWER, CLICK, ORDER, RATING, SEARCH};

/// Events read and folded per transaction at most.
pub const CHUNK: u64 = 10_000;
/// Ids asked for per lookup query.
const LOOKUP: usize = 500;
/// Longest query kept, in characters: longer ones are cut.
const MAX_QUERY_CHARS: usize = 200;
/// On PostgreSQL two nodes' event writers may commit out of id order: events younger
/// than this are left for the next fold, so that a late commit is not skipped.
const SETTLE: Duration = Duration::from_secs(3);

/// How a query is counted: lower case, single spaces, at most 200 characters.
pub fn query_key(q: &str) -> String {
    let words: Vec<&str> = q.split_whitespace().collect();
    words
        .join(" ")
        .to_lowercase()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect()
}

/// The day an instant falls on, in UTC.
pub fn day_of(at: DateTime<Utc>) -> Day {
    at.timestamp().div_euclid(86_400) as Day
}

/// What one chunk of events adds to the totals.
#[derive(Default)]
pub struct Deltas {
    pub days: HashMap<Day, DayTotals>,
    pub queries: HashMap<(Day, String), QueryTotals>,
    pub products: HashMap<(Day, i64), ProductTotals>,
}

impl Deltas {
    fn day(&mut self, day: Day) -> &mut DayTotals {
        self.days.entry(day).or_default()
    }

    fn query(&mut self, day: Day, key: &str) -> &mut QueryTotals {
        self.queries.entry((day, key.to_owned())).or_default()
    }

    fn product(&mut self, day: Day, id: i64) -> &mut ProductTotals {
        self.products.entry((day, id)).or_default()
    }
}

/// The mark: the id of the last event folded.
pub async fn mark<C: ConnectionTrait>(conn: &C) -> Result<i64, DbErr> {
    let select = Query::select()
        .column(Alias::new("evento_id"))
        .from(Alias::new(MARKS))
        .and_where(Expr::col(Alias::new("nombre")).eq(MARK))
        .to_owned();
    let row = conn
        .query_one(&select)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("{MARKS}.{MARK}")))?;
    row.try_get("", "evento_id")
}

/// The newest event the fold may read now (0 when there is none).
pub async fn newest_settled(db: &Db) -> Result<i64, DbErr> {
    let mut newest = evento::Entity::find()
        .select_only()
        .column_as(evento::Column::Id.max(), "newest");
    if db.backend() == DbBackend::Postgres {
        let settled = Utc::now() - chrono::Duration::from_std(SETTLE).unwrap_or_default();
        newest = newest.filter(evento::Column::CreatedAt.lte(settled));
    }
    let newest: Option<Option<i64>> = newest.into_tuple().one(db.conn()).await?;
    Ok(newest.flatten().unwrap_or(0))
}

/// What a fold of one chunk did.
pub enum Folded {
    /// The mark moved to this event id.
    To(i64),
    /// Nothing to read past the mark.
    Nothing,
    /// Another fold moved the mark first; nothing was added.
    Raced,
}

/// Folds the next chunk of events after the mark, up to `newest`.
pub async fn fold_chunk(db: &Db, newest: i64) -> Result<Folded, DbErr> {
    let from = mark(db.conn()).await?;
    if from >= newest {
        return Ok(Folded::Nothing);
    }
    let events = evento::Entity::find()
        .filter(evento::Column::Id.gt(from))
        .filter(evento::Column::Id.lte(newest))
        .order_by_asc(evento::Column::Id)
        .limit(CHUNK)
        .all(db.conn())
        .await?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(Folded::Nothing);
    };
    let deltas = deltas(db, &events, from).await?;

    let txn = db.begin_write().await?;
    let moved = txn
        .execute(
            &Query::update()
                .table(Alias::new(MARKS))
                .value(Alias::new("evento_id"), last)
                .and_where(Expr::col(Alias::new("nombre")).eq(MARK))
                .and_where(Expr::col(Alias::new("evento_id")).eq(from))
                .to_owned(),
        )
        .await?
        .rows_affected();
    if moved == 0 {
        return Ok(Folded::Raced);
    }
    DAYS.add(&*txn, &deltas.days, last).await?;
    QUERIES.add(&*txn, &deltas.queries, last).await?;
    PRODUCTS.add(&*txn, &deltas.products, last).await?;
    txn.commit().await?;
    Ok(Folded::To(last))
}

/// Where a search counts: its day and its query.
type Counted = (Day, String);

/// What `events` (all after the mark `from`) add to the totals.
async fn deltas(db: &Db, events: &[evento::Model], from: i64) -> Result<Deltas, DbErr> {
    // The searches clicks and orders name that are not in this chunk, and which of
    // the clicked searches had a click folded before.
    let mut searches: HashMap<String, Counted> = HashMap::new();
    let mut named: HashSet<String> = HashSet::new();
    let mut clicked: HashSet<String> = HashSet::new();
    for event in events {
        match event.tipo.as_str() {
            SEARCH => {
                if let Some(id) = &event.ref_id {
                    searches.insert(id.clone(), counted(event));
                }
            }
            CLICK | ORDER => {
                if let Some(id) = event.datos["busqueda_id"].as_str() {
                    if !searches.contains_key(id) {
                        named.insert(id.to_owned());
                    }
                    if event.tipo == CLICK {
                        clicked.insert(id.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let named: Vec<String> = named.into_iter().collect();
    for ids in named.chunks(LOOKUP) {
        let rows = evento::Entity::find()
            .filter(evento::Column::Tipo.eq(SEARCH))
            .filter(evento::Column::RefId.is_in(ids.iter().cloned()))
            .all(db.conn())
            .await?;
        for row in rows {
            if let Some(id) = &row.ref_id {
                searches.insert(id.clone(), counted(&row));
            }
        }
    }
    let clicked: Vec<String> = clicked.into_iter().collect();
    let mut had_click: HashSet<String> = HashSet::new();
    for ids in clicked.chunks(LOOKUP) {
        let rows: Vec<Option<String>> = evento::Entity::find()
            .select_only()
            .column(evento::Column::RefId)
            .distinct()
            .filter(evento::Column::Tipo.eq(CLICK))
            .filter(evento::Column::RefId.is_in(ids.iter().cloned()))
            .filter(evento::Column::Id.lte(from))
            .into_tuple()
            .all(db.conn())
            .await?;
        had_click.extend(rows.into_iter().flatten());
    }

    let mut out = Deltas::default();
    for event in events {
        let on = day_of(event.created_at);
        let datos = &event.datos;
        match event.tipo.as_str() {
            SEARCH => {
                let (on, key) = counted(event);
                let empty = datos["resultados"].as_i64() == Some(0);
                let totals = out.day(on);
                totals[day::BUSQUEDAS] += 1;
                totals[day::SIN_RESULTADOS] += i64::from(empty);
                let totals = out.query(on, &key);
                totals[query::BUSQUEDAS] += 1;
                totals[query::SIN_RESULTADOS] += i64::from(empty);
                for id in ids(&datos["productos"]) {
                    out.product(on, id)[product::IMPRESIONES] += 1;
                }
            }
            ANSWER => {
                let totals = out.day(on);
                totals[day::RESPUESTAS] += 1;
                totals[day::CONVERSACIONES] += i64::from(datos["nueva"] == Value::Bool(true));
                for id in ids(&datos["productos"]) {
                    out.product(on, id)[product::IMPRESIONES] += 1;
                }
            }
            CLICK => {
                let place = datos["posicion"].as_i64().unwrap_or(0);
                if let Some(id) = event.producto_id {
                    let totals = out.product(on, id);
                    totals[product::CLICS] += 1;
                    totals[product::SUMA_POSICIONES] += place;
                }
                if datos["respuesta_id"].is_number() {
                    out.day(on)[day::CLICS_RESPUESTAS] += 1;
                }
                let search = datos["busqueda_id"].as_str();
                if let Some((searched, key)) = search.and_then(|id| searches.get(id)) {
                    let first = had_click.insert(search.unwrap_or_default().to_owned());
                    let (searched, key) = (*searched, key.clone());
                    let totals = out.day(searched);
                    totals[day::CLICS] += 1;
                    totals[day::SUMA_POSICIONES] += place;
                    totals[day::BUSQUEDAS_CON_CLIC] += i64::from(first);
                    let totals = out.query(searched, &key);
                    totals[query::CLICS] += 1;
                    totals[query::SUMA_POSICIONES] += place;
                    totals[query::BUSQUEDAS_CON_CLIC] += i64::from(first);
                }
            }
            RATING => {
                let useful = datos["util"] == Value::Bool(true);
                let totals = out.day(on);
                totals[day::UTILES] += i64::from(useful);
                totals[day::NO_UTILES] += i64::from(!useful);
            }
            ORDER => {
                let total = datos["total_centavos"].as_i64().unwrap_or(0);
                let totals = out.day(on);
                totals[day::PEDIDOS] += 1;
                totals[day::INGRESOS] += total;
                if datos["chat_id"].is_string() {
                    totals[day::PEDIDOS_CONVERSACION] += 1;
                    totals[day::INGRESOS_CONVERSACION] += total;
                }
                let search = datos["busqueda_id"].as_str();
                if let Some((searched, key)) = search.and_then(|id| searches.get(id)) {
                    // Like its clicks, on the day of the search it followed.
                    let totals = out.day(*searched);
                    totals[day::PEDIDOS_BUSQUEDA] += 1;
                    totals[day::INGRESOS_BUSQUEDA] += total;
                    let totals = out.query(*searched, &key.clone());
                    totals[query::PEDIDOS] += 1;
                    totals[query::INGRESOS] += total;
                }
                for line in datos["lineas"].as_array().into_iter().flatten() {
                    if let Some(id) = line["producto_id"].as_i64() {
                        let totals = out.product(on, id);
                        totals[product::UNIDADES] += line["cantidad"].as_i64().unwrap_or(0);
                        totals[product::INGRESOS] +=
                            line["subtotal_centavos"].as_i64().unwrap_or(0);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A search's day and query.
fn counted(event: &evento::Model) -> Counted {
    (
        day_of(event.created_at),
        query_key(event.datos["q"].as_str().unwrap_or_default()),
    )
}

fn ids(value: &Value) -> impl Iterator<Item = i64> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
}
