//! The running totals as tables (`analitica_dias`, `analitica_consultas`,
//! `analitica_productos`): what each counts, how a fold adds to them, and how a node
//! reads back the rows changed since it last looked.

use std::collections::HashMap;
use std::hash::Hash;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

/// A day: days since 1970-01-01, in UTC.
pub type Day = i32;

/// A day's totals, by the index of each counter.
pub mod day {
    pub const BUSQUEDAS: usize = 0;
    pub const SIN_RESULTADOS: usize = 1;
    pub const BUSQUEDAS_CON_CLIC: usize = 2;
    pub const CLICS: usize = 3;
    pub const SUMA_POSICIONES: usize = 4;
    pub const RESPUESTAS: usize = 5;
    pub const CONVERSACIONES: usize = 6;
    pub const CLICS_RESPUESTAS: usize = 7;
    pub const PEDIDOS: usize = 8;
    pub const PEDIDOS_BUSQUEDA: usize = 9;
    pub const PEDIDOS_CONVERSACION: usize = 10;
    pub const INGRESOS: usize = 11;
    pub const INGRESOS_BUSQUEDA: usize = 12;
    pub const INGRESOS_CONVERSACION: usize = 13;
    pub const UTILES: usize = 14;
    pub const NO_UTILES: usize = 15;
    pub const COUNTERS: usize = 16;
}

/// A query's totals on one day (clicks and orders count on the day of their search).
pub mod query {
    pub const BUSQUEDAS: usize = 0;
    pub const SIN_RESULTADOS: usize = 1;
    pub const BUSQUEDAS_CON_CLIC: usize = 2;
    pub const CLICS: usize = 3;
    pub const SUMA_POSICIONES: usize = 4;
    pub const PEDIDOS: usize = 5;
    pub const INGRESOS: usize = 6;
    pub const COUNTERS: usize = 7;
}

/// A product's totals on one day: shown (in a search or an answer), clicked, sold.
pub mod product {
    pub const IMPRESIONES: usize = 0;
    pub const CLICS: usize = 1;
    pub const SUMA_POSICIONES: usize = 2;
    pub const UNIDADES: usize = 3;
    pub const INGRESOS: usize = 4;
    pub const COUNTERS: usize = 5;
}

pub type DayTotals = [i64; day::COUNTERS];
pub type QueryTotals = [i64; query::COUNTERS];
pub type ProductTotals = [i64; product::COUNTERS];

/// A table of totals: its name, its key columns and its counters' columns, in the
/// order of the indexes above.
pub struct Table<const N: usize> {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub counters: [&'static str; N],
}

pub const DAYS: Table<{ day::COUNTERS }> = Table {
    name: "analitica_dias",
    keys: &["dia"],
    counters: [
        "busquedas",
        "sin_resultados",
        "busquedas_con_clic",
        "clics",
        "suma_posiciones",
        "respuestas",
        "conversaciones",
        "clics_respuestas",
        "pedidos",
        "pedidos_busqueda",
        "pedidos_conversacion",
        "ingresos_centavos",
        "ingresos_busqueda_centavos",
        "ingresos_conversacion_centavos",
        "valoraciones_utiles",
        "valoraciones_no_utiles",
    ],
};

pub const QUERIES: Table<{ query::COUNTERS }> = Table {
    name: "analitica_consultas",
    keys: &["dia", "consulta"],
    counters: [
        "busquedas",
        "sin_resultados",
        "busquedas_con_clic",
        "clics",
        "suma_posiciones",
        "pedidos",
        "ingresos_centavos",
    ],
};

pub const PRODUCTS: Table<{ product::COUNTERS }> = Table {
    name: "analitica_productos",
    keys: &["dia", "producto_id"],
    counters: [
        "impresiones",
        "clics",
        "suma_posiciones",
        "unidades",
        "ingresos_centavos",
    ],
};

/// The mark of how far the fold has read the event log.
pub const MARKS: &str = "analitica_marcas";
pub const MARK: &str = "analitica";

/// Rows written per statement at most (well under both databases' parameter limits).
const ROWS_PER_STATEMENT: usize = 400;

/// A key of a table of totals, as its columns' values and as read back from a row.
pub trait Key: Sized + Eq + Hash + Clone {
    fn values(&self) -> Vec<Value>;
    fn read(row: &QueryResult) -> Result<Self, DbErr>;
}

impl Key for Day {
    fn values(&self) -> Vec<Value> {
        vec![(*self).into()]
    }

    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        row.try_get("", "dia")
    }
}

impl Key for (Day, String) {
    fn values(&self) -> Vec<Value> {
        vec![self.0.into(), self.1.clone().into()]
    }

    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        Ok((row.try_get("", "dia")?, row.try_get("", "consulta")?))
    }
}

impl Key for (Day, i64) {
    fn values(&self) -> Vec<Value> {
        vec![self.0.into(), self.1.into()]
    }

    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        Ok((row.try_get("", "dia")?, row.try_get("", "producto_id")?))
    }
}

impl<const N: usize> Table<N> {
    /// Adds `deltas` to the table's rows (creating those missing), marking every row
    /// it touches with `lote`.
    pub async fn add<K: Key, C: ConnectionTrait>(
        &self,
        conn: &C,
        deltas: &HashMap<K, [i64; N]>,
        lote: i64,
    ) -> Result<(), DbErr> {
        let rows: Vec<_> = deltas.iter().collect();
        let table = Alias::new(self.name);
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = Query::insert();
            insert.into_table(table.clone()).columns(
                self.keys
                    .iter()
                    .chain(self.counters.iter())
                    .chain(["lote"].iter())
                    .map(|c| Alias::new(*c)),
            );
            for (key, counts) in chunk {
                let values: Vec<Expr> = key
                    .values()
                    .into_iter()
                    .chain(counts.iter().map(|c| Value::from(*c)))
                    .chain([Value::from(lote)])
                    .map(Expr::val)
                    .collect();
                insert.values_panic(values);
            }
            let mut conflict = OnConflict::columns(self.keys.iter().map(|c| Alias::new(*c)));
            conflict.values(self.counters.iter().map(|c| {
                (
                    Alias::new(*c),
                    Expr::col((table.clone(), Alias::new(*c)))
                        .add(Expr::col((Alias::new("excluded"), Alias::new(*c)))),
                )
            }));
            conflict.update_column(Alias::new("lote"));
            insert.on_conflict(conflict);
            conn.execute(&insert).await?;
        }
        Ok(())
    }

    /// The rows marked after `seen`: every row when `seen` is below every mark.
    pub async fn changed<K: Key, C: ConnectionTrait>(
        &self,
        conn: &C,
        seen: i64,
    ) -> Result<Vec<(K, [i64; N])>, DbErr> {
        let select = Query::select()
            .columns(
                self.keys
                    .iter()
                    .chain(self.counters.iter())
                    .map(|c| Alias::new(*c)),
            )
            .from(Alias::new(self.name))
            .and_where(Expr::col(Alias::new("lote")).gt(seen))
            .to_owned();
        let rows = conn.query_all(&select).await?;
        rows.iter()
            .map(|row| {
                let mut counts = [0i64; N];
                for (count, column) in counts.iter_mut().zip(self.counters) {
                    *count = row.try_get("", column)?;
                }
                Ok((K::read(row)?, counts))
            })
            .collect()
    }
}

/// Adds `other` to `into`, counter by counter.
pub fn add_to<const N: usize>(into: &mut [i64; N], other: &[i64; N]) {
    for (total, value) in into.iter_mut().zip(other) {
        *total += value;
    }
}
