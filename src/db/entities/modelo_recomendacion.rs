//! One generation of the recommendation models: a summary (what it learnt from, its
//! weights and evaluation) as JSON, and the models themselves as bytes
//! (`recommend::artifact`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "modelos_recomendacion")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub resumen: Json,
    pub datos: Vec<u8>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
