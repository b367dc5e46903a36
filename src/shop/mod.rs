//! The shop: customers (`clientes`), products (`productos`) and orders (`pedidos`).
//!
//! [`Shop`] owns the database handle and offers one method per use case, called
//! alike by the REST handlers and the sales agent's tools. Input arrives as the
//! request types defined here and is parsed into domain values ([`types`]) once;
//! refusals are [`ShopError`]s with stable codes.

pub mod clientes;
pub mod pedidos;
pub mod productos;
pub mod types;
pub mod vocabulary;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, PrimaryKeyTrait, QueryFilter, QuerySelect, Select,
};
use serde::Serialize;

use crate::db::entities::{cliente, producto};
use crate::db::{Db, Unique, WriteTxn, commit_unique};
use crate::error::{Code, Coded, FieldError, INTERNAL_MESSAGE};
use types::{Page, Paged};

/// New orders kept for a slow listener at most; beyond, it misses the oldest.
const NEW_ORDERS: usize = 256;

/// The shop's customers, products and orders.
#[derive(Clone)]
pub struct Shop {
    db: Db,
    /// Every order this node creates, once committed (for the staff's live view).
    created: tokio::sync::broadcast::Sender<pedidos::Pedido>,
}

impl Shop {
    pub fn new(db: Db) -> Self {
        let (created, _) = tokio::sync::broadcast::channel(NEW_ORDERS);
        Self { db, created }
    }

    /// The orders this node creates from now on, as they are committed.
    pub fn new_orders(&self) -> tokio::sync::broadcast::Receiver<pedidos::Pedido> {
        self.created.subscribe()
    }
}

/// Why a shop operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error("{0} no encontrado")]
    NotFound(&'static str),
    #[error("ya existe un registro con ese correo")]
    EmailTaken,
    #[error("ya existe un producto con ese SKU")]
    SkuTaken,
    #[error("stock insuficiente para {sku}: se piden {requested}, quedan {available}")]
    InsufficientStock {
        sku: String,
        requested: i64,
        available: i64,
    },
    #[error("un pedido no puede pasar de {from} a {to}")]
    InvalidTransition { from: String, to: String },
    #[error("el cliente {0} está inactivo")]
    CustomerInactive(i64),
    #[error("el producto {0} no está disponible")]
    ProductUnavailable(String),
    #[error("otro cambio simultáneo lo impidió: vuelve a intentarlo")]
    ConcurrentChange,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for ShopError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::NotFound(_) => Code::NotFound,
            Self::EmailTaken => Code::EmailTaken,
            Self::SkuTaken => Code::SkuTaken,
            Self::InsufficientStock { .. } => Code::InsufficientStock,
            Self::InvalidTransition { .. } => Code::InvalidTransition,
            Self::CustomerInactive(_) => Code::CustomerInactive,
            Self::ProductUnavailable(_) => Code::ProductUnavailable,
            Self::ConcurrentChange => Code::ConcurrentChange,
            Self::Internal(_) => Code::Internal,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Validation(err) => Some(err.field),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for ShopError {
    /// A foreign-key violation means a referenced row vanished between a check and a
    /// write (e.g. a customer deleted while their order was being created): a conflict
    /// the client can retry, not a server fault.
    fn from(err: sea_orm::DbErr) -> Self {
        match err.sql_err() {
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => Self::ConcurrentChange,
            _ => Self::Internal(err.into()),
        }
    }
}

/// Commits a write that a unique value (an email, a SKU) may refuse with `taken`.
async fn commit_or<T>(
    txn: WriteTxn,
    written: Result<T, sea_orm::DbErr>,
    taken: ShopError,
) -> Result<T, ShopError> {
    match commit_unique(txn, written).await? {
        Unique::Written(value) => Ok(value),
        Unique::Taken => Err(taken),
    }
}

/// What a DELETE did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deletion {
    pub id: i64,
    /// `definitiva` when the row was removed; `logica` when it was kept (marked
    /// deleted) because orders refer to it.
    pub eliminacion: &'static str,
}

