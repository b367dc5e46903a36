//! Staff authentication: Argon2id password hashes, HS256 JWTs, and the two roles.
//!
//! Tokens carry the user id, email and role, and are checked for signature, expiry
//! and issuer on every request; the signing key lives in [`crate::app::AppState`].

mod jwt;
mod password;

pub use jwt::{Claims, JwtKeys, TokenError};
pub use password::{hash_password, verify_password};

use serde::{Deserialize, Serialize};

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
