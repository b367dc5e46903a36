//! The analytics' running totals: per day (`analitica_dias`), per day and query
//! (`analitica_consultas`) and per day and product (`analitica_productos`), folded from
//! the event log by the analytics job, and how far it has read the log
//! (`analitica_marcas`). Each total row carries the mark (`lote`) of the fold that last
//! changed it, so that a node reloads only what changed. An order keeps the search it
//! followed (`pedidos.busqueda_id`), to which the analytics attribute it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum AnaliticaDias {
    Table,
    Dia,
    Busquedas,
    SinResultados,
    BusquedasConClic,
    Clics,
    SumaPosiciones,
    Respuestas,
    Conversaciones,
    ClicsRespuestas,
    Pedidos,
    PedidosBusqueda,
    PedidosConversacion,
    IngresosCentavos,
    IngresosBusquedaCentavos,
    IngresosConversacionCentavos,
    ValoracionesUtiles,
    ValoracionesNoUtiles,
    Lote,
}

#[derive(DeriveIden)]
enum AnaliticaConsultas {
    Table,
    Dia,
    Consulta,
    Busquedas,
    SinResultados,
    BusquedasConClic,
    Clics,
    SumaPosiciones,
    Pedidos,
    IngresosCentavos,
    Lote,
}

#[derive(DeriveIden)]
enum AnaliticaProductos {
    Table,
    Dia,
    ProductoId,
    Impresiones,
    Clics,
    SumaPosiciones,
    Unidades,
    IngresosCentavos,
    Lote,
}

#[derive(DeriveIden)]
enum AnaliticaMarcas {
    Table,
    Nombre,
    EventoId,
}

#[derive(DeriveIden)]
enum Pedidos {
    Table,
    BusquedaId,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Pedidos::Table)
                    .add_column_if_not_exists(string_null(Pedidos::BusquedaId))
                    .to_owned(),
            )
            .await?;
        use AnaliticaDias as D;
        let mut days = Table::create();
        days.table(D::Table)
            .if_not_exists()
            .col(integer(D::Dia).primary_key());
        for column in [
            D::Busquedas,
            D::SinResultados,
            D::BusquedasConClic,
            D::Clics,
            D::SumaPosiciones,
            D::Respuestas,
            D::Conversaciones,
            D::ClicsRespuestas,
            D::Pedidos,
            D::PedidosBusqueda,
            D::PedidosConversacion,
            D::IngresosCentavos,
            D::IngresosBusquedaCentavos,
            D::IngresosConversacionCentavos,
            D::ValoracionesUtiles,
            D::ValoracionesNoUtiles,
        ] {
            days.col(big_integer(column).default(0));
        }
        days.col(big_integer(D::Lote));
        manager.create_table(days.to_owned()).await?;

        use AnaliticaConsultas as Q;
        let mut queries = Table::create();
        queries
            .table(Q::Table)
            .if_not_exists()
            .col(integer(Q::Dia))
            .col(string(Q::Consulta));
        for column in [
            Q::Busquedas,
            Q::SinResultados,
            Q::BusquedasConClic,
            Q::Clics,
            Q::SumaPosiciones,
            Q::Pedidos,
            Q::IngresosCentavos,
        ] {
            queries.col(big_integer(column).default(0));
        }
        queries
            .col(big_integer(Q::Lote))
            .primary_key(Index::create().col(Q::Dia).col(Q::Consulta));
        manager.create_table(queries.to_owned()).await?;

        use AnaliticaProductos as P;
        let mut products = Table::create();
        products
            .table(P::Table)
            .if_not_exists()
            .col(integer(P::Dia))
            .col(big_integer(P::ProductoId));
        for column in [
            P::Impresiones,
            P::Clics,
            P::SumaPosiciones,
            P::Unidades,
            P::IngresosCentavos,
        ] {
            products.col(big_integer(column).default(0));
        }
        products
            .col(big_integer(P::Lote))
            .primary_key(Index::create().col(P::Dia).col(P::ProductoId));
        manager.create_table(products.to_owned()).await?;

        // A node reloads the rows changed since it last looked.
        for (name, table) in [
            ("idx_analitica_dias_lote", D::Table.into_iden()),
            ("idx_analitica_consultas_lote", Q::Table.into_iden()),
            ("idx_analitica_productos_lote", P::Table.into_iden()),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .if_not_exists()
                        .table(table)
                        .col(Alias::new("lote"))
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AnaliticaMarcas::Table)
                    .if_not_exists()
                    .col(string(AnaliticaMarcas::Nombre).primary_key())
                    .col(big_integer(AnaliticaMarcas::EventoId))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AnaliticaMarcas::Table)
                    .columns([AnaliticaMarcas::Nombre, AnaliticaMarcas::EventoId])
                    .values_panic(["analitica".into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AnaliticaMarcas::Table.into_iden(),
            AnaliticaProductos::Table.into_iden(),
            AnaliticaConsultas::Table.into_iden(),
            AnaliticaDias::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Pedidos::Table)
                    .drop_column(Pedidos::BusquedaId)
                    .to_owned(),
            )
            .await
    }
}
