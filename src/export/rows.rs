//! What each report contains: its columns, its filters, and keyset-paged reads.
//!
//! Pages are read by primary key (`WHERE id > last ORDER BY id LIMIT n`), so an export
//! of any size holds a few pages in memory, never keeps a cursor or a transaction open,
//! and costs the same on SQLite and PostgreSQL (the LIMIT keeps both planners on the
//! key index; unbounded key windows sent PostgreSQL to hash joins over whole tables).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, FromQueryResult, JoinType, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait,
};

use super::encode::{Cell, Record};
use crate::db::Db;
use crate::db::entities::{cliente, evento, pedido, pedido_item, producto};
use crate::shop::pedidos::Estado;
use crate::shop::types::Money;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Clientes,
    Productos,
    /// One row per order.
    Pedidos,
    /// One row per order line.
    PedidoLineas,
    /// The event log: searches, answers, clicks, ratings.
    Eventos,
}

pub const CLIENTE_COLUMNS: &[&str] = &[
    "id",
    "nombre",
    "email",
    "telefono",
    "direccion",
    "ciudad",
    "notas",
    "activo",
    "eliminado_at",
    "created_at",
    "updated_at",
];
pub const PRODUCTO_COLUMNS: &[&str] = &[
    "id",
    "sku",
    "nombre",
    "descripcion",
    "categoria",
    "precio",
    "stock",
    "atributos",
    "activo",
    "eliminado_at",
    "created_at",
    "updated_at",
];
pub const PEDIDO_COLUMNS: &[&str] = &[
    "id",
    "cliente_id",
    "cliente_nombre",
    "cliente_email",
    "estado",
    "total",
    "notas",
    "direccion_envio",
    "conversacion_id",
    "busqueda_id",
    "created_at",
    "updated_at",
];
pub const LINEA_COLUMNS: &[&str] = &[
    "pedido_id",
    "linea_id",
    "cliente_id",
    "cliente_nombre",
    "estado",
    "fecha",
    "producto_id",
    "sku",
    "nombre",
    "cantidad",
    "precio_unitario",
    "subtotal",
];

pub const EVENTO_COLUMNS: &[&str] = &[
    "id",
    "tipo",
    "chat_id",
    "producto_id",
    "ref_id",
    "datos",
    "created_at",
];

impl Report {
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Report::Clientes => CLIENTE_COLUMNS,
            Report::Productos => PRODUCTO_COLUMNS,
            Report::Pedidos => PEDIDO_COLUMNS,
            Report::PedidoLineas => LINEA_COLUMNS,
            Report::Eventos => EVENTO_COLUMNS,
        }
    }

    /// Base of file names, e.g. `pedidos-lineas`.
    pub fn slug(self) -> &'static str {
        match self {
            Report::Clientes => "clientes",
            Report::Productos => "productos",
            Report::Pedidos => "pedidos",
            Report::PedidoLineas => "pedidos-lineas",
            Report::Eventos => "eventos",
        }
    }
}

/// Row filters, already validated for the report they apply to.
#[derive(Debug, Clone, Default)]
pub struct ReportFilters {
    pub desde: Option<DateTime<Utc>>,
    pub hasta: Option<DateTime<Utc>>,
    pub estado: Option<Estado>,
    pub categoria: Option<String>,
    pub activo: Option<bool>,
    pub cliente_id: Option<i64>,
    /// Events of this type only.
    pub tipo: Option<String>,
}

impl Record for evento::Model {
    fn cell(&self, column: usize) -> Cell<'_> {
        match column {
            0 => Cell::Int(self.id),
            1 => Cell::Text(&self.tipo),
            2 => self.chat_id.as_deref().into(),
            3 => self.producto_id.map_or(Cell::Null, Cell::Int),
            4 => self.ref_id.as_deref().into(),
            5 => Cell::Json(&self.datos),
            _ => Cell::Time(self.created_at),
        }
    }
}

impl Record for cliente::Model {
    fn cell(&self, column: usize) -> Cell<'_> {
        match column {
            0 => Cell::Int(self.id),
            1 => Cell::Text(&self.nombre),
            2 => Cell::Text(&self.email),
            3 => self.telefono.as_deref().into(),
            4 => self.direccion.as_deref().into(),
            5 => self.ciudad.as_deref().into(),
            6 => self.notas.as_deref().into(),
            7 => Cell::Bool(self.activo),
            8 => self.eliminado_at.into(),
            9 => Cell::Time(self.created_at),
            _ => Cell::Time(self.updated_at),
        }
    }
}

impl Record for producto::Model {
    fn cell(&self, column: usize) -> Cell<'_> {
        match column {
            0 => Cell::Int(self.id),
            1 => Cell::Text(&self.sku),
            2 => Cell::Text(&self.nombre),
            3 => self.descripcion.as_deref().into(),
            4 => Cell::Text(&self.categoria),
            5 => Cell::Money(Money::from_cents(self.precio_centavos)),
            6 => Cell::Int(self.stock),
            7 => Cell::Json(&self.atributos),
            8 => Cell::Bool(self.activo),
            9 => self.eliminado_at.into(),
            10 => Cell::Time(self.created_at),
            _ => Cell::Time(self.updated_at),
        }
    }
}

