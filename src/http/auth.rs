//! `POST /api/auth/login` and `GET /api/auth/me`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::extract::{ApiJson, Staff};
use crate::shop::usuarios::{self, Usuario};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[schema(example = "admin@tendero.local")]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
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
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Wrong email or password", body = crate::http::ErrorBody),
    ))]
pub async fn login(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<Session>, ApiError> {
    if body.email.len() > 254 || body.password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let user =
        usuarios::authenticate(app.db(), &body.email, &body.password, app.dummy_hash()).await?;
    let (token, expires_in) = app.jwt().issue(user.id, &user.email, user.rol);
    Ok(Json(Session {
        token,
        token_type: "Bearer",
        expires_in,
        usuario: user,
    }))
}

/// The signed-in staff member.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = Usuario),
        (status = 401, description = "Missing, expired or invalid token", body = crate::http::ErrorBody),
    ))]
pub async fn me(staff: Staff, State(app): State<AppState>) -> Result<Json<Usuario>, ApiError> {
    let user = usuarios::get(app.db(), staff.id)
        .await
        .map_err(|err| match err {
            ApiError::NotFound(_) => ApiError::Unauthorized("el usuario del token ya no existe"),
            other => other,
        })?;
    Ok(Json(user))
}
