//! `POST /api/auth/login` and `GET /api/auth/me`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::sync::Arc;

use super::error::ApiError;
use super::extract::{ApiJson, Staff};
use crate::auth::{Auth, Usuario};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[schema(example = "admin@tendero.local")]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginReply {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub usuario: Usuario,
}

/// Exchanges an email and password for a JWT.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Login,
    responses(
        (status = 200, description = "Signed in", body = LoginReply),
        (status = 401, description = "Wrong email or password", body = crate::http::ErrorBody),
    ))]
pub async fn login(
    State(auth): State<Arc<Auth>>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<LoginReply>, ApiError> {
    let signed_in = auth.login(&body.email, &body.password).await?;
    Ok(Json(LoginReply {
        token: signed_in.token,
        token_type: "Bearer",
        expires_in: signed_in.expires_in,
        usuario: signed_in.usuario,
    }))
}

/// The signed-in staff member.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = Usuario),
        (status = 401, description = "Missing, expired or invalid token", body = crate::http::ErrorBody),
    ))]
pub async fn me(staff: Staff, State(auth): State<Arc<Auth>>) -> Result<Json<Usuario>, ApiError> {
    Ok(Json(auth.user(&staff).await?))
}
