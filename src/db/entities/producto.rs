//! The catalog: the source of truth for prices and stock.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "productos")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub sku: String,
    pub nombre: String,
    pub descripcion: Option<String>,
    pub categoria: String,
    pub precio_centavos: i64,
    pub stock: i64,
    /// Extra attributes (color, talla, marca…) as a JSON object.
    pub atributos: Json,
    pub activo: bool,
    /// Set when deleted while orders still refer to the product.
    pub eliminado_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::pedido_item::Entity")]
    PedidoItem,
}

impl Related<super::pedido_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PedidoItem.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
