//! The recommendation models' generations (`modelos_recomendacion`): each training
//! stores one, every node serves the newest, so a generation trained by one node or by
//! `tendero entrenar` reaches them all and survives a restart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum ModelosRecomendacion {
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
                    .table(ModelosRecomendacion::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ModelosRecomendacion::Id))
                    .col(json(ModelosRecomendacion::Resumen))
                    .col(blob(ModelosRecomendacion::Datos))
                    .col(timestamp_with_time_zone(ModelosRecomendacion::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModelosRecomendacion::Table).to_owned())
            .await
    }
}
