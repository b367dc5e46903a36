//! Shop documents (the source of the document chunks in the search index) and the
//! event log (searches now; clicks, carts and feedback later).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Documentos {
    Table,
    Id,
    Ruta,
    Titulo,
    Contenido,
    ContentHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Eventos {
    Table,
    Id,
    Tipo,
    Datos,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Documentos::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Documentos::Id))
                    .col(string_uniq(Documentos::Ruta))
                    .col(string(Documentos::Titulo))
                    .col(text(Documentos::Contenido))
                    .col(string(Documentos::ContentHash))
                    .col(timestamp_with_time_zone(Documentos::CreatedAt))
                    .col(timestamp_with_time_zone(Documentos::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Eventos::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Eventos::Id))
                    .col(string(Eventos::Tipo))
                    .col(json(Eventos::Datos))
                    .col(timestamp_with_time_zone(Eventos::CreatedAt))
                    .col(timestamp_with_time_zone(Eventos::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_eventos_tipo_created_at")
                    .if_not_exists()
                    .table(Eventos::Table)
                    .col(Eventos::Tipo)
                    .col(Eventos::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Eventos::Table.into_iden(), Documentos::Table.into_iden()] {
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
