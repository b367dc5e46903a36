//! Issuing and checking HS256 tokens.

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;

/// The claims Tendero writes into every token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id, as a string per RFC 7519.
    pub sub: String,
    pub email: String,
    pub rol: Role,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("el token expiró")]
    Expired,
    #[error("el token no fue emitido por este servidor")]
    WrongIssuer,
    #[error("el token no es válido")]
    Invalid,
}

/// Signing and verification keys with the issuer and lifetime they apply.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_seconds: i64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, ttl_minutes: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            ttl_seconds: ttl_minutes * 60,
        }
    }

    /// Issues a token for a user; returns it with its lifetime in seconds.
    pub fn issue(&self, user_id: i64, email: &str, rol: Role) -> (String, i64) {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            email: email.to_owned(),
            rol,
            iss: self.issuer.clone(),
            iat: now,
            exp: now + self.ttl_seconds,
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it to forge expired or foreign tokens).
    pub fn sign(&self, claims: &Claims) -> (String, i64) {
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with a secret key cannot fail");
        (token, claims.exp - claims.iat)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                _ => TokenError::Invalid,
            })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", "tendero", 60);
        let (token, ttl) = keys.issue(7, "a@b.co", Role::Vendedor);
        assert_eq!(ttl, 3600);
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "7");
        assert_eq!(claims.rol, Role::Vendedor);

        let other = JwtKeys::new(b"another-secret-another-secret-xx", "tendero", 60);
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));

        let foreign = JwtKeys::new(b"0123456789abcdef0123456789abcdef", "otro", 60);
        let (token, _) = foreign.issue(7, "a@b.co", Role::Admin);
        assert_eq!(keys.verify(&token), Err(TokenError::WrongIssuer));

        let now = Utc::now().timestamp();
        let (expired, _) = keys.sign(&Claims {
            sub: "7".into(),
            email: "a@b.co".into(),
            rol: Role::Admin,
            iss: "tendero".into(),
            iat: now - 7200,
            exp: now - 3600,
        });
        assert_eq!(keys.verify(&expired), Err(TokenError::Expired));
        assert_eq!(keys.verify("not.a.token"), Err(TokenError::Invalid));
    }
}
