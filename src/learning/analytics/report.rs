//! The figures the analytics answer, computed from the totals a node holds in memory
//! ([`Cube`]); what staff send is read in [`super::filters`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::filters::{OrdenConsultas, OrdenProductos, Por, Rango, date_of};
use super::tables::{
    Day, DayTotals, ProductTotals, QueryTotals, add_to, day as d, product as p, query as q,
};
use crate::shop::types::Money;

/// The totals a node holds: per day, per day and query, per day and product, as of
/// the fold mark `seen`.
#[derive(Default)]
pub struct Cube {
    pub seen: i64,
    pub days: BTreeMap<Day, DayTotals>,
    pub queries: BTreeMap<Day, HashMap<Arc<str>, QueryTotals>>,
    pub products: BTreeMap<Day, HashMap<i64, ProductTotals>>,
    /// Each query's text once, shared by all its days.
    pub names: std::collections::HashSet<Arc<str>>,
}

/// `a / b`, rounded to four decimals; `None` when `b` is 0.
fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| (a as f64 / b as f64 * 10_000.0).round() / 10_000.0)
}

/// What customers did over a period (or the whole range).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cifras {
    pub busquedas: i64,
    /// Searches that found nothing.
    pub sin_resultados: i64,
    /// Searches with results that got at least one click.
    pub busquedas_con_clic: i64,
    /// Clicks on search results.
    pub clics: i64,
    /// `busquedas_con_clic` over the searches with results.
    pub ctr: Option<f64>,
    /// The mean place of a clicked search result (1 is the first).
    pub posicion_media_clic: Option<f64>,
    pub respuestas: i64,
    /// Conversations started.
    pub conversaciones: i64,
    /// Clicks on the product cards of answers.
    pub clics_respuestas: i64,
    pub pedidos: i64,
    /// Orders placed after a search (naming its `busqueda_id`).
    pub pedidos_busqueda: i64,
    /// Orders taken in a conversation.
    pub pedidos_conversacion: i64,
    #[schema(value_type = String, example = "1299000.00")]
    pub ingresos: Money,
    #[schema(value_type = String, example = "99800.00")]
    pub ingresos_busqueda: Money,
    #[schema(value_type = String, example = "49900.00")]
    pub ingresos_conversacion: Money,
    pub valoraciones_utiles: i64,
    pub valoraciones_no_utiles: i64,
    /// Useful ratings over all ratings.
    pub tasa_util: Option<f64>,
    /// Orders after a search over searches.
    pub conversion_busquedas: Option<f64>,
    /// Orders in a conversation over conversations started.
    pub conversion_conversaciones: Option<f64>,
}

impl From<&DayTotals> for Cifras {
    fn from(t: &DayTotals) -> Self {
        let with_results = t[d::BUSQUEDAS] - t[d::SIN_RESULTADOS];
        let ratings = t[d::UTILES] + t[d::NO_UTILES];
        Self {
            busquedas: t[d::BUSQUEDAS],
            sin_resultados: t[d::SIN_RESULTADOS],
            busquedas_con_clic: t[d::BUSQUEDAS_CON_CLIC],
            clics: t[d::CLICS],
            ctr: ratio(t[d::BUSQUEDAS_CON_CLIC], with_results),
            posicion_media_clic: ratio(t[d::SUMA_POSICIONES], t[d::CLICS]),
            respuestas: t[d::RESPUESTAS],
            conversaciones: t[d::CONVERSACIONES],
            clics_respuestas: t[d::CLICS_RESPUESTAS],
            pedidos: t[d::PEDIDOS],
            pedidos_busqueda: t[d::PEDIDOS_BUSQUEDA],
            pedidos_conversacion: t[d::PEDIDOS_CONVERSACION],
            ingresos: Money::from_cents(t[d::INGRESOS]),
            ingresos_busqueda: Money::from_cents(t[d::INGRESOS_BUSQUEDA]),
            ingresos_conversacion: Money::from_cents(t[d::INGRESOS_CONVERSACION]),
            valoraciones_utiles: t[d::UTILES],
            valoraciones_no_utiles: t[d::NO_UTILES],
            tasa_util: ratio(t[d::UTILES], ratings),
            conversion_busquedas: ratio(t[d::PEDIDOS_BUSQUEDA], t[d::BUSQUEDAS]),
            conversion_conversaciones: ratio(t[d::PEDIDOS_CONVERSACION], t[d::CONVERSACIONES]),
        }
    }
}

