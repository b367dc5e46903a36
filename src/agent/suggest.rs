//! Recommendations in the conversation. A question that asks for them ("¿qué me
//! recomiendas?", "¿qué va bien con este taladro?", "algo parecido pero más barato")
//! gets the recommended products among its sources, marked with why, so that either
//! generator can offer them, cited and price-checked like every product; and an answer
//! that speaks of a product is followed by what goes with it, shown by the chat page
//! under "También te puede interesar".

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::entities::producto;
use crate::llm::source::{Source, SourceKind};
use crate::recommend::{Ask, Motivo, Recomendacion};
use crate::retrieval::search::Filters;
use crate::text::fold;

use super::Agent;
use super::context::Sources;

/// Recommended products added to a question's sources, and suggested after an answer.
const RECOMMENDED: usize = 3;

/// What kind of recommendation a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wish {
    /// What goes with a product.
    Complements,
    /// Something like a product; `cheaper`: for less than it.
    Similar { cheaper: bool },
    /// Anything the shop would suggest.
    ForYou,
}

const COMPLEMENTS: &[&str] = &[
    "va bien con",
    "van bien con",
    "combina con",
    "combinan con",
    "complement",
    "acompan",
    "que mas necesito",
    "goes with",
    "go with",
    "goes well",
];
const SIMILAR: &[&str] = &[
    "parecid",
    "similar",
    "alternativ",
    "otra opcion",
    "otras opciones",
    "like this",
];
const CHEAPER: &[&str] = &[
    "mas barat",
    "mas economic",
    "menos caro",
    "cheaper",
    "less expensive",
];
const FOR_YOU: &[&str] = &[
    "recomiend",
    "recomend",
    "sugier",
    "suger",
    "recommend",
    "suggest",
];

/// The recommendation a question asks for, if any (by its words, accents and case
/// aside).
pub fn wish(question: &str) -> Option<Wish> {
    let text = format!(" {} ", fold(question));
    let has = |cues: &[&str]| cues.iter().any(|c| text.contains(c));
    if has(COMPLEMENTS) {
        Some(Wish::Complements)
    } else if has(CHEAPER) {
        Some(Wish::Similar { cheaper: true })
    } else if has(SIMILAR) {
        Some(Wish::Similar { cheaper: false })
    } else if has(FOR_YOU) {
        Some(Wish::ForYou)
    } else {
        None
    }
}

fn ask(precio_max: Option<i64>) -> Ask {
    let filters = Filters {
        precio_max,
        en_stock: true,
        ..Filters::default()
    };
    Ask::new(Some(RECOMMENDED), filters, false).expect("a valid request")
}

/// The products the recommender gives for `wish`, around the first product of the
/// sources (the one the question is about); "for you" also from what was clicked in
/// conversation `chat_id`. With `question`, only the products it names count (a
/// search always finds something near a question that names nothing).
pub async fn recommend(
    agent: &Agent,
    chat_id: &str,
    question: Option<&str>,
    wish: Wish,
    sources: &Sources,
    precio_max: Option<i64>,
) -> anyhow::Result<Vec<Recomendacion>> {
    let products: Vec<&Source> = sources
        .all()
        .iter()
        .filter(|s| s.tipo == SourceKind::Producto)
        .filter(|s| question.is_none_or(|q| crate::llm::extractive::named(q, s)))
        .collect();
    let anchor = products.first();
    let recommender = &agent.recommender;
    Ok(match (wish, anchor) {
        (Wish::Complements, Some(anchor)) => {
            recommender.complements(anchor.id, &ask(precio_max)).await?
        }
        (Wish::Similar { cheaper }, Some(anchor)) => {
            let cap = if cheaper {
                anchor.precio.map(|p| p.cents() - 1)
            } else {
                None
            };
            let cap = match (cap, precio_max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            recommender.similar(anchor.id, &ask(cap)).await?
        }
        _ => {
            let ids: Vec<i64> = products.iter().take(RECOMMENDED).map(|s| s.id).collect();
            recommender
                .for_conversation(Some(chat_id), &ids, &ask(precio_max))
                .await?
        }
    })
}

/// Adds recommended products to `sources` (a product already there gets its reason),
/// with live rows; returns their source numbers.
pub async fn add(
    agent: &Agent,
    sources: &mut Sources,
    found: &[Recomendacion],
) -> anyhow::Result<Vec<usize>> {
    let ids: Vec<i64> = found.iter().map(|r| r.producto.id).collect();
    let rows = producto::Entity::find()
        .filter(producto::Column::Id.is_in(ids))
        .all(agent.db.conn())
        .await?;
    let mut numbers = Vec::new();
    for r in found {
        if let Some(row) = rows.iter().find(|p| p.id == r.producto.id) {
            numbers.push(sources.recommended(row, r.motivo.as_str()));
        }
    }
    Ok(numbers)
}

/// What goes with the first product an answer cites, as extra sources shown after it
/// (none when the answer already was a recommendation or cites no product).
pub async fn after_answer(agent: &Agent, sources: &mut Sources, cited: &[Source]) -> Vec<Source> {
    if cited.iter().any(|s| s.motivo.is_some()) {
        return Vec::new();
    }
    let Some(anchor) = cited.iter().find(|s| s.tipo == SourceKind::Producto) else {
        return Vec::new();
    };
    let found = match agent.recommender.complements(anchor.id, &ask(None)).await {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "no suggestions after the answer");
            return Vec::new();
        }
    };
    // Only what the orders show goes with it: without orders enough there is nothing
    // to suggest, and popular products would be noise under every answer.
    let found: Vec<Recomendacion> = found
        .into_iter()
        .filter(|r| matches!(r.motivo, Motivo::CompradosJuntos | Motivo::MismosClientes))
        .filter(|r| {
            !cited
                .iter()
                .any(|c| c.tipo == SourceKind::Producto && c.id == r.producto.id)
        })
        .collect();
    match add(agent, sources, &found).await {
        Ok(numbers) => sources
            .all()
            .iter()
            .filter(|s| numbers.contains(&s.n))
            .cloned()
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "no suggestions after the answer");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_that_ask_for_recommendations_are_told_apart() {
        assert_eq!(
            wish("¿Qué va bien con este taladro?"),
            Some(Wish::Complements)
        );
        assert_eq!(wish("¿Qué me recomiendas?"), Some(Wish::ForYou));
        assert_eq!(
            wish("algo parecido pero más barato"),
            Some(Wish::Similar { cheaper: true })
        );
        assert_eq!(
            wish("¿Tienen algo similar?"),
            Some(Wish::Similar { cheaper: false })
        );
        assert_eq!(wish("What goes with this drill?"), Some(Wish::Complements));
        assert_eq!(wish("¿Tienen taladros inalámbricos?"), None);
        assert_eq!(wish("¿Cuánto cuesta el envío?"), None);
    }
}