/// An order with its customer's name and email.
#[derive(Debug, FromQueryResult)]
pub struct PedidoRow {
    pub id: i64,
    pub cliente_id: i64,
    pub cliente_nombre: String,
    pub cliente_email: String,
    pub estado: String,
    pub total_centavos: i64,
    pub notas: Option<String>,
    pub direccion_envio: Option<String>,
    pub conversacion_id: Option<String>,
    pub busqueda_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Record for PedidoRow {
    fn cell(&self, column: usize) -> Cell<'_> {
        match column {
            0 => Cell::Int(self.id),
            1 => Cell::Int(self.cliente_id),
            2 => Cell::Text(&self.cliente_nombre),
            3 => Cell::Text(&self.cliente_email),
            4 => Cell::Text(&self.estado),
            5 => Cell::Money(Money::from_cents(self.total_centavos)),
            6 => self.notas.as_deref().into(),
            7 => self.direccion_envio.as_deref().into(),
            8 => self.conversacion_id.as_deref().into(),
            9 => self.busqueda_id.as_deref().into(),
            10 => Cell::Time(self.created_at),
            _ => Cell::Time(self.updated_at),
        }
    }
}

/// The columns of [`lineas_query`], in select order: read by position, which
/// avoids a per-column name lookup on every row of large exports.
type LineaTuple = (
    i64,
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    DateTime<Utc>,
    String,
);

/// One order line with its order's customer, state and date.
#[derive(Debug)]
pub struct LineaRow {
    pub pedido_id: i64,
    pub id: i64,
    pub cliente_id: i64,
    pub cliente_nombre: String,
    pub estado: String,
    pub fecha: DateTime<Utc>,
    pub producto_id: i64,
    pub sku: String,
    pub nombre: String,
    pub cantidad: i64,
    pub precio_unitario_centavos: i64,
    pub subtotal_centavos: i64,
}

impl From<LineaTuple> for LineaRow {
    fn from(t: LineaTuple) -> Self {
        Self {
            pedido_id: t.0,
            id: t.1,
            producto_id: t.2,
            sku: t.3,
            nombre: t.4,
            cantidad: t.5,
            precio_unitario_centavos: t.6,
            subtotal_centavos: t.7,
            cliente_id: t.8,
            estado: t.9,
            fecha: t.10,
            cliente_nombre: t.11,
        }
    }
}

impl Record for LineaRow {
    fn cell(&self, column: usize) -> Cell<'_> {
        match column {
            0 => Cell::Int(self.pedido_id),
            1 => Cell::Int(self.id),
            2 => Cell::Int(self.cliente_id),
            3 => Cell::Text(&self.cliente_nombre),
            4 => Cell::Text(&self.estado),
            5 => Cell::Time(self.fecha),
            6 => Cell::Int(self.producto_id),
            7 => Cell::Text(&self.sku),
            8 => Cell::Text(&self.nombre),
            9 => Cell::Int(self.cantidad),
            10 => Cell::Money(Money::from_cents(self.precio_unitario_centavos)),
            _ => Cell::Money(Money::from_cents(self.subtotal_centavos)),
        }
    }
}

fn created_between(column: impl ColumnTrait, filters: &ReportFilters) -> Condition {
    Condition::all()
        .add_option(filters.desde.map(|d| column.gte(d)))
        .add_option(filters.hasta.map(|h| column.lte(h)))
}

fn evento_condition(f: &ReportFilters) -> Condition {
    created_between(evento::Column::CreatedAt, f)
        .add_option(f.tipo.clone().map(|t| evento::Column::Tipo.eq(t)))
}

fn cliente_condition(f: &ReportFilters) -> Condition {
    created_between(cliente::Column::CreatedAt, f)
        .add_option(f.activo.map(|a| cliente::Column::Activo.eq(a)))
}

fn producto_condition(f: &ReportFilters) -> Condition {
    created_between(producto::Column::CreatedAt, f)
        .add_option(f.activo.map(|a| producto::Column::Activo.eq(a)))
        .add_option(
            f.categoria
                .as_deref()
                .map(|c| producto::Column::Categoria.eq(c)),
        )
}

fn pedido_condition(f: &ReportFilters) -> Condition {
    created_between(pedido::Column::CreatedAt, f)
        .add_option(f.estado.map(|e| pedido::Column::Estado.eq(e.as_str())))
        .add_option(f.cliente_id.map(|c| pedido::Column::ClienteId.eq(c)))
}

fn pedidos_query() -> sea_orm::Select<pedido::Entity> {
    pedido::Entity::find()
        .select_only()
        .columns([
            pedido::Column::Id,
            pedido::Column::ClienteId,
            pedido::Column::Estado,
            pedido::Column::TotalCentavos,
            pedido::Column::Notas,
            pedido::Column::DireccionEnvio,
            pedido::Column::ConversacionId,
            pedido::Column::BusquedaId,
            pedido::Column::CreatedAt,
            pedido::Column::UpdatedAt,
        ])
        .column_as(cliente::Column::Nombre, "cliente_nombre")
        .column_as(cliente::Column::Email, "cliente_email")
        .join(JoinType::InnerJoin, pedido::Relation::Cliente.def())
}

