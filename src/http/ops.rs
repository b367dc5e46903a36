//! Liveness and readiness for load balancers and orchestrators.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::agent::Agent;
use crate::cluster::Cluster;
use crate::db::Db;
use crate::retrieval::Search;
use crate::speech::Speech;

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
pub async fn ready(
    State(db): State<Db>,
    State(search): State<Arc<Search>>,
    State(agent): State<Arc<Agent>>,
    State(speech): State<Arc<Speech>>,
    State(cluster): State<Option<Arc<Cluster>>>,
) -> (StatusCode, Json<Readiness>) {
    let mut components = BTreeMap::new();
    let db_ok = match db.ping().await {
        Ok(()) => {
            components.insert(
                "db",
                Component {
                    status: "ok",
                    detail: Some(format!("{:?}", db.backend()).to_lowercase()),
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
    let index = search.index();
    let index_status = index.status();
    let backlog = search.backlog();
    let lancedb_ok = match index.store().count().await {
        Ok(rows) => {
            let mut detail = format!(
                "{rows} fragmentos, versión {}",
                index_status.lancedb_version
            );
            if backlog.pending > 0 {
                detail.push_str(&format!("; {} productos por reindexar", backlog.pending));
            }
            if backlog.failures > 0 {
                // The cause is in the log: this endpoint answers anyone.
                detail.push_str(&format!(
                    " ({} intentos fallidos; la causa está en el registro)",
                    backlog.failures
                ));
            }
            components.insert(
                "lancedb",
                Component {
                    status: if backlog.failures > 0 {
                        "degraded"
                    } else {
                        "ok"
                    },
                    detail: Some(detail),
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
    let generator = agent.status().await;
    components.insert(
        "generator",
        Component {
            status: if generator.available { "ok" } else { "down" },
            detail: Some(generator.detail),
        },
    );
    // Voice is optional: without a model the rest of the API serves on.
    let speech = speech.status();
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
    if let Some(cluster) = cluster {
        let reached = cluster.ping().await;
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
