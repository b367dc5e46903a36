//! `POST /api/eventos`: what an app's customers did with what they were shown, a
//! click on a product of a search or an answer, or a rating of an answer. Public, like
//! search; checked against what was shown and refused with a clear error otherwise.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::ApiJson;
use super::rate_limit::Client;
use crate::error::FieldError;
use crate::learning::{Click, Intake, Origin, Rating, Sender};

/// Largest event body accepted, in bytes.
pub const MAX_EVENT_BYTES: usize = 8 * 1024;

/// An event: `{"tipo": "click", busqueda_id | respuesta_id, producto_id, posicion}` or
/// `{"tipo": "valoracion", respuesta_id, util, comentario?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "tipo", rename_all = "snake_case", deny_unknown_fields)]
pub enum Evento {
    /// A click on a product a search or an answer showed.
    Click {
        /// The id `/api/search` returned with the results.
        busqueda_id: Option<String>,
        /// The id an answer came with (`respuesta_id`).
        respuesta_id: Option<i64>,
        producto_id: i64,
        /// The product's place in the results or the answer's sources, from 1.
        posicion: u32,
    },
    /// Whether an answer was useful, with an optional comment (up to 1000 characters).
    Valoracion {
        respuesta_id: i64,
        util: bool,
        comentario: Option<String>,
    },
}

/// The event was accepted (it is written in the background).
#[derive(Debug, Serialize, ToSchema)]
pub struct Aceptado {
    pub aceptado: bool,
}

#[utoipa::path(post, path = "/api/eventos", tag = "eventos", request_body = Evento,
    responses((status = 202, body = Aceptado),
        (status = 400, description = "malformed, or the product was not shown at that place",
            body = ErrorBody),
        (status = 404, description = "the search or the answer does not exist", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    State(intake): State<Arc<Intake>>,
    Extension(Client(key)): Extension<Client>,
    ApiJson(evento): ApiJson<Evento>,
) -> Result<(StatusCode, axum::Json<Aceptado>), ApiError> {
    let from = Sender {
        canal: "rest",
        key: &key,
    };
    match evento {
        Evento::Click {
            busqueda_id,
            respuesta_id,
            producto_id,
            posicion,
        } => {
            let origin = match (busqueda_id, respuesta_id) {
                (Some(search), None) => Origin::Search(search),
                (None, Some(answer)) => Origin::Answer(answer),
                _ => {
                    return Err(FieldError::new(
                        "busqueda_id",
                        "un click viene de una búsqueda (busqueda_id) o de una respuesta \
                         (respuesta_id): da uno de los dos",
                    )
                    .into());
                }
            };
            intake
                .click(
                    Click {
                        origin,
                        producto_id,
                        posicion,
                    },
                    &from,
                )
                .await?;
        }
        Evento::Valoracion {
            respuesta_id,
            util,
            comentario,
        } => {
            intake
                .rate(
                    Rating {
                        respuesta_id,
                        util,
                        comentario,
                    },
                    &from,
                )
                .await?;
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Aceptado { aceptado: true }),
    ))
}