fn lineas_query() -> sea_orm::Select<pedido_item::Entity> {
    pedido_item::Entity::find()
        .select_only()
        .columns([
            pedido_item::Column::PedidoId,
            pedido_item::Column::Id,
            pedido_item::Column::ProductoId,
            pedido_item::Column::Sku,
            pedido_item::Column::Nombre,
            pedido_item::Column::Cantidad,
            pedido_item::Column::PrecioUnitarioCentavos,
            pedido_item::Column::SubtotalCentavos,
        ])
        .column(pedido::Column::ClienteId)
        .column_as(pedido::Column::Estado, "estado")
        .column_as(pedido::Column::CreatedAt, "fecha")
        .column_as(cliente::Column::Nombre, "cliente_nombre")
        .join(JoinType::InnerJoin, pedido_item::Relation::Pedido.def())
        .join(JoinType::InnerJoin, pedido::Relation::Cliente.def())
}

/// How many rows the report will have.
pub async fn count(
    db: &Db,
    report: Report,
    filters: &ReportFilters,
) -> Result<u64, sea_orm::DbErr> {
    let conn = db.conn();
    match report {
        Report::Clientes => {
            cliente::Entity::find()
                .filter(cliente_condition(filters))
                .count(conn)
                .await
        }
        Report::Productos => {
            producto::Entity::find()
                .filter(producto_condition(filters))
                .count(conn)
                .await
        }
        Report::Pedidos => {
            pedido::Entity::find()
                .filter(pedido_condition(filters))
                .count(conn)
                .await
        }
        Report::PedidoLineas => {
            pedido_item::Entity::find()
                .join(JoinType::InnerJoin, pedido_item::Relation::Pedido.def())
                .filter(pedido_condition(filters))
                .count(conn)
                .await
        }
        Report::Eventos => {
            evento::Entity::find()
                .filter(evento_condition(filters))
                .count(conn)
                .await
        }
    }
}

pub enum RowPage {
    Clientes(Vec<cliente::Model>),
    Productos(Vec<producto::Model>),
    Pedidos(Vec<PedidoRow>),
    Lineas(Vec<LineaRow>),
    Eventos(Vec<evento::Model>),
}

impl RowPage {
    pub fn len(&self) -> usize {
        match self {
            RowPage::Clientes(rows) => rows.len(),
            RowPage::Productos(rows) => rows.len(),
            RowPage::Pedidos(rows) => rows.len(),
            RowPage::Lineas(rows) => rows.len(),
            RowPage::Eventos(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of the last row, to read the next page after.
    pub fn last_key(&self) -> Option<i64> {
        match self {
            RowPage::Clientes(rows) => rows.last().map(|r| r.id),
            RowPage::Productos(rows) => rows.last().map(|r| r.id),
            RowPage::Pedidos(rows) => rows.last().map(|r| r.id),
            RowPage::Lineas(rows) => rows.last().map(|r| r.id),
            RowPage::Eventos(rows) => rows.last().map(|r| r.id),
        }
    }
}

/// Up to `size` rows with a key above `after`, in key order.
pub async fn page(
    db: &Db,
    report: Report,
    filters: &ReportFilters,
    after: i64,
    size: u64,
) -> Result<RowPage, sea_orm::DbErr> {
    let conn = db.conn();
    Ok(match report {
        Report::Clientes => RowPage::Clientes(
            cliente::Entity::find()
                .filter(cliente::Column::Id.gt(after))
                .filter(cliente_condition(filters))
                .order_by_asc(cliente::Column::Id)
                .limit(size)
                .all(conn)
                .await?,
        ),
        Report::Productos => RowPage::Productos(
            producto::Entity::find()
                .filter(producto::Column::Id.gt(after))
                .filter(producto_condition(filters))
                .order_by_asc(producto::Column::Id)
                .limit(size)
                .all(conn)
                .await?,
        ),
        Report::Pedidos => RowPage::Pedidos(
            pedidos_query()
                .filter(pedido::Column::Id.gt(after))
                .filter(pedido_condition(filters))
                .order_by_asc(pedido::Column::Id)
                .limit(size)
                .into_model::<PedidoRow>()
                .all(conn)
                .await?,
        ),
        Report::PedidoLineas => RowPage::Lineas(
            lineas_query()
                .filter(pedido_item::Column::Id.gt(after))
                .filter(pedido_condition(filters))
                .order_by_asc(pedido_item::Column::Id)
                .limit(size)
                .into_tuple::<LineaTuple>()
                .all(conn)
                .await?
                .into_iter()
                .map(LineaRow::from)
                .collect(),
        ),
        Report::Eventos => RowPage::Eventos(
            evento::Entity::find()
                .filter(evento::Column::Id.gt(after))
                .filter(evento_condition(filters))
                .order_by_asc(evento::Column::Id)
                .limit(size)
                .all(conn)
                .await?,
        ),
    })
}
