//! Customers: validation, unique emails, accent-insensitive search, soft deletion.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::Db;
use crate::db::entities::{cliente, pedido};
use crate::error::ApiError;
use crate::shop::types::{
    Email, FieldError, Page, Paged, Patch, parse_name, parse_phone, parse_text,
};
use crate::shop::{Deletion, commit_unique, contains, fold, found};

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

#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, filter: FiltroClientes) -> Result<Paged<Cliente>, ApiError> {
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
    let total = query.clone().count(db.conn()).await?;
    let items = query
        .order_by_asc(cliente::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db.conn())
        .await?;
    Ok(Paged {
        items: items.into_iter().map(Into::into).collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    })
}

/// `GET /api/clientes/buscar?q=`: best matches by name, email or phone.
#[tracing::instrument(skip(db))]
pub async fn search(db: &Db, q: &str, limit: Option<u64>) -> Result<Vec<Cliente>, ApiError> {
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

pub async fn get(db: &Db, id: i64) -> Result<Cliente, ApiError> {
    let row = cliente::Entity::find_by_id(id).one(db.conn()).await?;
    Ok(found(row, "cliente")?.into())
}

#[tracing::instrument(skip(db, input), fields(email = %input.email))]
pub async fn create(db: &Db, input: NuevoCliente) -> Result<Cliente, ApiError> {
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
    Ok(commit_unique(txn, inserted, ApiError::EmailTaken)
        .await?
        .into())
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

#[tracing::instrument(skip(db, changes))]
pub async fn update(db: &Db, id: i64, changes: CambiosCliente) -> Result<Cliente, ApiError> {
    let txn = db.begin_write().await?;
    // Locked (on PostgreSQL) so that a concurrent change cannot be overwritten with
    // the values read here.
    let current = cliente::Entity::find_by_id(id)
        .filter(cliente::Column::EliminadoAt.is_null())
        .lock_exclusive()
        .one(&*txn)
        .await?;
    let current = found(current, "cliente")?;
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
    Ok(commit_unique(txn, updated, ApiError::EmailTaken)
        .await?
        .into())
}

/// Deletes a customer; one with orders is kept, marked deleted and inactive.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: i64) -> Result<Deletion, ApiError> {
    let txn = db.begin_write().await?;
    // Locked (on PostgreSQL) so that a concurrent change cannot be overwritten with
    // the values read here.
    let current = cliente::Entity::find_by_id(id)
        .filter(cliente::Column::EliminadoAt.is_null())
        .lock_exclusive()
        .one(&*txn)
        .await?;
    let current = found(current, "cliente")?;
    let has_orders = pedido::Entity::find()
        .filter(pedido::Column::ClienteId.eq(id))
        .count(&*txn)
        .await?
        > 0;
    let deletion = if has_orders {
        let now = Utc::now();
        let mut model = current.into_active_model();
        model.activo = Set(false);
        model.eliminado_at = Set(Some(now));
        model.updated_at = Set(now);
        model.update(&*txn).await?;
        Deletion::soft(id)
    } else {
        cliente::Entity::delete_by_id(id).exec(&*txn).await?;
        Deletion::hard(id)
    };
    txn.commit().await?;
    Ok(deletion)
}