/// One period of a series: a day, or a week named by its Monday.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Punto {
    #[schema(value_type = String, example = "2026-12-07")]
    pub periodo: NaiveDate,
    #[serde(flatten)]
    pub cifras: Cifras,
}

/// `GET /api/analitica/serie`: the figures per day or week, and over the range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Serie {
    #[schema(value_type = String)]
    pub desde: NaiveDate,
    #[schema(value_type = String)]
    pub hasta: NaiveDate,
    /// `dia` or `semana`.
    pub por: &'static str,
    /// Whether every event recorded until a few seconds ago is counted.
    pub al_dia: bool,
    pub puntos: Vec<Punto>,
    pub total: Cifras,
}

impl Cube {
    /// The shared text of `query`.
    pub fn intern(&mut self, query: String) -> Arc<str> {
        if let Some(name) = self.names.get(query.as_str()) {
            return Arc::clone(name);
        }
        let name: Arc<str> = query.into();
        self.names.insert(Arc::clone(&name));
        name
    }

    pub fn serie(&self, rango: Rango, por: Por, al_dia: bool) -> Serie {
        let mut periods: BTreeMap<NaiveDate, DayTotals> = BTreeMap::new();
        let mut total = DayTotals::default();
        for day in rango.days() {
            let period = periods.entry(por.period(date_of(day))).or_default();
            if let Some(totals) = self.days.get(&day) {
                add_to(period, totals);
                add_to(&mut total, totals);
            }
        }
        Serie {
            desde: rango.desde,
            hasta: rango.hasta,
            por: por.name(),
            al_dia,
            puntos: periods
                .iter()
                .map(|(periodo, totals)| Punto {
                    periodo: *periodo,
                    cifras: totals.into(),
                })
                .collect(),
            total: (&total).into(),
        }
    }

    /// Every query searched in the range, with its totals over it.
    pub fn queries_in(&self, rango: Rango) -> HashMap<Arc<str>, QueryTotals> {
        let mut out: HashMap<Arc<str>, QueryTotals> = HashMap::new();
        for (_, queries) in self.queries.range(rango.days()) {
            for (key, totals) in queries {
                add_to(out.entry(Arc::clone(key)).or_default(), totals);
            }
        }
        out
    }

    /// Every product shown, clicked or sold in the range, with its totals over it.
    pub fn products_in(&self, rango: Rango) -> HashMap<i64, ProductTotals> {
        let mut out: HashMap<i64, ProductTotals> = HashMap::new();
        for (_, products) in self.products.range(rango.days()) {
            for (id, totals) in products {
                add_to(out.entry(*id).or_default(), totals);
            }
        }
        out
    }
}

/// A query's figures over the range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consulta {
    /// The query as counted: lower case, single spaces.
    pub consulta: String,
    pub busquedas: i64,
    pub sin_resultados: i64,
    pub busquedas_con_clic: i64,
    pub clics: i64,
    pub ctr: Option<f64>,
    pub posicion_media_clic: Option<f64>,
    /// Orders placed after one of its searches, and their revenue.
    pub pedidos: i64,
    #[schema(value_type = String, example = "99800.00")]
    pub ingresos: Money,
}

/// `GET /api/analitica/consultas`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consultas {
    #[schema(value_type = String)]
    pub desde: NaiveDate,
    #[schema(value_type = String)]
    pub hasta: NaiveDate,
    pub orden: &'static str,
    pub al_dia: bool,
    pub consultas: Vec<Consulta>,
}

