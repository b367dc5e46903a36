//! The shop's customers.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clientes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub nombre: String,
    #[sea_orm(unique)]
    pub email: String,
    pub telefono: Option<String>,
    pub direccion: Option<String>,
    pub ciudad: Option<String>,
    pub notas: Option<String>,
    pub activo: bool,
    /// Lower-cased, accent-folded name, email and phone digits, for `buscar`.
    pub busqueda: String,
    /// Set when deleted while orders still refer to the customer.
    pub eliminado_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::pedido::Entity")]
    Pedido,
}

impl Related<super::pedido::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Pedido.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
