//! What customers did: searches (`busqueda`), answers (`respuesta`), product clicks
//! (`click_producto`) and ratings of answers (`valoracion`), each with its data as
//! JSON, and the conversation, the product and the search or answer it concerns as
//! columns (copied from the data) for lookups.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "eventos")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tipo: String,
    pub datos: Json,
    /// `datos.chat_id`, when it has one.
    pub chat_id: Option<String>,
    /// `datos.producto_id`, when it has one.
    pub producto_id: Option<i64>,
    /// The search (its UUID) or the answer (its message's number) the event is, or
    /// came from: `datos.busqueda_id` or `datos.respuesta_id`.
    pub ref_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
