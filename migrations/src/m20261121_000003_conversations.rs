//! Conversations with customers (`conversaciones`), their messages (`mensajes`), and
//! the conversation an order was taken in (`pedidos.conversacion_id`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Conversaciones {
    Table,
    Id,
    Canal,
    UsuarioId,
    ClienteId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Mensajes {
    Table,
    Id,
    ConversacionId,
    Rol,
    Contenido,
    Estado,
    Generador,
    Fuentes,
    PriceCheck,
    Tiempos,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Pedidos {
    Table,
    ConversacionId,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversaciones::Table)
                    .if_not_exists()
                    .col(string(Conversaciones::Id).primary_key())
                    .col(string(Conversaciones::Canal))
                    .col(big_integer_null(Conversaciones::UsuarioId))
                    .col(big_integer_null(Conversaciones::ClienteId))
                    .col(timestamp_with_time_zone(Conversaciones::CreatedAt))
                    .col(timestamp_with_time_zone(Conversaciones::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversaciones_updated_at")
                    .if_not_exists()
                    .table(Conversaciones::Table)
                    .col(Conversaciones::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Mensajes::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Mensajes::Id))
                    .col(string(Mensajes::ConversacionId))
                    .col(string(Mensajes::Rol))
                    .col(text(Mensajes::Contenido))
                    .col(string(Mensajes::Estado))
                    .col(string_null(Mensajes::Generador))
                    .col(json_null(Mensajes::Fuentes))
                    .col(json_null(Mensajes::PriceCheck))
                    .col(json_null(Mensajes::Tiempos))
                    .col(timestamp_with_time_zone(Mensajes::CreatedAt))
                    .col(timestamp_with_time_zone(Mensajes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mensajes_conversacion")
                            .from(Mensajes::Table, Mensajes::ConversacionId)
                            .to(Conversaciones::Table, Conversaciones::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mensajes_conversacion")
                    .if_not_exists()
                    .table(Mensajes::Table)
                    .col(Mensajes::ConversacionId)
                    .col(Mensajes::Id)
                    .to_owned(),
            )
            .await?;
        // SQLite cannot add a foreign key to an existing table: the link is an
        // indexed column, written only by the agent with an id it just read.
        manager
            .alter_table(
                Table::alter()
                    .table(Pedidos::Table)
                    .add_column(string_null(Pedidos::ConversacionId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_pedidos_conversacion")
                    .if_not_exists()
                    .table(Pedidos::Table)
                    .col(Pedidos::ConversacionId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_pedidos_conversacion")
                    .table(Pedidos::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Pedidos::Table)
                    .drop_column(Pedidos::ConversacionId)
                    .to_owned(),
            )
            .await?;
        for table in [
            Mensajes::Table.into_iden(),
            Conversaciones::Table.into_iden(),
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