impl Deletion {
    pub fn hard(id: i64) -> Self {
        Self {
            id,
            eliminacion: "definitiva",
        }
    }

    pub fn soft(id: i64) -> Self {
        Self {
            id,
            eliminacion: "logica",
        }
    }
}

/// A table whose rows orders may refer to, so that deleting such a row retires it
/// (kept, inactive, marked deleted) instead of removing it: customers and products.
trait Retirable: EntityTrait<PrimaryKey: PrimaryKeyTrait<ValueType = i64>>
where
    Self::Model: IntoActiveModel<Self::ActiveModel> + Send + Sync,
    Self::ActiveModel: ActiveModelTrait<Entity = Self> + ActiveModelBehavior + Send,
{
    /// What a client is told is not found.
    const WHAT: &'static str;
    /// The column marking a retired row.
    fn retired_at() -> Self::Column;
    /// The row, retired at `now`.
    fn retire(row: Self::Model, now: DateTime<Utc>) -> Self::ActiveModel;
}

impl Retirable for cliente::Entity {
    const WHAT: &'static str = "cliente";

    fn retired_at() -> cliente::Column {
        cliente::Column::EliminadoAt
    }

    fn retire(row: cliente::Model, now: DateTime<Utc>) -> cliente::ActiveModel {
        let mut model = row.into_active_model();
        model.activo = sea_orm::Set(false);
        model.eliminado_at = sea_orm::Set(Some(now));
        model.updated_at = sea_orm::Set(now);
        model
    }
}

impl Retirable for producto::Entity {
    const WHAT: &'static str = "producto";

    fn retired_at() -> producto::Column {
        producto::Column::EliminadoAt
    }

    fn retire(row: producto::Model, now: DateTime<Utc>) -> producto::ActiveModel {
        let mut model = row.into_active_model();
        model.activo = sea_orm::Set(false);
        model.eliminado_at = sea_orm::Set(Some(now));
        model.updated_at = sea_orm::Set(now);
        model
    }
}

/// Row `id` if it is not retired, locked (on PostgreSQL) until `txn` ends, so that a
/// concurrent change cannot be overwritten with the values read here.
async fn lock_live<E>(txn: &WriteTxn, id: i64) -> Result<E::Model, ShopError>
where
    E: Retirable,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let row = E::find_by_id(id)
        .filter(E::retired_at().is_null())
        .lock_exclusive()
        .one(&**txn)
        .await?;
    found(row, E::WHAT)
}

/// Deletes row `id`: retired when any row of `references` exists, else removed.
async fn delete_or_retire<E, R>(
    db: &Db,
    id: i64,
    references: Select<R>,
) -> Result<Deletion, ShopError>
where
    E: Retirable,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    R: EntityTrait,
    R::Model: Send + Sync,
{
    let txn = db.begin_write().await?;
    let current = lock_live::<E>(&txn, id).await?;
    let deletion = if references.count(&*txn).await? > 0 {
        E::retire(current, Utc::now()).update(&*txn).await?;
        Deletion::soft(id)
    } else {
        E::delete_by_id(id).exec(&*txn).await?;
        Deletion::hard(id)
    };
    txn.commit().await?;
    Ok(deletion)
}

/// One page of `query`, in the order `order` puts it, as the API shows its rows.
async fn list_page<E, T>(
    db: &Db,
    query: Select<E>,
    order: impl FnOnce(Select<E>) -> Select<E>,
    page: Page,
) -> Result<Paged<T>, ShopError>
where
    E: EntityTrait,
    E::Model: Send + Sync + Into<T>,
{
    let (rows, total) = db.page_of(query, order, page.limit, page.offset).await?;
    Ok(page.of(rows.into_iter().map(Into::into).collect(), total))
}

/// Maps "not found" from an `Option` onto the shop's error.
fn found<T>(value: Option<T>, what: &'static str) -> Result<T, ShopError> {
    value.ok_or(ShopError::NotFound(what))
}
