//! Staff authentication: Argon2id password hashes, HS256 JWTs, the two roles, and
//! the staff users themselves (`usuarios`).
//!
//! [`Auth`] owns the signing keys and the users table: it signs staff in, checks
//! the tokens they present (signature, expiry and issuer, on every request and
//! Socket.IO handshake), and creates the first admin at start-up.

mod jwt;
mod password;
pub mod users;

pub use jwt::{Claims, JwtKeys, TokenError};
pub use password::{hash_password, verify_password};
pub use users::Usuario;

use anyhow::Context;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::AuthSettings;
use crate::db::Db;
use crate::error::{Code, Coded, FieldError};

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including deletes and user management.
    Admin,
    /// Day-to-day sales work: read, create and update; no deletes.
    Vendedor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Vendedor => "vendedor",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "vendedor" => Some(Role::Vendedor),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in staff member, as their token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub id: i64,
    pub email: String,
    pub rol: Role,
}

/// A token issued at sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub usuario: Usuario,
}

/// Why signing in, a token or a user was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error("correo o contraseña incorrectos")]
    InvalidCredentials,
    /// A presented token that does not let its bearer in, and why.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("ya existe un registro con ese correo")]
    EmailTaken,
    #[error("{0} no encontrado")]
    NotFound(&'static str),
    #[error("{}", crate::error::INTERNAL_MESSAGE)]
    Internal(#[source] anyhow::Error),
}

impl Coded for AuthError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::InvalidCredentials => Code::InvalidCredentials,
            Self::Unauthorized(_) => Code::Unauthorized,
            Self::EmailTaken => Code::EmailTaken,
            Self::NotFound(_) => Code::NotFound,
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

impl From<sea_orm::DbErr> for AuthError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// Signing in and checking who is signed in.
pub struct Auth {
    db: Db,
    keys: JwtKeys,
    /// A real Argon2 hash that no password matches, verified for unknown emails.
    dummy_hash: String,
}

impl Auth {
    /// Prepares the keys (a random secret in dev mode without one, with a warning)
    /// and creates the configured first admin when no user has that email.
    pub async fn start(db: Db, settings: &AuthSettings, dev: bool) -> anyhow::Result<Self> {
        if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
            let created = users::ensure_admin(&db, email, password.expose())
                .await
                .map_err(|err| anyhow::anyhow!("creating the first admin {email}: {err}"))?;
            if created {
                tracing::info!(%email, "first admin created");
            }
        }
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                anyhow::ensure!(dev, "TENDERO_JWT_SECRET is required outside dev mode");
                tracing::warn!(
                    "dev mode without TENDERO_JWT_SECRET: using a random secret, tokens end with the process"
                );
                let mut bytes = vec![0u8; 48];
                rand::rng().fill_bytes(&mut bytes);
                bytes
            }
        };
        let keys = JwtKeys::new(&secret, &settings.jwt_issuer, settings.jwt_ttl_minutes);
        let dummy_hash = hash_password("tendero-timing-equaliser".to_owned())
            .await
            .context("preparing the sign-in hash")?;
        Ok(Self {
            db,
            keys,
            dummy_hash,
        })
    }

    /// Exchanges an email and password for a token.
    pub async fn login(&self, email: &str, password: &str) -> Result<SignedIn, AuthError> {
        if email.len() > 254 || password.len() > 1024 {
            return Err(AuthError::InvalidCredentials);
        }
        let user = users::authenticate(&self.db, email, password, &self.dummy_hash).await?;
        let (token, expires_in) = self.keys.issue(user.id, &user.email, user.rol);
        Ok(SignedIn {
            token,
            expires_in,
            usuario: user,
        })
    }

    /// Who a token says its bearer is, if the token is valid.
    pub fn verify(&self, token: &str) -> Result<Staff, AuthError> {
        let claims = self.keys.verify(token).map_err(|err| {
            AuthError::Unauthorized(match err {
                TokenError::Expired => "el token expiró: inicia sesión de nuevo",
                TokenError::WrongIssuer => "el token no fue emitido por este servidor",
                TokenError::Invalid => "el token no es válido",
            })
        })?;
        let id = claims
            .sub
            .parse()
            .map_err(|_| AuthError::Unauthorized("el token no es válido"))?;
        Ok(Staff {
            id,
            email: claims.email,
            rol: claims.rol,
        })
    }

    /// The signed-in staff member's user; a token whose user is gone is refused.
    pub async fn user(&self, staff: &Staff) -> Result<Usuario, AuthError> {
        users::get(&self.db, staff.id)
            .await
            .map_err(|err| match err {
                AuthError::NotFound(_) => {
                    AuthError::Unauthorized("el usuario del token ya no existe")
                }
                other => other,
            })
    }
}
