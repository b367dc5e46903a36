//! Customers: validation, unique emails, accent-insensitive search, soft deletion.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::contains;
use crate::db::entities::{cliente, pedido};
use crate::shop::types::{
    Email, FieldError, Page, Paged, Patch, parse_name, parse_phone, parse_text,
};
use crate::shop::{
    Deletion, Shop, ShopError, commit_or, delete_or_retire, found, list_page, lock_live,
};
use crate::text::fold;

/// A customer as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cliente {
    pub id: i64,
    pub nombre: String,
    pub email: String,
    pub telefono: Option<String>,
    pub direccion: Option<String>,
    pub ciudad: Option<String>,
    pub notas: Option<String>,
    pub activo: bool,
    /// When the customer was deleted while orders still referred to them.
    pub eliminado_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<cliente::Model> for Cliente {
    fn from(m: cliente::Model) -> Self {
        Self {
            id: m.id,
            nombre: m.nombre,
            email: m.email,
            telefono: m.telefono,
            direccion: m.direccion,
            ciudad: m.ciudad,
            notas: m.notas,
            activo: m.activo,
            eliminado_at: m.eliminado_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Body of `POST /api/clientes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NuevoCliente {
    #[schema(example = "Ana María Pérez")]
    pub nombre: String,
    #[schema(example = "ana@example.com")]
    pub email: String,
    #[schema(example = "+57 300 123 4567")]
    pub telefono: Option<String>,
    pub direccion: Option<String>,
    pub ciudad: Option<String>,
    pub notas: Option<String>,
}

/// Body of `PATCH /api/clientes/{id}`: absent fields stay, `null` clears optional ones.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CambiosCliente {
    pub nombre: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub telefono: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub direccion: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub ciudad: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notas: Patch<String>,
    pub activo: Option<bool>,
}

/// Query of `GET /api/clientes`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiltroClientes {
    /// Text in the name, email or phone (accents and case ignored).
    pub q: Option<String>,
    pub activo: Option<bool>,
    pub ciudad: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

fn search_key(nombre: &str, email: &str, telefono: Option<&str>) -> String {
    let digits: String = telefono
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{} {} {}", fold(nombre), email, digits)
}

/// The condition for a free-text customer search.
fn text_condition(q: &str) -> Result<Condition, FieldError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(FieldError::new("q", "no puede estar vacío"));
    }
    if q.chars().count() > 200 {
        return Err(FieldError::new("q", "admite como máximo 200 caracteres"));
    }
    let mut condition =
        Condition::any().add(contains(cliente::Column::Busqueda.into_expr(), &fold(q)));
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone_like = q
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if phone_like && digits.len() >= 3 {
        condition = condition.add(contains(cliente::Column::Busqueda.into_expr(), &digits));
    }
    Ok(condition)
}

fn patch_text(
    field: &'static str,
    patch: Patch<String>,
    max: usize,
    current: Option<String>,
) -> Result<Option<String>, FieldError> {
    match patch {
        Patch::Missing => Ok(current),
        Patch::Null => Ok(None),
        Patch::Value(v) => parse_text(field, Some(&v), max),
    }
}

impl Shop {
    #[tracing::instrument(skip(self))]
    pub async fn list_customers(
        &self,
        filter: FiltroClientes,
    ) -> Result<Paged<Cliente>, ShopError> {
        let db = &self.db;
        let page = Page::parse(filter.limit, filter.offset)?;
        let mut query = cliente::Entity::find().filter(cliente::Column::EliminadoAt.is_null());
        if let Some(q) = filter.q.as_deref() {
            query = query.filter(text_condition(q)?);
        }
        if let Some(activo) = filter.activo {
            query = query.filter(cliente::Column::Activo.eq(activo));
        }
        if let Some(ciudad) = filter.ciudad.as_deref() {
            query = query.filter(cliente::Column::Ciudad.eq(ciudad.trim()));
        }
        list_page(db, query, |q| q.order_by_asc(cliente::Column::Id), page).await
    }

    /// `GET /api/clientes/buscar?q=`: best matches by name, email or phone.
    #[tracing::instrument(skip(self))]
    pub async fn search_customers(
        &self,
        q: &str,
        limit: Option<u64>,
    ) -> Result<Vec<Cliente>, ShopError> {
        let db = &self.db;
        let page = Page::parse(limit, None)?;
        let rows = cliente::Entity::find()
            .filter(cliente::Column::EliminadoAt.is_null())
            .filter(text_condition(q)?)
            .order_by_asc(cliente::Column::Nombre)
            .limit(page.limit)
            .all(db.conn())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn customer(&self, id: i64) -> Result<Cliente, ShopError> {
        let db = &self.db;
        let row = cliente::Entity::find_by_id(id).one(db.conn()).await?;
        Ok(found(row, "cliente")?.into())
    }

    #[tracing::instrument(skip(self, input), fields(email = %input.email))]
    pub async fn create_customer(&self, input: NuevoCliente) -> Result<Cliente, ShopError> {
        let db = &self.db;
        let nombre = parse_name("nombre", &input.nombre, 200)?;
        let email = Email::parse("email", &input.email)?.into_inner();
        let telefono = parse_phone("telefono", input.telefono.as_deref())?;
        let direccion = parse_text("direccion", input.direccion.as_deref(), 500)?;
        let ciudad = parse_text("ciudad", input.ciudad.as_deref(), 100)?;
        let notas = parse_text("notas", input.notas.as_deref(), 2000)?;
        let now = Utc::now();
        let txn = db.begin_write().await?;
        let inserted = cliente::ActiveModel {
            busqueda: Set(search_key(&nombre, &email, telefono.as_deref())),
            nombre: Set(nombre),
            email: Set(email),
            telefono: Set(telefono),
            direccion: Set(direccion),
            ciudad: Set(ciudad),
            notas: Set(notas),
            activo: Set(true),
            eliminado_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await;
        Ok(commit_or(txn, inserted, ShopError::EmailTaken)
            .await?
            .into())
    }

    #[tracing::instrument(skip(self, changes))]
    pub async fn update_customer(
        &self,
        id: i64,
        changes: CambiosCliente,
    ) -> Result<Cliente, ShopError> {
        let db = &self.db;
        let txn = db.begin_write().await?;
        let current = lock_live::<cliente::Entity>(&txn, id).await?;
        let nombre = match changes.nombre.as_deref() {
            Some(n) => parse_name("nombre", n, 200)?,
            None => current.nombre.clone(),
        };
        let email = match changes.email.as_deref() {
            Some(e) => Email::parse("email", e)?.into_inner(),
            None => current.email.clone(),
        };
        let telefono = match changes.telefono {
            Patch::Missing => current.telefono.clone(),
            Patch::Null => None,
            Patch::Value(t) => parse_phone("telefono", Some(&t))?,
        };
        let direccion = patch_text(
            "direccion",
            changes.direccion,
            500,
            current.direccion.clone(),
        )?;
        let ciudad = patch_text("ciudad", changes.ciudad, 100, current.ciudad.clone())?;
        let notas = patch_text("notas", changes.notas, 2000, current.notas.clone())?;
        let activo = changes.activo.unwrap_or(current.activo);

        let mut model = current.into_active_model();
        model.busqueda = Set(search_key(&nombre, &email, telefono.as_deref()));
        model.nombre = Set(nombre);
        model.email = Set(email);
        model.telefono = Set(telefono);
        model.direccion = Set(direccion);
        model.ciudad = Set(ciudad);
        model.notas = Set(notas);
        model.activo = Set(activo);
        model.updated_at = Set(Utc::now());
        let updated = model.update(&*txn).await;
        Ok(commit_or(txn, updated, ShopError::EmailTaken).await?.into())
    }

    /// Deletes a customer; one with orders is kept, marked deleted and inactive.
    #[tracing::instrument(skip(self))]
    pub async fn delete_customer(&self, id: i64) -> Result<Deletion, ShopError> {
        let orders = pedido::Entity::find().filter(pedido::Column::ClienteId.eq(id));
        delete_or_retire::<cliente::Entity, _>(&self.db, id, orders).await
    }
}
