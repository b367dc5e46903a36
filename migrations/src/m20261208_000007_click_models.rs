//! What the ranking learned from clicks (`modelos_clics`): each learning stores one
//! generation, every node serves the newest, so what one node or `tendero aprender`
//! learned reaches them all and survives a restart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum ModelosClics {
    Table,
    Id,
    Resumen,
    Datos,
    CreatedAt,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ModelosClics::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ModelosClics::Id))
                    .col(json(ModelosClics::Resumen))
                    .col(blob(ModelosClics::Datos))
                    .col(timestamp_with_time_zone(ModelosClics::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModelosClics::Table).to_owned())
            .await
    }
}
