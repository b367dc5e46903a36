//! What a generator may state: the numbered sources of an answer (products with
//! their current price and stock, shop-document passages) and the language the
//! answer is written in. The agent fills them; the generators only read them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::shop::types::Money;
use crate::text::words;

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
    /// Why the product is recommended (`comprados_juntos`, `parecido`, `para_ti`…),
    /// when it is a recommendation rather than an answer to the question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motivo: Option<String>,
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
