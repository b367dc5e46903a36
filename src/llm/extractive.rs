//! The extractive generator: an answer put together from the retrieved sources
//! alone — each product with its current price and stock and why it matched, and
//! the passages of shop documents that share words with the question. It needs no
//! model, so it serves while Ollama cannot be reached; it never states anything the
//! sources do not say.

use crate::agent::context::{Lang, Source, SourceKind, shorten};
use crate::agent::prompt::pesos;
use crate::retrieval::text::words;

/// Products an extractive answer lists at most.
const MAX_PRODUCTS: usize = 3;
/// Passages an extractive answer quotes at most.
const MAX_PASSAGES: usize = 1;
/// Characters of a passage quoted.
const PASSAGE_CHARS: usize = 280;

/// Words too common to explain a match.
const STOP_WORDS: &[&str] = &[
    "el", "la", "los", "las", "de", "del", "que", "en", "y", "un", "una", "unos", "unas", "para",
    "con", "por", "es", "me", "mi", "tienen", "tiene", "hay", "quiero", "necesito", "busco",
    "cuanto", "cuesta", "precio", "algo", "como", "cual", "sus", "su", "al", "lo", "se", "o", "a",
    "the", "a", "an", "of", "for", "and", "do", "you", "have", "is", "are", "i", "need", "want",
    "to", "in", "what", "how", "much", "my", "any",
];

/// The answer, as the lines it streams in.
pub fn compose(question: &str, sources: &[Source], lang: Lang) -> Vec<String> {
    let terms: Vec<String> = words(question)
        .into_iter()
        .filter(|w| w.len() > 1 && !STOP_WORDS.contains(&w.as_str()))
        .collect();
    // Products that share words with the question, when some do; otherwise the
    // nearest ones (the embedder may have matched them by meaning).
    let all_products: Vec<&Source> = sources
        .iter()
        .filter(|s| s.tipo == SourceKind::Producto)
        .collect();
    let matching: Vec<&Source> = all_products
        .iter()
        .copied()
        .filter(|s| !shared_terms(&terms, s).is_empty())
        .collect();
    let products: Vec<&Source> = if matching.is_empty() {
        all_products
    } else {
        matching
    }
    .into_iter()
    .take(MAX_PRODUCTS)
    .collect();
    let passages: Vec<&Source> = sources
        .iter()
        .filter(|s| s.tipo == SourceKind::Documento)
        .filter(|s| !shared_terms(&terms, s).is_empty())
        .take(MAX_PASSAGES)
        .collect();
    let mut lines = Vec::new();
    if products.is_empty() && passages.is_empty() {
        lines.push(match lang {
            Lang::Spanish => format!(
                "No encontré productos ni información de la tienda que respondan a «{}». \
                 ¿Me das más detalles (tipo de producto, marca o presupuesto)?",
                question.trim()
            ),
            Lang::English => format!(
                "I could not find products or shop information matching \"{}\". \
                 Could you give me more details (kind of product, brand or budget)?",
                question.trim()
            ),
        });
        return lines;
    }
    if !products.is_empty() {
        lines.push(match lang {
            Lang::Spanish => "Esto es lo que encontré en el catálogo:\n".to_owned(),
            Lang::English => "This is what I found in the catalog:\n".to_owned(),
        });
        for (i, product) in products.iter().enumerate() {
            lines.push(product_line(i + 1, product, &terms, lang));
        }
    }
    for passage in passages {
        lines.push(match lang {
            Lang::Spanish => format!(
                "\nSobre {}: {} [{}]",
                passage.titulo,
                shorten(&passage.fragmento, PASSAGE_CHARS),
                passage.n
            ),
            Lang::English => format!(
                "\nAbout {}: {} [{}]",
                passage.titulo,
                shorten(&passage.fragmento, PASSAGE_CHARS),
                passage.n
            ),
        });
    }
    lines.push(match lang {
        Lang::Spanish => "\n¿Quieres que te ayude con alguno de ellos?".to_owned(),
        Lang::English => "\nWould you like help with any of them?".to_owned(),
    });
    lines
}

fn product_line(position: usize, product: &Source, terms: &[String], lang: Lang) -> String {
    let price = product.precio.map(|p| pesos(p.cents()));
    let stock = match (product.stock, lang) {
        (Some(0), Lang::Spanish) => "agotado".to_owned(),
        (Some(0), Lang::English) => "out of stock".to_owned(),
        (Some(1), Lang::Spanish) => "1 disponible".to_owned(),
        (Some(n), Lang::Spanish) => format!("{n} disponibles"),
        (Some(n), Lang::English) => format!("{n} in stock"),
        (None, _) => String::new(),
    };
    let shared = shared_terms(terms, product);
    let why = match (shared.is_empty(), lang) {
        (true, Lang::Spanish) => "relacionado con tu búsqueda".to_owned(),
        (true, Lang::English) => "related to your search".to_owned(),
        (false, Lang::Spanish) => format!("coincide con: {}", shared.join(", ")),
        (false, Lang::English) => format!("matches: {}", shared.join(", ")),
    };
    let mut line = format!("{position}. {}", product.titulo);
    if let Some(price) = price {
        line.push_str(&format!(" — {price}"));
    }
    if !stock.is_empty() {
        line.push_str(&format!(" ({stock})"));
    }
    line.push_str(&format!(" [{}]. {why}.", product.n));
    if !product.fragmento.is_empty() {
        line.push_str(&format!(" {}", shorten(&product.fragmento, 160)));
    }
    line.push('\n');
    line
}

/// The question's terms the source's name, category or text contains.
fn shared_terms(terms: &[String], source: &Source) -> Vec<String> {
    let mut own = words(&source.titulo);
    own.extend(words(source.categoria.as_deref().unwrap_or_default()));
    own.extend(words(&source.fragmento));
    let mut shared: Vec<String> = Vec::new();
    for term in terms {
        let matches = own.iter().any(|w| {
            w == term
                || (term.len() >= 4 && w.starts_with(term.as_str()))
                || (w.len() >= 4 && term.starts_with(w.as_str()))
        });
        if matches && !shared.contains(term) {
            shared.push(term.clone());
        }
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shop::types::Money;

    fn product(n: usize, name: &str, cents: i64, stock: i64) -> Source {
        Source {
            n,
            tipo: SourceKind::Producto,
            id: n as i64,
            sku: Some(format!("SKU-{n}")),
            titulo: name.to_owned(),
            categoria: Some("Herramientas".to_owned()),
            precio: Some(Money::from_cents(cents)),
            stock: Some(stock),
            fragmento: "Motor de 650 W con percutor.".to_owned(),
        }
    }

    #[test]
    fn products_are_listed_with_live_price_stock_and_reason() {
        let sources = [product(1, "Taladro Percutor 650W", 18_990_000, 12)];
        let text = compose("¿Tienen taladros percutores?", &sources, Lang::Spanish).concat();
        assert!(
            text.contains("Taladro Percutor 650W — $189.900 (12 disponibles) [1]"),
            "{text}"
        );
        assert!(
            text.contains("coincide con: taladros, percutores"),
            "{text}"
        );
    }

    #[test]
    fn nothing_found_says_so() {
        let text = compose("unicornios", &[], Lang::Spanish).concat();
        assert!(text.starts_with("No encontré"), "{text}");
        let text = compose("unicorns", &[], Lang::English).concat();
        assert!(text.starts_with("I could not find"), "{text}");
    }
}
