//! Order lines: SKU, name and unit price are copied from the product when ordered.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pedido_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pedido_id: i64,
    pub producto_id: i64,
    pub sku: String,
    pub nombre: String,
    pub cantidad: i64,
    pub precio_unitario_centavos: i64,
    pub subtotal_centavos: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::pedido::Entity",
        from = "Column::PedidoId",
        to = "super::pedido::Column::Id"
    )]
    Pedido,
    #[sea_orm(
        belongs_to = "super::producto::Entity",
        from = "Column::ProductoId",
        to = "super::producto::Column::Id"
    )]
    Producto,
}

impl Related<super::pedido::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Pedido.def()
    }
}

impl Related<super::producto::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Producto.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
