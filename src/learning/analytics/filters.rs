//! What staff send the analytics: the routes' query parameters, the range of days and
//! how it is grouped, the order of a list and its length, each checked into a value or
//! refused with the field at fault.

use chrono::{Datelike, Days, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;

use super::tables::{Day, product as p};
use crate::error::FieldError;

/// Days a range spans at most.
pub const MAX_DAYS: u64 = 731;
/// Days a range spans when `desde` is not given.
pub const DEFAULT_DAYS: u64 = 30;
/// Rows a list gives at most.
pub const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;

/// Query of `GET /api/analitica/serie`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FiltroSerie {
    /// First day (`2026-11-01`, UTC); by default 29 days before `hasta`.
    pub desde: Option<String>,
    /// Last day, included; by default today (UTC).
    pub hasta: Option<String>,
    /// `dia` (default) or `semana` (weeks from Monday).
    pub por: Option<String>,
}

/// Query of `GET /api/analitica/consultas` and `GET /api/analitica/productos`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FiltroLista {
    pub desde: Option<String>,
    pub hasta: Option<String>,
    /// Queries: `populares` (default), `sin_resultados` or `sin_clics`. Products:
    /// `clics` (default), `impresiones`, `unidades` or `ingresos`.
    pub orden: Option<String>,
    /// 1 to 100 (default 20).
    pub limite: Option<usize>,
}

/// Query of `GET /api/analitica/valoraciones`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FiltroValoraciones {
    pub desde: Option<String>,
    pub hasta: Option<String>,
    /// Comments given, the newest first: 1 to 100 (default 20).
    pub limite: Option<usize>,
}

/// A range of days, both included.
#[derive(Debug, Clone, Copy)]
pub struct Rango {
    pub desde: NaiveDate,
    pub hasta: NaiveDate,
}

impl Rango {
    pub fn parse(
        desde: Option<&str>,
        hasta: Option<&str>,
        today: NaiveDate,
    ) -> Result<Self, FieldError> {
        // Years of four digits: beyond them a range's arithmetic would leave chrono's.
        let date = |field: &'static str, text: &str| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .ok()
                .filter(|d| (1000..=9999).contains(&d.year()))
                .ok_or_else(|| FieldError::new(field, "es una fecha AAAA-MM-DD"))
        };
        let hasta = hasta
            .map(|h| date("hasta", h))
            .transpose()?
            .unwrap_or(today);
        let desde = match desde {
            Some(text) => date("desde", text)?,
            None => hasta - Days::new(DEFAULT_DAYS - 1),
        };
        if desde > hasta {
            return Err(FieldError::new("desde", "es posterior a hasta"));
        }
        if (hasta - desde).num_days() as u64 >= MAX_DAYS {
            return Err(FieldError::new(
                "desde",
                format!("el rango abarca hasta {MAX_DAYS} días"),
            ));
        }
        Ok(Self { desde, hasta })
    }

    pub fn days(&self) -> std::ops::RangeInclusive<Day> {
        day_number(self.desde)..=day_number(self.hasta)
    }
}

pub fn day_number(date: NaiveDate) -> Day {
    date.to_epoch_days()
}

pub fn date_of(day: Day) -> NaiveDate {
    NaiveDate::from_epoch_days(day).unwrap_or_default()
}

/// A list's length, checked.
pub fn limit(limite: Option<usize>) -> Result<usize, FieldError> {
    match limite.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(FieldError::new("limite", format!("va de 1 a {MAX_LIMIT}"))),
    }
}

/// How a series groups its days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Por {
    Dia,
    Semana,
}

impl Por {
    pub fn parse(text: Option<&str>) -> Result<Self, FieldError> {
        match text.map(str::trim) {
            None | Some("dia" | "día") => Ok(Self::Dia),
            Some("semana") => Ok(Self::Semana),
            Some(_) => Err(FieldError::new("por", "es dia o semana")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Dia => "dia",
            Self::Semana => "semana",
        }
    }

    /// The period `date` falls in, by its first day.
    pub fn period(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Dia => date,
            Self::Semana => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
        }
    }
}

/// Which queries a list gives, and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdenConsultas {
    /// The most searched.
    Populares,
    /// Those that found nothing, the most searched first: what the shop is missing.
    SinResultados,
    /// Those with results that nobody clicked, the most searched first.
    SinClics,
}

impl OrdenConsultas {
    pub fn parse(text: Option<&str>) -> Result<Self, FieldError> {
        match text.map(str::trim) {
            None | Some("populares") => Ok(Self::Populares),
            Some("sin_resultados") => Ok(Self::SinResultados),
            Some("sin_clics") => Ok(Self::SinClics),
            Some(_) => Err(FieldError::new(
                "orden",
                "es populares, sin_resultados o sin_clics",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Populares => "populares",
            Self::SinResultados => "sin_resultados",
            Self::SinClics => "sin_clics",
        }
    }
}

/// Which products a list gives: those with the most of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdenProductos {
    Clics,
    Impresiones,
    Unidades,
    Ingresos,
}

impl OrdenProductos {
    pub fn parse(text: Option<&str>) -> Result<Self, FieldError> {
        match text.map(str::trim) {
            None | Some("clics") => Ok(Self::Clics),
            Some("impresiones") => Ok(Self::Impresiones),
            Some("unidades") => Ok(Self::Unidades),
            Some("ingresos") => Ok(Self::Ingresos),
            Some(_) => Err(FieldError::new(
                "orden",
                "es clics, impresiones, unidades o ingresos",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Clics => "clics",
            Self::Impresiones => "impresiones",
            Self::Unidades => "unidades",
            Self::Ingresos => "ingresos",
        }
    }

    pub fn counter(self) -> usize {
        match self {
            Self::Clics => p::CLICS,
            Self::Impresiones => p::IMPRESIONES,
            Self::Unidades => p::UNIDADES,
            Self::Ingresos => p::INGRESOS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_range_defaults_to_the_last_thirty_days_and_refuses_bad_ones() {
        let today = date("2026-12-07");
        let r = Rango::parse(None, None, today).unwrap();
        assert_eq!((r.desde, r.hasta), (date("2026-11-08"), today));
        assert_eq!(r.days().count(), 30);
        assert_eq!(
            Rango::parse(Some("2026-12-08"), None, today)
                .unwrap_err()
                .field,
            "desde"
        );
        assert_eq!(
            Rango::parse(None, Some("7/12/2026"), today)
                .unwrap_err()
                .field,
            "hasta"
        );
        assert!(Rango::parse(Some("2020-01-01"), None, today).is_err());
        assert_eq!(
            Rango::parse(None, Some("+262143-12-31"), today)
                .unwrap_err()
                .field,
            "hasta"
        );
        assert_eq!(date_of(day_number(today)), today);
    }
}