/// The queries of `totals` a list gives, in its order, at most `limit`.
pub fn rank_queries(
    totals: HashMap<Arc<str>, QueryTotals>,
    orden: OrdenConsultas,
    limit: usize,
) -> Vec<Consulta> {
    let mut rows: Vec<(Arc<str>, QueryTotals)> = totals
        .into_iter()
        .filter(|(_, t)| match orden {
            OrdenConsultas::Populares => true,
            OrdenConsultas::SinResultados => t[q::SIN_RESULTADOS] > 0,
            OrdenConsultas::SinClics => t[q::BUSQUEDAS] > t[q::SIN_RESULTADOS] && t[q::CLICS] == 0,
        })
        .collect();
    let weight = |t: &QueryTotals| match orden {
        OrdenConsultas::SinResultados => t[q::SIN_RESULTADOS],
        _ => t[q::BUSQUEDAS],
    };
    rows.sort_unstable_by(|a, b| weight(&b.1).cmp(&weight(&a.1)).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(limit);
    rows.into_iter()
        .map(|(key, t)| Consulta {
            consulta: key.to_string(),
            busquedas: t[q::BUSQUEDAS],
            sin_resultados: t[q::SIN_RESULTADOS],
            busquedas_con_clic: t[q::BUSQUEDAS_CON_CLIC],
            clics: t[q::CLICS],
            ctr: ratio(
                t[q::BUSQUEDAS_CON_CLIC],
                t[q::BUSQUEDAS] - t[q::SIN_RESULTADOS],
            ),
            posicion_media_clic: ratio(t[q::SUMA_POSICIONES], t[q::CLICS]),
            pedidos: t[q::PEDIDOS],
            ingresos: Money::from_cents(t[q::INGRESOS]),
        })
        .collect()
}

/// The products of `totals` with the most of `orden` (none without any), at most
/// `limit`, with their totals.
pub fn rank_products(
    totals: HashMap<i64, ProductTotals>,
    orden: OrdenProductos,
    limit: usize,
) -> Vec<(i64, ProductTotals)> {
    let counter = orden.counter();
    let mut rows: Vec<(i64, ProductTotals)> =
        totals.into_iter().filter(|(_, t)| t[counter] > 0).collect();
    rows.sort_unstable_by(|a, b| b.1[counter].cmp(&a.1[counter]).then(a.0.cmp(&b.0)));
    rows.truncate(limit);
    rows
}

/// A product's figures over the range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductoAnalitica {
    pub producto_id: i64,
    /// `null` when the product no longer exists.
    pub sku: Option<String>,
    pub nombre: Option<String>,
    /// Times shown, in searches and answers.
    pub impresiones: i64,
    pub clics: i64,
    /// `clics` over `impresiones`.
    pub ctr: Option<f64>,
    pub posicion_media_clic: Option<f64>,
    pub unidades: i64,
    #[schema(value_type = String, example = "99800.00")]
    pub ingresos: Money,
}

impl ProductoAnalitica {
    pub fn new(id: i64, t: &ProductTotals, sku: Option<String>, nombre: Option<String>) -> Self {
        Self {
            producto_id: id,
            sku,
            nombre,
            impresiones: t[p::IMPRESIONES],
            clics: t[p::CLICS],
            ctr: ratio(t[p::CLICS], t[p::IMPRESIONES]),
            posicion_media_clic: ratio(t[p::SUMA_POSICIONES], t[p::CLICS]),
            unidades: t[p::UNIDADES],
            ingresos: Money::from_cents(t[p::INGRESOS]),
        }
    }
}

/// `GET /api/analitica/productos`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Productos {
    #[schema(value_type = String)]
    pub desde: NaiveDate,
    #[schema(value_type = String)]
    pub hasta: NaiveDate,
    pub orden: &'static str,
    pub al_dia: bool,
    pub productos: Vec<ProductoAnalitica>,
}

