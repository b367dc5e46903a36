//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::app::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
}

/// `GET /health`: the process answers.
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize)]
pub struct Component {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    components: BTreeMap<&'static str, Component>,
}

/// `GET /ready`: each component's status; 503 when one the API needs is down.
pub async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let mut components = BTreeMap::new();
    let db_ok = match app.db().ping().await {
        Ok(()) => {
            components.insert(
                "db",
                Component {
                    status: "ok",
                    detail: Some(format!("{:?}", app.db().backend()).to_lowercase()),
                },
            );
            true
        }
        Err(err) => {
            tracing::warn!(error = %err, "database ping failed");
            components.insert(
                "db",
                Component {
                    status: "down",
                    detail: Some("la base de datos no responde".to_owned()),
                },
            );
            false
        }
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if db_ok { "ok" } else { "down" },
            components,
        }),
    )
}
