//! The conversation and the product of an event as columns of `eventos` (they were
//! only inside `datos`), indexed, so that a conversation's or a customer's clicks are
//! read without scanning every event. Events recorded before this migration get them
//! from their `datos`.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Eventos {
    Table,
    ChatId,
    ProductoId,
    Tipo,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            string_null(Eventos::ChatId),
            big_integer_null(Eventos::ProductoId),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Eventos::Table)
                        .add_column_if_not_exists(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_eventos_chat_id_tipo")
                    .if_not_exists()
                    .table(Eventos::Table)
                    .col(Eventos::ChatId)
                    .col(Eventos::Tipo)
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE eventos SET chat_id = datos->>'chat_id', \
                 producto_id = CASE WHEN json_typeof(datos->'producto_id') = 'number' \
                 THEN (datos->>'producto_id')::numeric::bigint END"
            }
            _ => {
                "UPDATE eventos SET chat_id = json_extract(datos, '$.chat_id'), \
                 producto_id = CASE WHEN json_type(datos, '$.producto_id') = 'integer' \
                 THEN json_extract(datos, '$.producto_id') END"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_eventos_chat_id_tipo")
                    .table(Eventos::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Eventos::ChatId, Eventos::ProductoId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Eventos::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
