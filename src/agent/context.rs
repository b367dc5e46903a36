//! What an answer may say: the products and shop-document passages retrieved for a
//! question, numbered so that the answer can cite them, with prices and stock read
//! from the database at question time.

use std::collections::HashMap;
use std::time::Instant;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::entities::{documento, producto};
use crate::llm::source::{Source, SourceKind, shorten};
use crate::retrieval::chunks::{document_chunks, document_of_key};
use crate::retrieval::search::{Filters, Mode};
use crate::retrieval::store::ChunkKind;
use crate::shop::types::Money;
use crate::text::words;

use super::Agent;
use super::memory::Turn;

/// Characters of a product description or document passage kept in a source.
const SNIPPET_CHARS: usize = 600;

/// Product `p` as source number `n`, with its current price and stock.
pub fn product_source(n: usize, p: &producto::Model) -> Source {
    Source {
        n,
        tipo: SourceKind::Producto,
        id: p.id,
        sku: Some(p.sku.clone()),
        titulo: p.nombre.clone(),
        categoria: Some(p.categoria.clone()),
        precio: Some(Money::from_cents(p.precio_centavos)),
        stock: Some(p.stock),
        fragmento: shorten(p.descripcion.as_deref().unwrap_or_default(), SNIPPET_CHARS),
        motivo: None,
    }
}

/// The sources of one answer, which tools may add to while it is written.
#[derive(Debug, Default, Clone)]
pub struct Sources(Vec<Source>);

impl Sources {
    pub fn all(&self) -> &[Source] {
        &self.0
    }

    /// The number of this product's source, adding it (with its current price and
    /// stock) when it is new; an existing one is refreshed with the newer values.
    pub fn product(&mut self, p: &producto::Model) -> usize {
        if let Some(existing) = self
            .0
            .iter_mut()
            .find(|s| s.tipo == SourceKind::Producto && s.id == p.id)
        {
            let n = existing.n;
            *existing = product_source(n, p);
            return n;
        }
        let n = self.0.len() + 1;
        self.0.push(product_source(n, p));
        n
    }

    /// Adds (or marks) this product as recommended, with why; returns its number.
    pub fn recommended(&mut self, p: &producto::Model, motivo: &str) -> usize {
        let n = self.product(p);
        if let Some(source) = self.0.iter_mut().find(|s| s.n == n) {
            source.motivo = Some(motivo.to_owned());
        }
        n
    }

    fn document(&mut self, id: i64, titulo: String, texto: &str) -> usize {
        let n = self.0.len() + 1;
        self.0.push(Source {
            n,
            tipo: SourceKind::Documento,
            id,
            sku: None,
            titulo,
            categoria: None,
            precio: None,
            stock: None,
            fragmento: shorten(texto, SNIPPET_CHARS),
            motivo: None,
        });
        n
    }
}

/// First words of a question that continues the previous one ("¿y en azul?").
const CONTINUING_WORDS: &[&str] = &["y", "tambien", "and", "also"];
/// Words that point back at something said before ("¿cuánto cuesta ese?").
const REFERRING_WORDS: &[&str] = &[
    "ese", "esa", "esos", "esas", "eso", "este", "esta", "estos", "estas", "esto", "otro", "otra",
    "otros", "otras", "mismo", "misma", "it", "that", "those", "them", "same", "this",
];
/// Fewer content words than this and a question cannot stand on its own.
const SHORT_QUESTION_WORDS: usize = 3;

/// The text to retrieve with: the question itself, or, when it is a follow-up that
/// cannot stand alone, the customer's previous question with it. This costs no
/// model call, so the first piece of the answer is not delayed by one; the model
/// still sees the whole recent conversation.
pub fn retrieval_query(question: &str, history: &[Turn]) -> String {
    let Some(previous) = history.iter().rev().find(|t| t.from_customer()) else {
        return question.to_owned();
    };
    let question_words = words(question);
    let refers_back = question_words
        .first()
        .is_some_and(|w| CONTINUING_WORDS.contains(&w.as_str()))
        || question_words
            .iter()
            .any(|w| REFERRING_WORDS.contains(&w.as_str()));
    if refers_back || question_words.len() < SHORT_QUESTION_WORDS {
        format!("{} {}", previous.contenido, question)
    } else {
        question.to_owned()
    }
}

