//! Order values: states and their moves, the request and response shapes, and the
//! parsing that turns a request into a validated [`OrderRequest`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::entities::{pedido, pedido_item};
use crate::shop::types::{FieldError, Money, Patch, Sku, parse_quantity, parse_text};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Estado {
    Pendiente,
    Confirmado,
    Enviado,
    Entregado,
    Cancelado,
}

impl Estado {
    pub fn as_str(self) -> &'static str {
        match self {
            Estado::Pendiente => "pendiente",
            Estado::Confirmado => "confirmado",
            Estado::Enviado => "enviado",
            Estado::Entregado => "entregado",
            Estado::Cancelado => "cancelado",
        }
    }

    pub fn parse(raw: &str) -> Option<Estado> {
        [
            Estado::Pendiente,
            Estado::Confirmado,
            Estado::Enviado,
            Estado::Entregado,
            Estado::Cancelado,
        ]
        .into_iter()
        .find(|e| e.as_str() == raw)
    }

    /// pendiente → confirmado → enviado → entregado; pendiente or confirmado →
    /// cancelado. A shipped order is not cancelled (it comes back as a return).
    pub fn can_move_to(self, next: Estado) -> bool {
        use Estado::*;
        matches!(
            (self, next),
            (Pendiente, Confirmado)
                | (Confirmado, Enviado)
                | (Enviado, Entregado)
                | (Pendiente, Cancelado)
                | (Confirmado, Cancelado)
        )
    }
}

