//! Staff users (`usuarios`): the first admin, `tendero user create`, and sign-in.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::Serialize;

use super::{AuthError, Role, hash_password, verify_password};
use crate::db::Db;
use crate::db::entities::usuario;
use crate::db::{Unique, commit_unique};
use crate::error::FieldError;
use crate::shop::types::{Email, parse_name};

/// A staff member as the API shows them (never the hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Usuario {
    pub id: i64,
    pub email: String,
    pub nombre: String,
    pub rol: Role,
    pub activo: bool,
}

impl From<usuario::Model> for Usuario {
    fn from(m: usuario::Model) -> Self {
        Self {
            id: m.id,
            rol: Role::parse(&m.rol).unwrap_or(Role::Vendedor),
            email: m.email,
            nombre: m.nombre,
            activo: m.activo,
        }
    }
}

/// Creates a staff user; fails with `email_taken` if the email exists.
pub async fn create(
    db: &Db,
    email: &str,
    nombre: &str,
    rol: Role,
    password: &str,
) -> Result<Usuario, AuthError> {
    let email = Email::parse("email", email)?;
    let nombre = parse_name("nombre", nombre, 200)?;
    if password.chars().count() < 8 {
        return Err(FieldError::new("password", "debe tener al menos 8 caracteres").into());
    }
    let hash = hash_password(password.to_owned())
        .await
        .map_err(AuthError::Internal)?;
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let inserted = usuario::ActiveModel {
        email: Set(email.into_inner()),
        nombre: Set(nombre),
        password_hash: Set(hash),
        rol: Set(rol.as_str().to_owned()),
        activo: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await;
    match commit_unique(txn, inserted).await? {
        Unique::Written(user) => Ok(user.into()),
        Unique::Taken => Err(AuthError::EmailTaken),
    }
}

/// Creates the configured first admin unless a user with that email exists.
/// Returns whether it was created.
pub async fn ensure_admin(db: &Db, email: &str, password: &str) -> Result<bool, AuthError> {
    let normalized = Email::parse("TENDERO_ADMIN_EMAIL", email)?;
    let exists = usuario::Entity::find()
        .filter(usuario::Column::Email.eq(normalized.as_str()))
        .one(db.conn())
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    match create(db, email, "Administrador", Role::Admin, password).await {
        Ok(_) => Ok(true),
        Err(AuthError::EmailTaken) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Checks credentials. The hash is verified even for unknown emails (against
/// `dummy_hash`) so response time does not reveal which emails exist.
pub async fn authenticate(
    db: &Db,
    email: &str,
    password: &str,
    dummy_hash: &str,
) -> Result<Usuario, AuthError> {
    let email = email.trim().to_lowercase();
    let user = usuario::Entity::find()
        .filter(usuario::Column::Email.eq(email))
        .one(db.conn())
        .await?;
    let hash = user
        .as_ref()
        .map_or(dummy_hash, |u| u.password_hash.as_str())
        .to_owned();
    let matches = verify_password(password.to_owned(), hash)
        .await
        .map_err(AuthError::Internal)?;
    match user {
        Some(user) if matches && user.activo => Ok(user.into()),
        _ => Err(AuthError::InvalidCredentials),
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Usuario, AuthError> {
    let user = usuario::Entity::find_by_id(id).one(db.conn()).await?;
    user.map(Usuario::from)
        .ok_or(AuthError::NotFound("usuario"))
}
