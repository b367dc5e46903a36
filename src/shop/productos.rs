//! Products: the catalog's source of truth for prices and stock.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::db::entities::{pedido_item, producto};
use crate::db::lower_contains;
use crate::shop::types::{
    FieldError, Money, Page, Paged, Patch, Sku, parse_name, parse_stock, parse_text,
};
use crate::shop::{
    Deletion, Shop, ShopError, commit_or, delete_or_retire, found, list_page, lock_live,
};

const DEFAULT_CATEGORY: &str = "general";
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Producto {
    pub id: i64,
    pub sku: String,
    pub nombre: String,
    pub descripcion: Option<String>,
    pub categoria: String,
    /// Exact decimal amount, as a string with two decimals.
    #[schema(value_type = String, example = "129900.00")]
    pub precio: Money,
    pub stock: i64,
    /// Extra attributes (color, talla, marca…).
    #[schema(value_type = Object)]
    pub atributos: Value,
    pub activo: bool,
    pub eliminado_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<producto::Model> for Producto {
    fn from(m: producto::Model) -> Self {
        Self {
            id: m.id,
            sku: m.sku,
            nombre: m.nombre,
            descripcion: m.descripcion,
            categoria: m.categoria,
            precio: Money::from_cents(m.precio_centavos),
            stock: m.stock,
            atributos: m.atributos,
            activo: m.activo,
            eliminado_at: m.eliminado_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Body of `POST /api/productos`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NuevoProducto {
    #[schema(example = "CAM-001")]
    pub sku: String,
    #[schema(example = "Camiseta de algodón")]
    pub nombre: String,
    pub descripcion: Option<String>,
    /// Defaults to `general`.
    pub categoria: Option<String>,
    /// Decimal number or string, at least 0, at most two decimals.
    #[schema(value_type = String, example = "49900")]
    pub precio: Decimal,
    pub stock: i64,
    #[schema(value_type = Option<Object>)]
    pub atributos: Option<Value>,
    pub activo: Option<bool>,
}

/// Body of `PATCH /api/productos/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CambiosProducto {
    pub sku: Option<String>,
    pub nombre: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub descripcion: Patch<String>,
    pub categoria: Option<String>,
    #[schema(value_type = Option<String>)]
    pub precio: Option<Decimal>,
    pub stock: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub atributos: Option<Value>,
    pub activo: Option<bool>,
}

/// Query of `GET /api/productos`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiltroProductos {
    /// Text in the name or SKU.
    pub q: Option<String>,
    pub categoria: Option<String>,
    pub activo: Option<bool>,
    /// Only products with stock > 0.
    pub en_stock: Option<bool>,
    #[param(value_type = Option<String>)]
    pub precio_min: Option<Decimal>,
    #[param(value_type = Option<String>)]
    pub precio_max: Option<Decimal>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

pub(crate) fn parse_attributes(raw: Option<Value>) -> Result<Value, FieldError> {
    match raw {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(Value::Object(map)) => {
            if serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len()) > MAX_ATTRIBUTES_BYTES {
                return Err(FieldError::new(
                    "atributos",
                    format!("admite como máximo {MAX_ATTRIBUTES_BYTES} bytes"),
                ));
            }
            Ok(Value::Object(map))
        }
        Some(_) => Err(FieldError::new(
            "atributos",
            "debe ser un objeto JSON, p. ej. {\"color\": \"azul\"}",
        )),
    }
}

pub(crate) fn parse_category(raw: Option<&str>) -> Result<String, FieldError> {
    match raw {
        None => Ok(DEFAULT_CATEGORY.to_owned()),
        Some(c) => parse_name("categoria", c, 100),
    }
}

impl Shop {
    #[tracing::instrument(skip(self))]
    pub async fn list_products(
        &self,
        filter: FiltroProductos,
    ) -> Result<Paged<Producto>, ShopError> {
        let db = &self.db;
        let page = Page::parse(filter.limit, filter.offset)?;
        let mut query = producto::Entity::find().filter(producto::Column::EliminadoAt.is_null());
        if let Some(q) = filter.q.as_deref().map(str::trim) {
            if q.is_empty() || q.chars().count() > 200 {
                return Err(FieldError::new("q", "debe tener de 1 a 200 caracteres").into());
            }
            let needle = q.to_lowercase();
            query = query.filter(
                Condition::any()
                    .add(lower_contains(producto::Column::Nombre, &needle))
                    .add(lower_contains(producto::Column::Sku, &needle)),
            );
        }
        if let Some(categoria) = filter.categoria.as_deref() {
            query = query.filter(producto::Column::Categoria.eq(categoria.trim()));
        }
        if let Some(activo) = filter.activo {
            query = query.filter(producto::Column::Activo.eq(activo));
        }
        match filter.en_stock {
            Some(true) => query = query.filter(producto::Column::Stock.gt(0)),
            Some(false) => query = query.filter(producto::Column::Stock.eq(0)),
            None => {}
        }
        if let Some(min) = filter.precio_min {
            let min = Money::parse("precio_min", min)?;
            query = query.filter(producto::Column::PrecioCentavos.gte(min.cents()));
        }
        if let Some(max) = filter.precio_max {
            let max = Money::parse("precio_max", max)?;
            query = query.filter(producto::Column::PrecioCentavos.lte(max.cents()));
        }
        list_page(db, query, |q| q.order_by_asc(producto::Column::Id), page).await
    }

    pub async fn product(&self, id: i64) -> Result<Producto, ShopError> {
        let db = &self.db;
        let row = producto::Entity::find_by_id(id).one(db.conn()).await?;
        Ok(found(row, "producto")?.into())
    }

    #[tracing::instrument(skip(self, input), fields(sku = %input.sku))]
    pub async fn create_product(&self, input: NuevoProducto) -> Result<Producto, ShopError> {
        let db = &self.db;
        let sku = Sku::parse("sku", &input.sku)?.into_inner();
        let nombre = parse_name("nombre", &input.nombre, 300)?;
        let descripcion = parse_text("descripcion", input.descripcion.as_deref(), 10_000)?;
        let categoria = parse_category(input.categoria.as_deref())?;
        let precio = Money::parse("precio", input.precio)?;
        let stock = parse_stock("stock", input.stock)?;
        let atributos = parse_attributes(input.atributos)?;
        let now = Utc::now();
        let txn = db.begin_write().await?;
        let inserted = producto::ActiveModel {
            sku: Set(sku),
            nombre: Set(nombre),
            descripcion: Set(descripcion),
            categoria: Set(categoria),
            precio_centavos: Set(precio.cents()),
            stock: Set(stock),
            atributos: Set(atributos),
            activo: Set(input.activo.unwrap_or(true)),
            eliminado_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await;
        Ok(commit_or(txn, inserted, ShopError::SkuTaken).await?.into())
    }

    #[tracing::instrument(skip(self, changes))]
    pub async fn update_product(
        &self,
        id: i64,
        changes: CambiosProducto,
    ) -> Result<Producto, ShopError> {
        let db = &self.db;
        let sku = changes
            .sku
            .as_deref()
            .map(|s| Sku::parse("sku", s).map(Sku::into_inner))
            .transpose()?;
        let nombre = changes
            .nombre
            .as_deref()
            .map(|n| parse_name("nombre", n, 300))
            .transpose()?;
        let categoria = changes
            .categoria
            .as_deref()
            .map(|c| parse_category(Some(c)))
            .transpose()?;
        let precio = changes
            .precio
            .map(|p| Money::parse("precio", p))
            .transpose()?;
        let stock = changes.stock.map(|s| parse_stock("stock", s)).transpose()?;
        let atributos = changes
            .atributos
            .map(|a| parse_attributes(Some(a)))
            .transpose()?;
        let descripcion = match changes.descripcion {
            Patch::Missing => None,
            Patch::Null => Some(None),
            Patch::Value(d) => Some(parse_text("descripcion", Some(&d), 10_000)?),
        };

        let txn = db.begin_write().await?;
        let mut model = lock_live::<producto::Entity>(&txn, id)
            .await?
            .into_active_model();
        if let Some(v) = sku {
            model.sku = Set(v);
        }
        if let Some(v) = nombre {
            model.nombre = Set(v);
        }
        if let Some(v) = descripcion {
            model.descripcion = Set(v);
        }
        if let Some(v) = categoria {
            model.categoria = Set(v);
        }
        if let Some(v) = precio {
            model.precio_centavos = Set(v.cents());
        }
        if let Some(v) = stock {
            model.stock = Set(v);
        }
        if let Some(v) = atributos {
            model.atributos = Set(v);
        }
        if let Some(v) = changes.activo {
            model.activo = Set(v);
        }
        model.updated_at = Set(Utc::now());
        let updated = model.update(&*txn).await;
        Ok(commit_or(txn, updated, ShopError::SkuTaken).await?.into())
    }

    /// Deletes a product; one that orders refer to is kept, marked deleted and inactive.
    #[tracing::instrument(skip(self))]
    pub async fn delete_product(&self, id: i64) -> Result<Deletion, ShopError> {
        let lines = pedido_item::Entity::find().filter(pedido_item::Column::ProductoId.eq(id));
        delete_or_retire::<producto::Entity, _>(&self.db, id, lines).await
    }
}
