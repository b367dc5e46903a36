//! The `auth` section: how staff tokens are signed, and the first admin.

use serde::Deserialize;

use super::{ConfigError, Secret};

/// Shortest JWT signing secret accepted outside dev mode (256 bits for HS256).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Read by [`crate::auth`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HS256 signing secret, at least [`MIN_JWT_SECRET_BYTES`] bytes outside dev mode.
    pub jwt_secret: Option<Secret>,
    /// `iss` claim written into and required from every token.
    pub jwt_issuer: String,
    /// Token lifetime in minutes.
    pub jwt_ttl_minutes: i64,
    /// First admin, created at start-up when no user has this email.
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_issuer: "tendero".to_owned(),
            jwt_ttl_minutes: 8 * 60,
            admin_email: None,
            admin_password: None,
        }
    }
}

impl AuthSettings {
    pub(super) fn check(&self, dev: bool) -> Result<(), ConfigError> {
        match &self.jwt_secret {
            None if !dev => return Err(ConfigError::MissingJwtSecret),
            Some(secret) if !dev && secret.expose().len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError::ShortJwtSecret(secret.expose().len()));
            }
            _ => {}
        }
        if self.jwt_ttl_minutes <= 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_JWT_TTL_MINUTES must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}
