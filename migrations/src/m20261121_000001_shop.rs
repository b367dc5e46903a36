//! The shop: staff users, customers, products, orders and order lines.
//!
//! Money is BIGINT cents; timestamps are `timestamptz` (text in RFC 3339 on SQLite),
//! always written by the application in UTC.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Usuarios {
    Table,
    Id,
    Email,
    Nombre,
    PasswordHash,
    Rol,
    Activo,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Clientes {
    Table,
    Id,
    Nombre,
    Email,
    Telefono,
    Direccion,
    Ciudad,
    Notas,
    Activo,
    Busqueda,
    EliminadoAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Productos {
    Table,
    Id,
    Sku,
    Nombre,
    Descripcion,
    Categoria,
    PrecioCentavos,
    Stock,
    Atributos,
    Activo,
    EliminadoAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Pedidos {
    Table,
    Id,
    ClienteId,
    Estado,
    TotalCentavos,
    Notas,
    DireccionEnvio,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PedidoItems {
    Table,
    Id,
    PedidoId,
    ProductoId,
    Sku,
    Nombre,
    Cantidad,
    PrecioUnitarioCentavos,
    SubtotalCentavos,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

fn index(name: &str, table: impl IntoIden, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).if_not_exists().table(table);
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Usuarios::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Usuarios::Id))
                    .col(string_uniq(Usuarios::Email))
                    .col(string(Usuarios::Nombre))
                    .col(string(Usuarios::PasswordHash))
                    .col(string(Usuarios::Rol))
                    .col(boolean(Usuarios::Activo).default(true))
                    .col(timestamp_with_time_zone(Usuarios::CreatedAt))
                    .col(timestamp_with_time_zone(Usuarios::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clientes::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Clientes::Id))
                    .col(string(Clientes::Nombre))
                    .col(string_uniq(Clientes::Email))
                    .col(string_null(Clientes::Telefono))
                    .col(string_null(Clientes::Direccion))
                    .col(string_null(Clientes::Ciudad))
                    .col(text_null(Clientes::Notas))
                    .col(boolean(Clientes::Activo).default(true))
                    .col(text(Clientes::Busqueda))
                    .col(timestamp_with_time_zone_null(Clientes::EliminadoAt))
                    .col(timestamp_with_time_zone(Clientes::CreatedAt))
                    .col(timestamp_with_time_zone(Clientes::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_clientes_created_at",
                Clientes::Table,
                &["created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Productos::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Productos::Id))
                    .col(string_uniq(Productos::Sku))
                    .col(string(Productos::Nombre))
                    .col(text_null(Productos::Descripcion))
                    .col(string(Productos::Categoria))
                    .col(big_integer(Productos::PrecioCentavos))
                    .col(big_integer(Productos::Stock))
                    .col(json(Productos::Atributos))
                    .col(boolean(Productos::Activo).default(true))
                    .col(timestamp_with_time_zone_null(Productos::EliminadoAt))
                    .col(timestamp_with_time_zone(Productos::CreatedAt))
                    .col(timestamp_with_time_zone(Productos::UpdatedAt))
                    .check(Expr::col(Productos::Stock).gte(0))
                    .check(Expr::col(Productos::PrecioCentavos).gte(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_productos_categoria",
                Productos::Table,
                &["categoria"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Pedidos::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Pedidos::Id))
                    .col(big_integer(Pedidos::ClienteId))
                    .col(string(Pedidos::Estado))
                    .col(big_integer(Pedidos::TotalCentavos))
                    .col(text_null(Pedidos::Notas))
                    .col(text_null(Pedidos::DireccionEnvio))
                    .col(timestamp_with_time_zone(Pedidos::CreatedAt))
                    .col(timestamp_with_time_zone(Pedidos::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pedidos_cliente")
                            .from(Pedidos::Table, Pedidos::ClienteId)
                            .to(Clientes::Table, Clientes::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_pedidos_cliente",
                Pedidos::Table,
                &["cliente_id"],
            ))
            .await?;
        manager
            .create_index(index("idx_pedidos_estado", Pedidos::Table, &["estado"]))
            .await?;
        manager
            .create_index(index(
                "idx_pedidos_created_at",
                Pedidos::Table,
                &["created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PedidoItems::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PedidoItems::Id))
                    .col(big_integer(PedidoItems::PedidoId))
                    .col(big_integer(PedidoItems::ProductoId))
                    .col(string(PedidoItems::Sku))
                    .col(string(PedidoItems::Nombre))
                    .col(big_integer(PedidoItems::Cantidad))
                    .col(big_integer(PedidoItems::PrecioUnitarioCentavos))
                    .col(big_integer(PedidoItems::SubtotalCentavos))
                    .col(timestamp_with_time_zone(PedidoItems::CreatedAt))
                    .col(timestamp_with_time_zone(PedidoItems::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pedido_items_pedido")
                            .from(PedidoItems::Table, PedidoItems::PedidoId)
                            .to(Pedidos::Table, Pedidos::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pedido_items_producto")
                            .from(PedidoItems::Table, PedidoItems::ProductoId)
                            .to(Productos::Table, Productos::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_pedido_items_pedido",
                PedidoItems::Table,
                &["pedido_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_pedido_items_producto",
                PedidoItems::Table,
                &["producto_id"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PedidoItems::Table.into_iden(),
            Pedidos::Table.into_iden(),
            Productos::Table.into_iden(),
            Clientes::Table.into_iden(),
            Usuarios::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
