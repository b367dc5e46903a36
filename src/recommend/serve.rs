//! Serving: a ranking over the trained items becomes products a customer may be shown,
//! read from the database at answer time (live price and stock), never an inactive or
//! deleted product, out-of-stock ones only when asked, and the filters applied to the
//! live rows. Candidates are read in growing slices of the ranking; when the ranking
//! runs out, the catalog's other products that pass the filters complete the list, so
//! `k` results come back whenever `k` products pass.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use utoipa::ToSchema;

use super::data::Bought;
use super::fusion::{Weights, fuse};
use super::models::SEQUENTIAL;
use super::train::Trained;
use crate::db::Db;
use crate::db::entities::producto;
use crate::retrieval::filters::Filters;
use crate::retrieval::live::still_matches;
use crate::shop::productos::Producto;
use crate::text::fold;

/// Why a product is recommended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Motivo {
    /// The customer buys it again and again.
    Recompra,
    /// Customers who bought what this customer bought also bought it.
    ParaTi,
    /// Bought in the same orders as the product asked about.
    CompradosJuntos,
    /// Bought by the same customers as the product asked about.
    MismosClientes,
    /// Its text is close to the product asked about.
    Parecido,
    /// Many customers bought it lately.
    Popular,
}

impl Motivo {
    /// The name clients read (`comprados_juntos`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recompra => "recompra",
            Self::ParaTi => "para_ti",
            Self::CompradosJuntos => "comprados_juntos",
            Self::MismosClientes => "mismos_clientes",
            Self::Parecido => "parecido",
            Self::Popular => "popular",
        }
    }
}

/// One recommended product, as the database has it now.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Recomendacion {
    /// Higher is better; comparable within one answer only.
    pub score: f32,
    pub motivo: Motivo,
    pub producto: Producto,
}

/// One candidate of a ranking: a product id, its score and why.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub product: i64,
    pub score: f32,
    pub motivo: Motivo,
}

/// Which products a list may hold.
pub struct Choice<'a> {
    pub k: usize,
    pub filters: &'a Filters,
    /// Never these products.
    pub exclude: &'a HashSet<i64>,
    /// Never products of this category (folded): a complement is something else.
    pub not_category: Option<String>,
}

impl Choice<'_> {
    fn accepts(&self, row: &producto::Model) -> bool {
        !self.exclude.contains(&row.id)
            && still_matches(row, self.filters)
            && self
                .not_category
                .as_deref()
                .is_none_or(|c| fold(&row.categoria) != c)
    }
}

/// Product rows read while one request builds its lists, so that a batch reads each
/// product once.
#[derive(Default)]
pub struct Rows(HashMap<i64, producto::Model>);

/// The first `k` candidates (in order) whose live rows the choice accepts; then, when
/// fewer than `k` passed, other products it accepts (lowest id first, as `Popular`
/// with score 0). Rows already in `rows` are not read again.
pub async fn pick(
    db: &Db,
    ranking: &[Candidate],
    choice: &Choice<'_>,
    rows: &mut Rows,
) -> Result<Vec<Recomendacion>, sea_orm::DbErr> {
    let k = choice.k;
    let mut out: Vec<Recomendacion> = Vec::with_capacity(k);
    let mut taken: HashSet<i64> = HashSet::new();
    let mut start = 0;
    let mut slice = (4 * k).max(32);
    while out.len() < k && start < ranking.len() {
        let end = (start + slice).min(ranking.len());
        let part: Vec<&Candidate> = ranking[start..end]
            .iter()
            .filter(|c| !choice.exclude.contains(&c.product) && !taken.contains(&c.product))
            .collect();
        let missing: Vec<i64> = part
            .iter()
            .map(|c| c.product)
            .filter(|id| !rows.0.contains_key(id))
            .collect();
        if !missing.is_empty() {
            let read = producto::Entity::find()
                .filter(producto::Column::Id.is_in(missing))
                .all(db.conn())
                .await?;
            rows.0.extend(read.into_iter().map(|p| (p.id, p)));
        }
        for candidate in part {
            if out.len() == k {
                break;
            }
            let Some(row) = rows.0.get(&candidate.product) else {
                continue;
            };
            if choice.accepts(row) && taken.insert(row.id) {
                out.push(Recomendacion {
                    score: candidate.score,
                    motivo: candidate.motivo,
                    producto: row.clone().into(),
                });
            }
        }
        start = end;
        slice *= 4;
    }
    // The ranking ran out: complete from the catalog, a page at a time.
    let mut after = 0i64;
    while out.len() < k {
        let page: Vec<producto::Model> = producto::Entity::find()
            .filter(producto::Column::Id.gt(after))
            .filter(producto::Column::Activo.eq(true))
            .filter(producto::Column::EliminadoAt.is_null())
            .order_by_asc(producto::Column::Id)
            .limit(256)
            .all(db.conn())
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for row in page {
            if out.len() == k {
                break;
            }
            if choice.accepts(&row) && taken.insert(row.id) {
                out.push(Recomendacion {
                    score: 0.0,
                    motivo: Motivo::Popular,
                    producto: row.into(),
                });
            }
        }
    }
    Ok(out)
}

/// The fused ranking of every item for a history of purchases and clicks; bought
/// items skipped when asked.
pub(super) fn rank_for(
    trained: &Trained,
    history: &[Bought],
    clicks: &[Bought],
    weights: &Weights,
    exclude_bought: bool,
) -> Vec<Candidate> {
    let signals = trained
        .models
        .signals_with(history, clicks, weights.0[SEQUENTIAL] > 0.0);
    let mut fused = Vec::new();
    fuse(&signals, weights, &mut fused);
    let own: HashSet<u32> = history.iter().map(|b| b.item).collect();
    let mut ranked: Vec<usize> = (0..fused.len())
        .filter(|&i| !(exclude_bought && own.contains(&(i as u32))))
        .collect();
    ranked.sort_by(|&a, &b| fused[b].total_cmp(&fused[a]).then(a.cmp(&b)));
    ranked
        .into_iter()
        .map(|i| {
            let motivo = if signals.repurchase[i] > 0.0 && weights.0[0] > 0.0 {
                Motivo::Recompra
            } else if signals.ease[i] > 0.0
                || signals.knn[i] > 0.0
                || (signals.sequential[i] > 0.5 && weights.0[SEQUENTIAL] > 0.0)
            {
                Motivo::ParaTi
            } else {
                Motivo::Popular
            };
            Candidate {
                product: trained.items.products[i],
                score: fused[i],
                motivo,
            }
        })
        .collect()
}

/// Every item by popularity, after what the ranking already has.
pub(super) fn append_popular(trained: &Trained, ranking: &mut Vec<Candidate>) {
    let popularity = &trained.models.popularity;
    let mut ranked: Vec<usize> = (0..popularity.len()).collect();
    ranked.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]).then(a.cmp(&b)));
    let max = trained
        .models
        .popularity
        .iter()
        .copied()
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    ranking.extend(ranked.into_iter().map(|item| Candidate {
        product: trained.items.products[item],
        score: 0.01 * popularity[item] / max,
        motivo: Motivo::Popular,
    }));
}
