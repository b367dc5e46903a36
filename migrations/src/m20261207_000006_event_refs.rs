//! What an event belongs to as a column of `eventos`, indexed: a search's id (a UUID
//! returned with its results) or an answer's id (its message's number). A search or an
//! answer carries its own id; a click or a rating carries the id of the search or the
//! answer it came from, so that what was shown and what was done with it are read
//! together.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Eventos {
    Table,
    RefId,
    Tipo,
    CreatedAt,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Eventos::Table)
                    .add_column_if_not_exists(string_null(Eventos::RefId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_eventos_ref_id_tipo")
                    .if_not_exists()
                    .table(Eventos::Table)
                    .col(Eventos::RefId)
                    .col(Eventos::Tipo)
                    .to_owned(),
            )
            .await?;
        // Retention deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_eventos_created_at")
                    .if_not_exists()
                    .table(Eventos::Table)
                    .col(Eventos::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["idx_eventos_ref_id_tipo", "idx_eventos_created_at"] {
            manager
                .drop_index(Index::drop().name(index).table(Eventos::Table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Eventos::Table)
                    .drop_column(Eventos::RefId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
