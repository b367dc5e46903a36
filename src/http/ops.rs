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
    let index = app.index();
    let index_status = index.status();
    let lancedb_ok = match index.store().count().await {
        Ok(rows) => {
            components.insert(
                "lancedb",
                Component {
                    status: "ok",
                    detail: Some(format!(
                        "{rows} fragmentos, versión {}",
                        index_status.lancedb_version
                    )),
                },
            );
            true
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "LanceDB read failed");
            components.insert(
                "lancedb",
                Component {
                    status: "down",
                    detail: Some("el índice de búsqueda (LanceDB) no responde".to_owned()),
                },
            );
            false
        }
    };
    components.insert(
        "faiss",
        Component {
            status: "ok",
            detail: Some(format!(
                "{} vectores ({})",
                index_status.faiss_vectors, index_status.faiss
            )),
        },
    );
    let lexical_only = index_status.embedder.starts_with("hash:");
    components.insert(
        "embedder",
        Component {
            status: "ok",
            detail: Some(if lexical_only {
                format!(
                    "{} (sin modelo: la búsqueda semántica solo compara palabras)",
                    index_status.embedder
                )
            } else {
                index_status.embedder.clone()
            }),
        },
    );
    let generator = app.agent().status().await;
    components.insert(
        "generator",
        Component {
            status: if generator.available { "ok" } else { "down" },
            detail: Some(generator.detail),
        },
    );
    // Voice is optional: without a model the rest of the API serves on.
    let speech = app.speech().status();
    components.insert(
        "whisper",
        Component {
            status: if speech.available {
                "ok"
            } else {
                "unavailable"
            },
            detail: Some(speech.detail),
        },
    );
    // Without Redis a node still serves its own clients: reported, not fatal.
    if let Some(nodes) = app.nodes() {
        let reached = nodes.ping().await;
        if let Err(err) = &reached {
            tracing::warn!(error = %format!("{err:#}"), "Redis ping failed");
        }
        components.insert(
            "redis",
            Component {
                status: if reached.is_ok() { "ok" } else { "down" },
                detail: Some(if reached.is_ok() {
                    "Socket.IO compartido con los demás nodos".to_owned()
                } else {
                    "Redis no responde: las conversaciones no llegan a sus otras pestañas ni a \
                     otros nodos hasta que vuelva (el nodo se reconecta solo)"
                        .to_owned()
                }),
            },
        );
    }
    let db_ok = db_ok && lancedb_ok;
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
