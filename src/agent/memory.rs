//! Conversation memory: `conversaciones` and `mensajes`. A conversation is created
//! the first time its `chat_id` is seen; every question and every answer (complete or
//! not) is stored, and the most recent ones feed the next answer, across restarts.
//! Staff read conversations through `/api/conversaciones`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AgentError;
use crate::db::Db;
use crate::db::entities::{conversacion, mensaje, pedido};
use crate::shop::types::{FieldError, Page, Paged};

/// Role of a customer's message.
pub const CUSTOMER: &str = "usuario";
/// Role of one of Tendero's answers.
pub const ASSISTANT: &str = mensaje::ASSISTANT;

/// Longest `chat_id` accepted.
const MAX_CHAT_ID: usize = 64;

/// One earlier message, as the next answer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub rol: String,
    pub contenido: String,
}

impl Turn {
    pub fn from_customer(&self) -> bool {
        self.rol == CUSTOMER
    }
}

/// A `chat_id` a client sent: 1 to 64 letters, digits, `-` or `_`.
pub fn parse_chat_id(raw: &str) -> Result<String, FieldError> {
    let id = raw.trim();
    let valid = !id.is_empty()
        && id.len() <= MAX_CHAT_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(FieldError::new(
            "chat_id",
            format!("debe tener de 1 a {MAX_CHAT_ID} letras, números, - o _"),
        ))
    }
}

/// A new conversation id.
pub fn new_chat_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One message to store.
#[derive(Debug, Default)]
pub struct NewMessage {
    pub rol: &'static str,
    pub contenido: String,
    pub estado: &'static str,
    pub generador: Option<&'static str>,
    pub fuentes: Option<serde_json::Value>,
    pub price_check: Option<serde_json::Value>,
    pub tiempos: Option<serde_json::Value>,
}

