//! Shop documents (envíos, devoluciones, garantías…): the source of the document
//! chunks in the search index.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "documentos")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Path relative to the ingested folder, e.g. `envios.md`.
    #[sea_orm(unique)]
    pub ruta: String,
    pub titulo: String,
    pub contenido: String,
    pub content_hash: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
