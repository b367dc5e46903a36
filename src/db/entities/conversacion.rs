//! Conversations with customers. The id is the `chat_id` clients see.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversaciones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Where it started: `rest` or `socket`.
    pub canal: String,
    /// The signed-in staff member who chatted, when there was one.
    pub usuario_id: Option<i64>,
    /// The customer an order in this conversation was taken for.
    pub cliente_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::mensaje::Entity")]
    Mensaje,
}

impl Related<super::mensaje::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Mensaje.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
