//! One generation of what the ranking learned from clicks: a summary (what it read,
//! the place propensities) as JSON, and the learned terms as bytes
//! (`learning::clicks::artifact`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "modelos_clics")]
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
