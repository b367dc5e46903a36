//! Orders. Lines live in `pedido_items`; the total is computed by the server.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pedidos")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cliente_id: i64,
    /// pendiente, confirmado, enviado, entregado or cancelado.
    pub estado: String,
    pub total_centavos: i64,
    pub notas: Option<String>,
    pub direccion_envio: Option<String>,
    /// The conversation this order was taken in.
    pub conversacion_id: Option<String>,
    /// The search this order followed, when its creator named one.
    pub busqueda_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::cliente::Entity",
        from = "Column::ClienteId",
        to = "super::cliente::Column::Id"
    )]
    Cliente,
    #[sea_orm(has_many = "super::pedido_item::Entity")]
    PedidoItem,
}

impl Related<super::cliente::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cliente.def()
    }
}

impl Related<super::pedido_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PedidoItem.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
