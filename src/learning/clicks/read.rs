//! The sessions the click model learns from, read from the event log: each search
//! (its query as searched, its client, its day, the products it showed in order) and
//! each click on a search's result. Clicks on answers' cards are not read: a question
//! in a conversation is not a query another customer will type again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::model::{SessionKey, Sessions};
use crate::db::Db;
use crate::db::entities::evento;
use crate::learning::events::{CLICK, SEARCH};
use crate::retrieval::learned::query_key;

/// Events read per query.
const PAGE: u64 = 20_000;

/// The searches and clicks logged since `since`, as sessions.
pub async fn sessions(db: &Db, since: DateTime<Utc>) -> Result<Sessions, sea_orm::DbErr> {
    let mut sessions = Sessions::default();
    let mut searches: HashMap<String, SessionKey> = HashMap::new();
    let mut clicks: Vec<(String, i64)> = Vec::new();
    let mut after = 0i64;
    loop {
        let page = evento::Entity::find()
            .filter(evento::Column::Tipo.is_in([SEARCH, CLICK]))
            .filter(evento::Column::CreatedAt.gte(since))
            .filter(evento::Column::Id.gt(after))
            .order_by_asc(evento::Column::Id)
            .limit(PAGE)
            .all(db.conn())
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let full = page.len() as u64 == PAGE;
        for event in page {
            let Some(reference) = event.ref_id else {
                continue;
            };
            if event.tipo == CLICK {
                // A click on an answer's card names the answer, not a search.
                if let (Some(product), true) =
                    (event.producto_id, event.datos.get("busqueda_id").is_some())
                {
                    clicks.push((reference, product));
                }
                continue;
            }
            let datos = &event.datos;
            let searched = datos["corregida"]
                .as_str()
                .or_else(|| datos["q"].as_str())
                .map(query_key)
                .unwrap_or_default();
            if searched.is_empty() {
                continue;
            }
            let client = match datos["cliente"].as_str() {
                Some(client) => client.to_owned(),
                // Searches logged before clients were: each its own client.
                None => format!("busqueda:{reference}"),
            };
            let shown: Vec<i64> = datos["productos"]
                .as_array()
                .map(|ids| ids.iter().filter_map(serde_json::Value::as_i64).collect())
                .unwrap_or_default();
            let day = event.created_at.timestamp().div_euclid(86_400);
            let key = sessions.search(&searched, &client, day, &shown);
            searches.insert(reference, key);
        }
        if !full {
            break;
        }
    }
    for (search, product) in clicks {
        if let Some(key) = searches.get(&search) {
            sessions.click(*key, product);
        }
    }
    Ok(sessions)
}