/// A rating with a comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comentario {
    pub respuesta_id: Option<i64>,
    pub chat_id: Option<String>,
    pub util: bool,
    pub comentario: String,
    #[schema(value_type = String)]
    pub fecha: chrono::DateTime<chrono::Utc>,
}

/// `GET /api/analitica/valoraciones`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Valoraciones {
    #[schema(value_type = String)]
    pub desde: NaiveDate,
    #[schema(value_type = String)]
    pub hasta: NaiveDate,
    pub al_dia: bool,
    pub utiles: i64,
    pub no_utiles: i64,
    pub tasa_util: Option<f64>,
    /// The newest comments first.
    pub comentarios: Vec<Comentario>,
}

impl Valoraciones {
    pub fn new(
        rango: Rango,
        al_dia: bool,
        totals: &DayTotals,
        comentarios: Vec<Comentario>,
    ) -> Self {
        Self {
            desde: rango.desde,
            hasta: rango.hasta,
            al_dia,
            utiles: totals[d::UTILES],
            no_utiles: totals[d::NO_UTILES],
            tasa_util: ratio(totals[d::UTILES], totals[d::UTILES] + totals[d::NO_UTILES]),
            comentarios,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::analytics::filters::day_number;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weeks_start_on_monday_and_empty_days_count_as_zero() {
        let mut cube = Cube::default();
        let monday = date("2026-11-30");
        let mut totals = DayTotals::default();
        totals[d::BUSQUEDAS] = 4;
        totals[d::BUSQUEDAS_CON_CLIC] = 1;
        cube.days.insert(day_number(monday), totals);
        cube.days.insert(day_number(date("2026-12-06")), totals);
        cube.days.insert(day_number(date("2026-12-07")), totals);
        let rango = Rango::parse(Some("2026-11-29"), Some("2026-12-07"), monday).unwrap();
        let days = cube.serie(rango, Por::Dia, true);
        assert_eq!(days.puntos.len(), 9);
        assert_eq!(days.puntos[0].cifras.busquedas, 0);
        assert_eq!(days.total.busquedas, 12);
        assert_eq!(days.total.ctr, Some(0.25));
        let weeks = cube.serie(rango, Por::Semana, true);
        let named: Vec<(NaiveDate, i64)> = weeks
            .puntos
            .iter()
            .map(|p| (p.periodo, p.cifras.busquedas))
            .collect();
        assert_eq!(
            named,
            vec![
                (date("2026-11-23"), 0),
                (date("2026-11-30"), 8),
                (date("2026-12-07"), 4)
            ]
        );
    }

    #[test]
    fn lists_keep_only_the_queries_they_are_about() {
        let mut totals: HashMap<Arc<str>, QueryTotals> = HashMap::new();
        let row = |searches, empty, clicks| {
            let mut t = QueryTotals::default();
            t[q::BUSQUEDAS] = searches;
            t[q::SIN_RESULTADOS] = empty;
            t[q::CLICS] = clicks;
            t[q::BUSQUEDAS_CON_CLIC] = clicks;
            t
        };
        totals.insert("taladro".into(), row(5, 0, 2));
        totals.insert("unicornio".into(), row(3, 3, 0));
        totals.insert("lija".into(), row(4, 0, 0));
        let names = |orden| -> Vec<String> {
            rank_queries(totals.clone(), orden, 10)
                .into_iter()
                .map(|c| c.consulta)
                .collect()
        };
        assert_eq!(
            names(OrdenConsultas::Populares),
            ["taladro", "lija", "unicornio"]
        );
        assert_eq!(names(OrdenConsultas::SinResultados), ["unicornio"]);
        assert_eq!(names(OrdenConsultas::SinClics), ["lija"]);
        assert_eq!(
            rank_queries(totals, OrdenConsultas::Populares, 1)[0].ctr,
            Some(0.4)
        );
    }
}