/// A conversation as staff see it in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversacion {
    pub id: String,
    /// `rest` or `socket`.
    pub canal: String,
    pub usuario_id: Option<i64>,
    pub cliente_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<conversacion::Model> for Conversacion {
    fn from(m: conversacion::Model) -> Self {
        Self {
            id: m.id,
            canal: m.canal,
            usuario_id: m.usuario_id,
            cliente_id: m.cliente_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One stored message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Mensaje {
    pub id: i64,
    /// `usuario` or `asistente`.
    pub rol: String,
    pub contenido: String,
    /// `completo`, `parcial`, `cancelado` or `error`.
    pub estado: String,
    pub generador: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub fuentes: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub price_check: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub tiempos: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// A whole conversation: its messages in order and the orders taken in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversacionCompleta {
    #[serde(flatten)]
    pub conversacion: Conversacion,
    pub mensajes: Vec<Mensaje>,
    pub pedidos: Vec<i64>,
}

/// Query of `GET /api/conversaciones`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiltroConversaciones {
    pub cliente_id: Option<i64>,
    /// 1 to 100 (default 20).
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// Conversations and their messages.
#[derive(Clone)]
pub struct Memory {
    db: Db,
}

impl Memory {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores a customer's question, creating its conversation when it does not exist
    /// yet, in one transaction; answers whether it created it.
    pub async fn add_question(
        &self,
        chat_id: &str,
        canal: &str,
        usuario_id: Option<i64>,
        text: &str,
    ) -> Result<bool, AgentError> {
        let db = &self.db;
        let now = Utc::now();
        let txn = db.begin_write().await?;
        let created = conversacion::Entity::find_by_id(chat_id.to_owned())
            .one(&*txn)
            .await?
            .is_none();
        conversacion::Entity::insert(conversacion::ActiveModel {
            id: Set(chat_id.to_owned()),
            canal: Set(canal.to_owned()),
            usuario_id: Set(usuario_id),
            cliente_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(conversacion::Column::Id)
                .update_column(conversacion::Column::UpdatedAt)
                .to_owned(),
        )
        .exec_without_returning(&*txn)
        .await?;
        mensaje::ActiveModel {
            conversacion_id: Set(chat_id.to_owned()),
            rol: Set(CUSTOMER.to_owned()),
            contenido: Set(text.to_owned()),
            estado: Set("completo".to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    /// The last `history` messages of a conversation, oldest first (none when it is new).
    pub async fn history(&self, chat_id: &str, history: usize) -> Result<Vec<Turn>, AgentError> {
        let db = &self.db;
        if history == 0 {
            return Ok(Vec::new());
        }
        let mut turns: Vec<Turn> = mensaje::Entity::find()
            .filter(mensaje::Column::ConversacionId.eq(chat_id))
            .filter(mensaje::Column::Contenido.ne(""))
            .order_by_desc(mensaje::Column::Id)
            .limit(history as u64)
            .all(db.conn())
            .await?
            .into_iter()
            .map(|m| Turn {
                rol: m.rol,
                contenido: m.contenido,
            })
            .collect();
        turns.reverse();
        Ok(turns)
    }

    /// Stores a message and marks the conversation as updated.
    pub async fn add(&self, chat_id: &str, message: NewMessage) -> Result<i64, AgentError> {
        let db = &self.db;
        let now = Utc::now();
        let txn = db.begin_write().await?;
        let row = mensaje::ActiveModel {
            conversacion_id: Set(chat_id.to_owned()),
            rol: Set(message.rol.to_owned()),
            contenido: Set(message.contenido),
            estado: Set(message.estado.to_owned()),
            generador: Set(message.generador.map(str::to_owned)),
            fuentes: Set(message.fuentes),
            price_check: Set(message.price_check),
            tiempos: Set(message.tiempos),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        conversacion::Entity::update_many()
            .col_expr(
                conversacion::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(conversacion::Column::Id.eq(chat_id))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        Ok(row.id)
    }

    /// Records the customer an order in this conversation was taken for.
    pub async fn set_customer(&self, chat_id: &str, cliente_id: i64) -> Result<(), AgentError> {
        let db = &self.db;
        conversacion::Entity::update_many()
            .col_expr(
                conversacion::Column::ClienteId,
                sea_orm::sea_query::Expr::value(cliente_id),
            )
            .filter(conversacion::Column::Id.eq(chat_id))
            .exec(db.conn())
            .await?;
        Ok(())
    }

    /// Conversations, most recently active first.
    pub async fn list(
        &self,
        filter: FiltroConversaciones,
    ) -> Result<Paged<Conversacion>, AgentError> {
        let db = &self.db;
        let page = Page::parse(filter.limit, filter.offset)?;
        let mut query = conversacion::Entity::find();
        if let Some(cliente_id) = filter.cliente_id {
            query = query.filter(conversacion::Column::ClienteId.eq(cliente_id));
        }
        let (items, total) = db
            .page_of(
                query,
                |q| {
                    q.order_by_desc(conversacion::Column::UpdatedAt)
                        .order_by_desc(conversacion::Column::Id)
                },
                page.limit,
                page.offset,
            )
            .await?;
        Ok(page.of(items.into_iter().map(Into::into).collect(), total))
    }

    /// One conversation with all its messages.
    pub async fn conversation(&self, chat_id: &str) -> Result<ConversacionCompleta, AgentError> {
        let db = &self.db;
        let conversation = conversacion::Entity::find_by_id(chat_id.to_owned())
            .one(db.conn())
            .await?
            .ok_or(AgentError::NotFound("conversación"))?;
        let mensajes = mensaje::Entity::find()
            .filter(mensaje::Column::ConversacionId.eq(chat_id))
            .order_by_asc(mensaje::Column::Id)
            .all(db.conn())
            .await?
            .into_iter()
            .map(|m| Mensaje {
                id: m.id,
                rol: m.rol,
                contenido: m.contenido,
                estado: m.estado,
                generador: m.generador,
                fuentes: m.fuentes,
                price_check: m.price_check,
                tiempos: m.tiempos,
                created_at: m.created_at,
            })
            .collect();
        let pedidos = pedido::Entity::find()
            .filter(pedido::Column::ConversacionId.eq(chat_id))
            .order_by_asc(pedido::Column::Id)
            .all(db.conn())
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        Ok(ConversacionCompleta {
            conversacion: conversation.into(),
            mensajes,
            pedidos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_chat_id;

    #[test]
    fn chat_ids_are_short_and_plain() {
        assert_eq!(parse_chat_id(" abc-123_X ").unwrap(), "abc-123_X");
        assert!(parse_chat_id("").is_err());
        assert!(parse_chat_id("a b").is_err());
        assert!(parse_chat_id("ñandú").is_err());
        assert!(parse_chat_id(&"x".repeat(65)).is_err());
    }
}
