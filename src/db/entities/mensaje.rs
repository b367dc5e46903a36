//! One turn of a conversation: the customer's question or Tendero's answer.

use sea_orm::entity::prelude::*;

/// The role of Tendero's answers (`rol`).
pub const ASSISTANT: &str = "asistente";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mensajes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversacion_id: String,
    /// `usuario` (the customer) or `asistente`.
    pub rol: String,
    pub contenido: String,
    /// `completo`, or for answers cut short: `parcial` (the generator failed),
    /// `cancelado` (the customer stopped it) or `error`.
    pub estado: String,
    /// `ollama` or `extractive`, for answers.
    pub generador: Option<String>,
    /// The numbered sources the answer could cite.
    pub fuentes: Option<Json>,
    /// What the price guard found (see `agent::guard`).
    pub price_check: Option<Json>,
    pub tiempos: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::conversacion::Entity",
        from = "Column::ConversacionId",
        to = "super::conversacion::Column::Id"
    )]
    Conversacion,
}

impl Related<super::conversacion::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversacion.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