impl fmt::Display for Estado {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Linea {
    pub id: i64,
    pub producto_id: i64,
    pub sku: String,
    pub nombre: String,
    pub cantidad: i64,
    #[schema(value_type = String, example = "49900.00")]
    pub precio_unitario: Money,
    #[schema(value_type = String, example = "99800.00")]
    pub subtotal: Money,
}

impl From<pedido_item::Model> for Linea {
    fn from(m: pedido_item::Model) -> Self {
        Self {
            id: m.id,
            producto_id: m.producto_id,
            sku: m.sku,
            nombre: m.nombre,
            cantidad: m.cantidad,
            precio_unitario: Money::from_cents(m.precio_unitario_centavos),
            subtotal: Money::from_cents(m.subtotal_centavos),
        }
    }
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pedido {
    pub id: i64,
    pub cliente_id: i64,
    pub estado: Estado,
    #[schema(value_type = String, example = "99800.00")]
    pub total: Money,
    pub notas: Option<String>,
    pub direccion_envio: Option<String>,
    /// The conversation the order was taken in (by the sales agent, or named when
    /// it was created over REST).
    pub conversacion_id: Option<String>,
    /// The search the order followed, when it was created naming one.
    pub busqueda_id: Option<String>,
    pub items: Vec<Linea>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Pedido {
    pub(super) fn new(m: pedido::Model, items: Vec<pedido_item::Model>) -> Self {
        Self {
            id: m.id,
            cliente_id: m.cliente_id,
            estado: Estado::parse(&m.estado).unwrap_or(Estado::Pendiente),
            total: Money::from_cents(m.total_centavos),
            notas: m.notas,
            direccion_envio: m.direccion_envio,
            conversacion_id: m.conversacion_id,
            busqueda_id: m.busqueda_id,
            items: items.into_iter().map(Into::into).collect(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One requested line: a product by id or by SKU, and a quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineaSolicitada {
    pub producto_id: Option<i64>,
    pub sku: Option<String>,
    pub cantidad: i64,
}

/// Body of `POST /api/pedidos`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NuevoPedido {
    pub cliente_id: i64,
    pub items: Vec<LineaSolicitada>,
    pub notas: Option<String>,
    pub direccion_envio: Option<String>,
    /// The search the customer placed this order after (the `busqueda_id` it
    /// returned): the order is attributed to it in the analytics.
    pub busqueda_id: Option<String>,
    /// The conversation the order was agreed in (a `chat_id`).
    pub conversacion_id: Option<String>,
}

/// Body of `PATCH /api/pedidos/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CambiosPedido {
    pub estado: Option<Estado>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notas: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub direccion_envio: Patch<String>,
}

/// Query of `GET /api/pedidos`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiltroPedidos {
    pub estado: Option<Estado>,
    pub cliente_id: Option<i64>,
    /// Created at or after: a date (`2026-01-31`) or an RFC 3339 instant.
    pub desde: Option<String>,
    /// Created at or before: a date (the whole day counts) or an RFC 3339 instant.
    pub hasta: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ProductRef {
    Id(i64),
    Sku(String),
}

/// A validated order request: merged lines, bounded quantities.
pub(super) struct OrderRequest {
    pub(super) cliente_id: i64,
    pub(super) lines: BTreeMap<ProductRef, i64>,
    pub(super) notas: Option<String>,
    pub(super) direccion_envio: Option<String>,
    pub(super) busqueda_id: Option<String>,
    pub(super) conversacion_id: Option<String>,
}

const MAX_LINES: usize = 100;

impl OrderRequest {
    pub(super) fn parse(input: NuevoPedido) -> Result<Self, FieldError> {
        if input.items.is_empty() {
            return Err(FieldError::new(
                "items",
                "un pedido necesita al menos una línea",
            ));
        }
        if input.items.len() > MAX_LINES {
            return Err(FieldError::new(
                "items",
                format!("un pedido admite como máximo {MAX_LINES} líneas"),
            ));
        }
        let mut lines = BTreeMap::new();
        for item in input.items {
            let product = match (item.producto_id, item.sku.as_deref()) {
                (Some(id), None) => ProductRef::Id(id),
                (None, Some(sku)) => ProductRef::Sku(Sku::parse("items.sku", sku)?.into_inner()),
                _ => {
                    return Err(FieldError::new(
                        "items",
                        "cada línea indica producto_id o sku (uno de los dos)",
                    ));
                }
            };
            let qty = parse_quantity("items.cantidad", item.cantidad)?;
            let total: &mut i64 = lines.entry(product).or_default();
            *total = parse_quantity("items.cantidad", *total + qty)?;
        }
        Ok(Self {
            cliente_id: input.cliente_id,
            lines,
            notas: parse_text("notas", input.notas.as_deref(), 2000)?,
            direccion_envio: parse_text("direccion_envio", input.direccion_envio.as_deref(), 500)?,
            busqueda_id: input
                .busqueda_id
                .as_deref()
                .map(|id| {
                    uuid::Uuid::parse_str(id.trim())
                        .map(|u| u.to_string())
                        .map_err(|_| FieldError::new("busqueda_id", "no es el id de una búsqueda"))
                })
                .transpose()?,
            conversacion_id: parse_text("conversacion_id", input.conversacion_id.as_deref(), 64)?,
        })
    }
}

/// Parses a `desde`/`hasta` bound: a date or an RFC 3339 instant.
fn parse_bound(
    field: &'static str,
    raw: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, FieldError> {
    let raw = raw.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Ok(instant.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            "usa una fecha AAAA-MM-DD o un instante RFC 3339 (2026-01-31T10:00:00Z)",
        )
    })?;
    let time = if end_of_day {
        date.and_hms_nano_opt(23, 59, 59, 999_999_999)
    } else {
        date.and_hms_opt(0, 0, 0)
    };
    Ok(time.expect("valid time of day").and_utc())
}

/// Inclusive bounds on creation time; `None` leaves that side open.
pub type DateRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Parses an inclusive `desde`..`hasta` range of creation times.
pub fn parse_range(desde: Option<&str>, hasta: Option<&str>) -> Result<DateRange, FieldError> {
    let desde = desde.map(|d| parse_bound("desde", d, false)).transpose()?;
    let hasta = hasta.map(|h| parse_bound("hasta", h, true)).transpose()?;
    if let (Some(d), Some(h)) = (desde, hasta)
        && d > h
    {
        return Err(FieldError::new("desde", "es posterior a hasta"));
    }
    Ok((desde, hasta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_allows_only_forward_moves_and_early_cancel() {
        use Estado::*;
        let all = [Pendiente, Confirmado, Enviado, Entregado, Cancelado];
        let allowed: Vec<(Estado, Estado)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_move_to(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pendiente, Confirmado),
                (Pendiente, Cancelado),
                (Confirmado, Enviado),
                (Confirmado, Cancelado),
                (Enviado, Entregado),
            ]
        );
    }

    #[test]
    fn order_requests_merge_lines_and_reject_ambiguity() {
        let req = OrderRequest::parse(NuevoPedido {
            cliente_id: 1,
            items: vec![
                LineaSolicitada {
                    producto_id: Some(3),
                    sku: None,
                    cantidad: 2,
                },
                LineaSolicitada {
                    producto_id: Some(3),
                    sku: None,
                    cantidad: 1,
                },
            ],
            ..NuevoPedido::default()
        })
        .unwrap();
        assert_eq!(req.lines.get(&ProductRef::Id(3)), Some(&3));

        let both = OrderRequest::parse(NuevoPedido {
            cliente_id: 1,
            items: vec![LineaSolicitada {
                producto_id: Some(3),
                sku: Some("A".into()),
                cantidad: 1,
            }],
            ..NuevoPedido::default()
        });
        assert!(both.is_err());
    }

    #[test]
    fn date_bounds_cover_whole_days() {
        let start = parse_bound("desde", "2026-01-31", false).unwrap();
        let end = parse_bound("hasta", "2026-01-31", true).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert!(end > start && end.date_naive() == start.date_naive());
        assert!(parse_bound("desde", "31/01/2026", false).is_err());
    }
}