/// The sources for a question: products (live price and stock) and passages.
pub struct Context {
    pub sources: Sources,
    pub retrieval_ms: f64,
    /// Until the question's vector was ready (next to nothing when it was cached).
    pub embed_ms: f64,
    /// The product and passage searches past that, with the products' live rows
    /// (their full-text halves run while the question is embedded).
    pub search_ms: f64,
    pub query: String,
}

pub async fn gather(
    agent: &Agent,
    chat_id: &str,
    question: &str,
    history: &[Turn],
) -> anyhow::Result<Context> {
    let started = Instant::now();
    let settings = &agent.settings;
    let search = &agent.search;
    // Corrected once here, so that both searches look for the same words (they find
    // nothing more to correct) and embed the query once between them.
    let query = retrieval_query(question, history);
    let query = search.correct(&query).unwrap_or(query);
    let product_filters = Filters {
        kind: Some(ChunkKind::Producto),
        ..Filters::default()
    };
    let (products, documents) = tokio::join!(
        search.products(
            &query,
            Mode::Hybrid,
            &product_filters,
            settings.context_products,
        ),
        async {
            if settings.context_documents == 0 {
                return Ok(Default::default());
            }
            search.documents(&query, settings.context_documents).await
        }
    );
    let (outcome, products) = products?;
    let documents = documents?;
    let searched = started.elapsed().as_secs_f64() * 1e3;
    // Both searches waited for the same vector.
    let embed_ms = outcome.embed_ms.max(documents.embed_ms);

    let mut sources = Sources::default();
    for hit in &products {
        sources.product(&hit.producto);
    }
    // Passages are re-cut from the documents in the database, the source of truth.
    let keys: Vec<(i64, usize)> = documents
        .hits
        .iter()
        .filter_map(|h| document_of_key(h.key))
        .collect();
    let ids: Vec<i64> = keys.iter().map(|(id, _)| *id).collect();
    let docs: HashMap<i64, documento::Model> = documento::Entity::find()
        .filter(documento::Column::Id.is_in(ids))
        .all(agent.db.conn())
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    for (id, n) in keys {
        let Some(doc) = docs.get(&id) else { continue };
        if let Some(chunk) = document_chunks(doc).into_iter().nth(n) {
            sources.document(id, chunk.title, &chunk.text);
        }
    }
    // A question that asks for recommendations gets them among its sources.
    if let Some(wish) = super::suggest::wish(question) {
        match super::suggest::recommend(agent, chat_id, Some(question), wish, &sources, None).await
        {
            Ok(found) => {
                super::suggest::add(agent, &mut sources, &found).await?;
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "no recommendations for the question")
            }
        }
    }
    Ok(Context {
        sources,
        retrieval_ms: started.elapsed().as_secs_f64() * 1e3,
        embed_ms,
        search_ms: searched - embed_ms,
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(rol: &str, text: &str) -> Turn {
        Turn {
            rol: rol.to_owned(),
            contenido: text.to_owned(),
        }
    }

    #[test]
    fn follow_ups_carry_the_previous_question() {
        let history = [
            turn("usuario", "¿Tienen taladros inalámbricos?"),
            turn("asistente", "Sí, el Taladro X [1]."),
        ];
        assert_eq!(
            retrieval_query("¿y en azul?", &history),
            "¿Tienen taladros inalámbricos? ¿y en azul?"
        );
        assert_eq!(
            retrieval_query("¿cuánto cuesta ese?", &history),
            "¿Tienen taladros inalámbricos? ¿cuánto cuesta ese?"
        );
        let standalone = "busco una licuadora de vaso de vidrio para la cocina";
        assert_eq!(retrieval_query(standalone, &history), standalone);
        assert_eq!(retrieval_query("¿y en azul?", &[]), "¿y en azul?");
    }
}
