//! Extractors that turn requests into typed input or an [`ApiError`], so that every
//! rejection (bad JSON, wrong content type, oversized body, bad query or path, missing
//! or invalid token, wrong role) answers with the one JSON error shape. Who is
//! asking is visible in a handler's signature: [`Staff`], [`Admin`], [`MaybeStaff`].

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::auth::{Auth, AuthError, Role};
use crate::error::Refusal;

pub use crate::auth::Staff;

/// `axum::Json` with rejections mapped onto [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Refusal::PayloadTooLarge,
                StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                    Refusal::UnsupportedMediaType("application/json")
                }
                StatusCode::UNPROCESSABLE_ENTITY => {
                    Refusal::InvalidBody(strip_prefix(&rejection.body_text()))
                }
                _ => Refusal::InvalidJson(strip_prefix(&rejection.body_text())),
            }
            .into()),
        }
    }
}

/// `axum::extract::Query` with rejections mapped onto [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|rejection: QueryRejection| {
                Refusal::InvalidQuery(strip_prefix(&rejection.body_text())).into()
            })
    }
}

/// `axum::extract::Path` with rejections mapped onto [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|rejection: PathRejection| {
                Refusal::InvalidPath(strip_prefix(&rejection.body_text())).into()
            })
    }
}

/// axum's messages start with a generic English sentence; keep only the specific part.
fn strip_prefix(text: &str) -> String {
    text.split_once(": ")
        .map(|(_, rest)| rest)
        .unwrap_or(text)
        .to_owned()
}

/// A signed-in admin; any other role is refused with 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub Staff);

/// What the [`identify`] middleware learned from a request's `Authorization` header.
#[derive(Debug, Clone)]
pub enum Identity {
    Staff(Staff),
    Refused(&'static str),
}

/// Reads and verifies a bearer token; the refusal says why it lets no one in.
pub fn bearer_staff(headers: &HeaderMap, auth: &Auth) -> Result<Staff, &'static str> {
    let header = headers
        .get(header::AUTHORIZATION)
        .ok_or("falta el token (Authorization: Bearer …)")?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("la cabecera Authorization debe ser 'Bearer <token>'")?;
    auth.verify(token).map_err(|err| match err {
        AuthError::Unauthorized(reason) => reason,
        _ => "el token no es válido",
    })
}

/// Middleware: verifies a presented token once per request and records the outcome,
/// for the rate limiter (which keys signed-in staff by user) and the extractors.
/// It refuses nothing itself: routes that need a user say so with [`Staff`] or [`Admin`].
pub async fn identify(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        let identity = match bearer_staff(req.headers(), &auth) {
            Ok(staff) => Identity::Staff(staff),
            Err(reason) => Identity::Refused(reason),
        };
        req.extensions_mut().insert(identity);
    }
    next.run(req).await
}

impl<S> FromRequestParts<S> for Staff
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::Staff(staff)) => Ok(staff.clone()),
            Some(Identity::Refused(reason)) => Err(Refusal::Unauthorized(reason).into()),
            None => bearer_staff(&parts.headers, &Arc::<Auth>::from_ref(state))
                .map_err(|reason| Refusal::Unauthorized(reason).into()),
        }
    }
}

/// The signed-in staff member when the request carries a token; anonymous
/// requests pass as `None`, a bad token is refused.
#[derive(Debug, Clone)]
pub struct MaybeStaff(pub Option<Staff>);

impl<S> FromRequestParts<S> for MaybeStaff
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<Identity>().is_none()
            && !parts.headers.contains_key(header::AUTHORIZATION)
        {
            return Ok(Self(None));
        }
        Staff::from_request_parts(parts, state)
            .await
            .map(|s| Self(Some(s)))
    }
}

impl<S> FromRequestParts<S> for Admin
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let staff = Staff::from_request_parts(parts, state).await?;
        if staff.rol == Role::Admin {
            Ok(Admin(staff))
        } else {
            Err(Refusal::Forbidden.into())
        }
    }
}
