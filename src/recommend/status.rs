//! What `GET /api/recomendaciones/estado` shows: the generation serving, what it learnt
//! from, its models, weights and evaluation, and the last failed training.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Recommender;
use super::fusion::Weights;
use super::models;

/// What `GET /api/recomendaciones/estado` shows.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EstadoRecomendaciones {
    /// The generation serving now (none before the first training finishes).
    pub version: Option<u64>,
    pub entrenado_at: Option<DateTime<Utc>>,
    /// Seconds the training took (models and, with orders enough, the evaluation).
    pub segundos: Option<f64>,
    pub pedidos: usize,
    pub lineas: usize,
    pub clientes: usize,
    pub productos: usize,
    /// The models trained and what each holds.
    pub modelos: Vec<Modelo>,
    /// Fusion weights per use, by signal name.
    #[schema(value_type = Object)]
    pub pesos: serde_json::Value,
    /// The shop's own temporal evaluation (NDCG@10 and more), with orders enough.
    #[schema(value_type = Option<Object>)]
    pub evaluacion: Option<serde_json::Value>,
    /// How much this server's resident memory grew when it loaded the generation, in
    /// MB (Linux). Meaningful in a server started with the generation stored; right
    /// after a training in the same process it understates.
    pub memoria_al_cargar_mb: Option<f64>,
    /// A training is running now.
    pub entrenando: bool,
    /// The last failed training's reason (the previous generation kept serving).
    pub ultimo_error: Option<String>,
}

/// One trained model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Modelo {
    pub nombre: String,
    pub descripcion: String,
}

impl Recommender {
    /// The current generation, its data and its evaluation.
    pub fn status(&self) -> EstadoRecomendaciones {
        let trained = self.trained();
        let entrenando = self.training.try_lock().is_err();
        let ultimo_error = self.last_error.lock().expect("error lock").clone();
        let Some(t) = trained else {
            return EstadoRecomendaciones {
                version: None,
                entrenado_at: None,
                segundos: None,
                pedidos: 0,
                lineas: 0,
                clientes: 0,
                productos: 0,
                modelos: Vec::new(),
                pesos: serde_json::Value::Null,
                evaluacion: None,
                memoria_al_cargar_mb: None,
                entrenando,
                ultimo_error,
            };
        };
        let describe = |w: &Weights| {
            serde_json::Value::Object(
                models::SIGNALS
                    .iter()
                    .zip(w.0)
                    .map(|(name, weight)| ((*name).to_owned(), serde_json::json!(weight)))
                    .collect(),
            )
        };
        let ease_items = t.models.ease.as_ref().map_or(0, |e| e.items.len());
        let pairs: usize = t.models.together.lists.iter().map(Vec::len).sum();
        let sequential = t.models.sequential.as_ref().map(|m| {
            let training = t.summary.sequential.as_ref().map_or(String::new(), |s| {
                format!(
                    "; {} épocas en {:.1} s, pérdida final {:.3}",
                    s.epochs, s.seconds, s.final_loss
                )
            });
            Modelo {
                nombre: "secuencial".into(),
                descripcion: format!(
                    "gSASRec: {} bloques de atención, dimensión {}, últimos {} productos del cliente{training}",
                    m.blocks, m.dim, m.max_len
                ),
            }
        });
        EstadoRecomendaciones {
            version: Some(t.version),
            entrenado_at: Some(t.trained_at),
            segundos: Some(t.summary.seconds),
            pedidos: t.summary.orders,
            lineas: t.summary.lines,
            clientes: t.summary.customers,
            productos: t.items.items(),
            modelos: vec![
                Modelo {
                    nombre: "popularidad".into(),
                    descripcion: format!(
                        "clientes distintos en los últimos {} días",
                        t.models.settings.popularity_days
                    ),
                },
                Modelo {
                    nombre: "recompra".into(),
                    descripcion: format!(
                        "productos del propio cliente, vida media {} días",
                        t.models.settings.half_life_days
                    ),
                },
                Modelo {
                    nombre: "item-knn".into(),
                    descripcion: format!(
                        "coseno entre productos por clientes, {} vecinos",
                        t.models.settings.neighbours
                    ),
                },
                Modelo {
                    nombre: "ease".into(),
                    descripcion: format!(
                        "{ease_items} productos, lambda {}",
                        t.models.settings.ease_lambda
                    ),
                },
                Modelo {
                    nombre: "comprados_juntos".into(),
                    descripcion: format!(
                        "{pairs} pares con lift > 1 y soporte ≥ {}",
                        t.models.settings.min_support
                    ),
                },
            ]
            .into_iter()
            .chain(sequential)
            .collect(),
            pesos: serde_json::json!({ "para_ti": describe(&t.summary.uses.para_ti), "nuevos": describe(&t.summary.uses.nuevos) }),
            evaluacion: t.summary.evaluation.clone(),
            memoria_al_cargar_mb: t
                .loaded_rss_bytes
                .map(|b| (b as f64 / 1_048_576.0 * 10.0).round() / 10.0),
            entrenando,
            ultimo_error,
        }
    }
}
