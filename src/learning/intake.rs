//! What clients send about what they were shown: clicks on products (from a search or
//! an answer) and ratings of answers, checked before they are recorded.
//!
//! A click names where it came from (a search's id or an answer's id) and the place
//! the product had there; a search, an answer or a place that does not exist, or a
//! product that was not at that place, is refused and nothing is stored. The client
//! is recorded as a salted hash of who they are (staff member, socket session or IP
//! address), so that the click learning can count each client once per query and
//! product per day without the log holding addresses.

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::events::{CLICK, EventLog, RATING};
use crate::db::Db;
use crate::db::entities::{evento, mensaje};
use crate::error::{Code, Coded, FieldError, INTERNAL_MESSAGE};

/// Longest comment kept with a rating, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// Why an event was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error("{0} no encontrada")]
    NotFound(String),
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for EventError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::NotFound(_) => Code::NotFound,
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

impl From<sea_orm::DbErr> for EventError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// Where a clicked product was shown.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A search, by the id its results came with.
    Search(String),
    /// An answer, by its id (`respuesta_id`).
    Answer(i64),
}

/// A click on a product: where it was shown and at which place (1 is the first).
#[derive(Debug, Clone)]
pub struct Click {
    pub origin: Origin,
    pub producto_id: i64,
    pub posicion: u32,
}

/// A rating of an answer.
#[derive(Debug, Clone)]
pub struct Rating {
    pub respuesta_id: i64,
    pub util: bool,
    pub comentario: Option<String>,
}

/// Who sent an event and through what, as the transport knows them.
#[derive(Debug, Clone)]
pub struct Sender<'a> {
    /// `rest` or `socket`.
    pub canal: &'static str,
    /// A staff member's id, a socket session or an IP address: only its hash is kept.
    pub key: &'a str,
}

/// Checks clicks and ratings and records them.
#[derive(Clone)]
pub struct Intake {
    db: Db,
    log: EventLog,
    salt: Vec<u8>,
}

/// What an answer showed: its conversation and, in order, its sources' product ids
/// (`None` for a passage of a document).
struct Shown {
    chat_id: Option<String>,
    items: Vec<Option<i64>>,
}

impl Intake {
    /// `salt` keeps the clients' hashes from being reversed (the server's secret).
    pub fn new(db: Db, log: EventLog, salt: &[u8]) -> Self {
        Self {
            db,
            log,
            salt: salt.to_vec(),
        }
    }

    /// The hash a client is recorded by.
    fn client(&self, key: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(&self.salt);
        hasher.update(key.as_bytes());
        let digest = hasher.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Records a search that showed `shown` (product ids, in order), with its client.
    pub fn record_search(&self, id: &str, shown: Vec<i64>, from: &Sender<'_>, mut datos: Value) {
        datos["canal"] = json!(from.canal);
        datos["cliente"] = json!(self.client(from.key));
        self.log.record_search(id, shown, datos);
    }

    /// Checks that `id` is a search this shop answered (an order names the search it
    /// followed), and gives it as it was handed out.
    pub async fn known_search(&self, id: &str) -> Result<String, EventError> {
        let id = parse_search_id(id)?;
        self.search_shown(&id).await?;
        Ok(id)
    }

    /// Records an order created over REST, with the search and the conversation it
    /// names.
    pub fn record_order(&self, pedido: &crate::shop::pedidos::Pedido) {
        self.log.record_order(pedido, "rest");
    }

    /// Records a click, or says why it cannot be.
    pub async fn click(&self, click: Click, from: &Sender<'_>) -> Result<(), EventError> {
        let (shown, chat_id, origin) = match &click.origin {
            Origin::Search(id) => {
                let id = parse_search_id(id)?;
                let shown = self.search_shown(&id).await?;
                (
                    shown.into_iter().map(Some).collect::<Vec<_>>(),
                    None,
                    json!({"busqueda_id": id}),
                )
            }
            Origin::Answer(id) => {
                let shown = self.answer_shown(*id).await?;
                (shown.items, shown.chat_id, json!({"respuesta_id": id}))
            }
        };
        if click.posicion == 0 || click.posicion as usize > shown.len() {
            return Err(FieldError::new(
                "posicion",
                format!(
                    "debe estar entre 1 y {} (los productos que se mostraron)",
                    shown.len()
                ),
            )
            .into());
        }
        if shown[click.posicion as usize - 1] != Some(click.producto_id) {
            return Err(FieldError::new(
                "producto_id",
                format!(
                    "el producto {} no se mostró en la posición {}",
                    click.producto_id, click.posicion
                ),
            )
            .into());
        }
        let mut datos = origin;
        datos["chat_id"] = json!(chat_id);
        datos["producto_id"] = json!(click.producto_id);
        datos["posicion"] = json!(click.posicion);
        datos["canal"] = json!(from.canal);
        datos["cliente"] = json!(self.client(from.key));
        self.log.record(CLICK, datos);
        Ok(())
    }

    /// Records a rating of an answer, or says why it cannot be.
    pub async fn rate(&self, rating: Rating, from: &Sender<'_>) -> Result<(), EventError> {
        let comentario = rating
            .comentario
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if let Some(comment) = comentario
            && comment.chars().count() > MAX_COMMENT_CHARS
        {
            return Err(FieldError::new(
                "comentario",
                format!("admite hasta {MAX_COMMENT_CHARS} caracteres"),
            )
            .into());
        }
        let shown = self.answer_shown(rating.respuesta_id).await?;
        self.log.record(
            RATING,
            json!({
                "respuesta_id": rating.respuesta_id,
                "chat_id": shown.chat_id,
                "util": rating.util,
                "comentario": comentario,
                "canal": from.canal,
                "cliente": self.client(from.key),
            }),
        );
        Ok(())
    }

    /// The products a search showed: from this node's memory, or from the log.
    async fn search_shown(&self, id: &str) -> Result<Vec<i64>, EventError> {
        if let Some(shown) = self.log.recent_search(id) {
            return Ok(shown);
        }
        use sea_orm::{ColumnTrait, QueryFilter};
        let row = evento::Entity::find()
            .filter(evento::Column::RefId.eq(id))
            .filter(evento::Column::Tipo.eq(super::events::SEARCH))
            .one(self.db.conn())
            .await?
            .ok_or_else(|| EventError::NotFound(format!("búsqueda {id}")))?;
        Ok(ids(&row.datos["productos"]))
    }

    /// What an answer showed, from its stored message.
    async fn answer_shown(&self, id: i64) -> Result<Shown, EventError> {
        let message = mensaje::Entity::find_by_id(id)
            .one(self.db.conn())
            .await?
            .filter(|m| m.rol == mensaje::ASSISTANT)
            .ok_or_else(|| EventError::NotFound(format!("respuesta {id}")))?;
        let items = message
            .fuentes
            .as_ref()
            .and_then(Value::as_array)
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| {
                        (s["tipo"] == "producto")
                            .then(|| s["id"].as_i64())
                            .flatten()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Shown {
            chat_id: Some(message.conversacion_id),
            items,
        })
    }
}

/// A search id as it was handed out (a UUID), or a clear error.
fn parse_search_id(id: &str) -> Result<String, EventError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| FieldError::new("busqueda_id", "no es el id de una búsqueda").into())
}

fn ids(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}
