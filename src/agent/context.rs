//! What an answer may say: the products and shop-document passages retrieved for a
//! question, numbered so that the answer can cite them, with prices and stock read
//! from the database at question time.

use std::collections::HashMap;
use std::time::Instant;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::catalog::sync::document_chunks;
use crate::db::entities::{documento, producto};
use crate::retrieval::live;
use crate::retrieval::search::{Filters, Mode};
use crate::retrieval::store::ChunkKind;
use crate::retrieval::text::words;
use crate::shop::types::Money;

use super::memory::Turn;

/// Characters of a product description or document passage kept in a source.
const SNIPPET_CHARS: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Producto,
    Documento,
}

/// One numbered source an answer can cite as `[n]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Source {
    /// The number the answer cites it by.
    pub n: usize,
    pub tipo: SourceKind,
    /// Product id, or document id.
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Product name, or document title and section.
    pub titulo: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categoria: Option<String>,
    /// Current price (products).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "1299000.00")]
    pub precio: Option<Money>,
    /// Current stock (products).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    /// Description or passage, shortened.
    pub fragmento: String,
}

impl Source {
    pub fn from_product(n: usize, p: &producto::Model) -> Self {
        Self {
            n,
            tipo: SourceKind::Producto,
            id: p.id,
            sku: Some(p.sku.clone()),
            titulo: p.nombre.clone(),
            categoria: Some(p.categoria.clone()),
            precio: Some(Money::from_cents(p.precio_centavos)),
            stock: Some(p.stock),
            fragmento: shorten(p.descripcion.as_deref().unwrap_or_default(), SNIPPET_CHARS),
        }
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
            *existing = Source::from_product(n, p);
            return n;
        }
        let n = self.0.len() + 1;
        self.0.push(Source::from_product(n, p));
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
        });
        n
    }
}

/// The language an answer should be written in, when it can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Spanish,
    English,
}

/// Spanish unless the text reads clearly as English (by common words).
pub fn language(text: &str) -> Lang {
    const ENGLISH: &[&str] = &[
        "the", "do", "does", "you", "have", "is", "are", "what", "which", "how", "much", "for",
        "with", "and", "i", "need", "want", "any", "price", "cost", "my", "can", "of", "to", "a",
        "it", "in", "please", "looking",
    ];
    const SPANISH: &[&str] = &[
        "el", "la", "los", "las", "de", "del", "que", "en", "y", "un", "una", "para", "con",
        "tienen", "tiene", "cuanto", "cuesta", "precio", "hay", "quiero", "necesito", "busco",
        "me", "por", "es", "cual", "como", "mi", "algo",
    ];
    if text.contains(['¿', '¡', 'ñ', 'á', 'é', 'í', 'ó', 'ú']) {
        return Lang::Spanish;
    }
    let (mut en, mut es) = (0, 0);
    for word in words(text) {
        en += usize::from(ENGLISH.contains(&word.as_str()));
        es += usize::from(SPANISH.contains(&word.as_str()));
    }
    if en > es {
        Lang::English
    } else {
        Lang::Spanish
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

pub async fn gather(app: &AppState, question: &str, history: &[Turn]) -> anyhow::Result<Context> {
    let started = Instant::now();
    let settings = app.settings();
    let index = app.index();
    // Corrected once here, so that both searches look for the same words (they find
    // nothing more to correct) and embed the query once between them.
    let query = retrieval_query(question, history);
    let query = index.correct(&query).unwrap_or(query);
    let product_filters = Filters {
        kind: Some(ChunkKind::Producto),
        ..Filters::default()
    };
    let document_filters = Filters {
        kind: Some(ChunkKind::Documento),
        ..Filters::default()
    };
    let (products, documents) = tokio::join!(
        live::products(
            index,
            app.db(),
            &query,
            Mode::Hybrid,
            &product_filters,
            settings.context_products,
        ),
        async {
            if settings.context_documents == 0 {
                return Ok(Default::default());
            }
            index
                .search(
                    &query,
                    Mode::Hybrid,
                    &document_filters,
                    settings.context_documents,
                )
                .await
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
        .all(app.db().conn())
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
    Ok(Context {
        sources,
        retrieval_ms: started.elapsed().as_secs_f64() * 1e3,
        embed_ms,
        search_ms: searched - embed_ms,
        query,
    })
}

/// The document id and chunk number of a document chunk's search key.
fn document_of_key(key: i64) -> Option<(i64, usize)> {
    if key >= 0 {
        return None;
    }
    let raw = -key - 1;
    let per_doc = crate::catalog::sync::MAX_CHUNKS_PER_DOC;
    Some((raw / per_doc, (raw % per_doc) as usize))
}

/// At most `max` characters, cut at a word boundary, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::sync::document_key;

    fn turn(rol: &str, text: &str) -> Turn {
        Turn {
            rol: rol.to_owned(),
            contenido: text.to_owned(),
        }
    }

    #[test]
    fn document_keys_round_trip() {
        assert_eq!(document_of_key(document_key(7, 0)), Some((7, 0)));
        assert_eq!(document_of_key(document_key(123, 45)), Some((123, 45)));
        assert_eq!(document_of_key(42), None);
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

    #[test]
    fn languages_are_told_apart() {
        assert_eq!(language("¿Cuánto cuesta el taladro?"), Lang::Spanish);
        assert_eq!(language("tienen licuadoras"), Lang::Spanish);
        assert_eq!(language("Do you have a cordless drill?"), Lang::English);
        assert_eq!(language("what is the price of the blender"), Lang::English);
    }

    #[test]
    fn long_text_is_shortened_at_a_word() {
        assert_eq!(shorten("uno dos tres cuatro", 9), "uno dos…");
        assert_eq!(shorten("corto", 10), "corto");
    }
}
