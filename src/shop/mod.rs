//! The shop's services: staff users, customers, products and orders.
//!
//! Each public function is one use case, called alike by the REST handlers and, later,
//! by the sales agent's tools. Input arrives as the request types defined here and is
//! parsed into domain values once; rejections are [`ApiError`]s with stable codes.

pub mod clientes;
pub mod pedidos;
pub mod productos;
pub mod types;
pub mod usuarios;

use sea_orm::sea_query::{Expr, Func, LikeExpr, SimpleExpr};
use sea_orm::{ColumnTrait, DbErr, ExprTrait, SqlErr};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::db::WriteTxn;
use crate::error::ApiError;

/// Lower-cases and strips accents, so that "José Peña" matches "jose pena".
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
}

/// `col LIKE '%needle%'` with `%`, `_` and `\` in the needle matched literally.
pub(crate) fn contains(expr: impl Into<SimpleExpr>, needle: &str) -> SimpleExpr {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Expr::expr(expr.into()).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// `LOWER(col) LIKE '%needle%'` (needle already lower-cased).
pub(crate) fn lower_contains(column: impl ColumnTrait, needle: &str) -> SimpleExpr {
    contains(Func::lower(column.into_expr()), needle)
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Commits a write that may break a unique constraint, reporting that as `conflict`.
pub(crate) async fn commit_unique<T>(
    txn: WriteTxn,
    written: Result<T, DbErr>,
    conflict: ApiError,
) -> Result<T, ApiError> {
    match written {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) if is_unique_violation(&err) => Err(conflict),
        Err(err) => Err(err.into()),
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

/// Maps "not found" from an `Option` onto the API error.
pub(crate) fn found<T>(value: Option<T>, what: &'static str) -> Result<T, ApiError> {
    value.ok_or(ApiError::NotFound(what))
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folding_removes_case_and_accents() {
        assert_eq!(fold("José Peña ÁÉÍÓÚÜ"), "jose pena aeiouu");
        assert_eq!(fold("camión"), "camion");
    }
}
