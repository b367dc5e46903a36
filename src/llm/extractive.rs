//! The extractive generator: an answer put together from the retrieved sources
//! alone — the shop passage that answers the question, and each product that
//! matches it with its current price and stock and why it matched. It needs no
//! model, so it serves while Ollama cannot be reached; it never states anything the
//! sources do not say.

use super::source::{Lang, Source, SourceKind, shorten};
use crate::shop::types::pesos;
use crate::text::words;

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

/// The answer, as the lines it streams in: the shop passage that answers the
/// question first when one shares more of its words than any product does (a
/// question about returns is answered by the returns policy, not by the products
/// nearest to it), then the products that match the question, best first. Without
/// a model to judge them, a product near the question by meaning only, or sharing a
/// single word of a longer question, is no answer and is not listed. When nothing
/// matches, the answer says so and asks for more details.
pub fn compose(question: &str, sources: &[Source], lang: Lang) -> Vec<String> {
    let recommended: Vec<&Source> = sources
        .iter()
        .filter(|s| s.tipo == SourceKind::Producto && s.motivo.is_some())
        .take(MAX_PRODUCTS)
        .collect();
    if !recommended.is_empty() {
        return recommendation(&recommended, lang);
    }
    let terms = terms(question);
    // The relevance floor (measured on the demo shop: docs/search.md): a source
    // shares most of the question's words (two of two, two of three…), so that one
    // common word ("eléctrica", a category) does not make a match. A shop passage
    // whose title names the question's subject may share only half of them, as
    // documents say things in their own words ("¿cuánto tarda un envío?" is answered
    // by the shipping times under "Envíos").
    let matching = |kind: SourceKind| -> Vec<(&Source, Vec<String>)> {
        let enough = |source: &Source, shared: &[String]| {
            2 * shared.len() > terms.len()
                || (kind == SourceKind::Documento
                    && 2 * shared.len() >= terms.len()
                    && !shared_terms(&terms, &titled(source)).is_empty())
        };
        let mut found: Vec<(&Source, Vec<String>)> = sources
            .iter()
            .filter(|s| s.tipo == kind)
            .map(|s| (s, shared_terms(&terms, s)))
            .filter(|(s, shared)| enough(s, shared))
            .collect();
        // Most words in common first; retrieval's order among equals.
        found.sort_by_key(|(_, shared)| std::cmp::Reverse(shared.len()));
        found
    };
    let products: Vec<(&Source, Vec<String>)> = matching(SourceKind::Producto)
        .into_iter()
        .take(MAX_PRODUCTS)
        .collect();
    let passages: Vec<(&Source, Vec<String>)> = matching(SourceKind::Documento)
        .into_iter()
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
    let best = |found: &[(&Source, Vec<String>)]| found.first().map_or(0, |(_, s)| s.len());
    let passage_first = best(&passages) > best(&products);
    let passage_lines: Vec<String> = passages
        .iter()
        .map(|(passage, _)| passage_line(passage, lang, passage_first))
        .collect();
    if passage_first {
        lines.extend(passage_lines.iter().cloned());
    }
    if !products.is_empty() {
        let heading = match (lang, passage_first) {
            (Lang::Spanish, false) => "Esto es lo que encontré en el catálogo:\n",
            (Lang::Spanish, true) => "\nEn el catálogo, relacionado con tu pregunta:\n",
            (Lang::English, false) => "This is what I found in the catalog:\n",
            (Lang::English, true) => "\nIn the catalog, related to your question:\n",
        };
        lines.push(heading.to_owned());
        for (i, (product, shared)) in products.iter().enumerate() {
            lines.push(product_line(i + 1, product, &matched(shared, lang), lang));
        }
    }
    if !passage_first {
        lines.extend(passage_lines);
    }
    lines.push(match (lang, products.is_empty()) {
        (Lang::Spanish, false) => "\n¿Quieres que te ayude con alguno de ellos?".to_owned(),
        (Lang::English, false) => "\nWould you like help with any of them?".to_owned(),
        (Lang::Spanish, true) => "\n¿Te ayudo con algo más?".to_owned(),
        (Lang::English, true) => "\nCan I help you with anything else?".to_owned(),
    });
    lines
}

/// The answer to a question that asks for recommendations: the products the
/// recommender chose (they need not share the question's words), each with its reason.
fn recommendation(products: &[&Source], lang: Lang) -> Vec<String> {
    let mut lines = vec![match lang {
        Lang::Spanish => "Te recomiendo:\n".to_owned(),
        Lang::English => "I recommend:\n".to_owned(),
    }];
    for (i, product) in products.iter().enumerate() {
        let why = reason(product.motivo.as_deref().unwrap_or_default(), lang);
        lines.push(product_line(i + 1, product, why, lang));
    }
    lines.push(match lang {
        Lang::Spanish => "\n¿Quieres que te ayude con alguno de ellos?".to_owned(),
        Lang::English => "\nWould you like help with any of them?".to_owned(),
    });
    lines
}

/// Why a product is recommended, for people.
fn reason(motivo: &str, lang: Lang) -> &'static str {
    match (motivo, lang) {
        ("comprados_juntos", Lang::Spanish) => "Suele comprarse junto con lo que preguntas",
        ("comprados_juntos", Lang::English) => "Often bought together with what you asked about",
        ("mismos_clientes", Lang::Spanish) => "Lo compran los mismos clientes",
        ("mismos_clientes", Lang::English) => "Bought by the same customers",
        ("parecido", Lang::Spanish) => "Es parecido",
        ("parecido", Lang::English) => "It is similar",
        ("recompra", Lang::Spanish) => "Ya lo has comprado antes",
        ("recompra", Lang::English) => "You have bought it before",
        ("para_ti", Lang::Spanish) => "Va con lo que te interesa",
        ("para_ti", Lang::English) => "It goes with what you are interested in",
        (_, Lang::Spanish) => "De los más pedidos",
        (_, Lang::English) => "One of the most ordered",
    }
}

/// A passage quoted with its source; `leading` when it opens the answer.
fn passage_line(passage: &Source, lang: Lang, leading: bool) -> String {
    let text = shorten(&passage.fragmento, PASSAGE_CHARS);
    match (lang, leading) {
        (Lang::Spanish, true) => format!("Según {}: {} [{}]\n", passage.titulo, text, passage.n),
        (Lang::English, true) => format!(
            "According to {}: {} [{}]\n",
            passage.titulo, text, passage.n
        ),
        (Lang::Spanish, false) => format!("\nSobre {}: {} [{}]", passage.titulo, text, passage.n),
        (Lang::English, false) => format!("\nAbout {}: {} [{}]", passage.titulo, text, passage.n),
    }
}

/// Why a product matched the question: the words it shares with it.
fn matched(shared: &[String], lang: Lang) -> String {
    match lang {
        Lang::Spanish => format!("coincide con: {}", shared.join(", ")),
        Lang::English => format!("matches: {}", shared.join(", ")),
    }
}

fn product_line(position: usize, product: &Source, why: &str, lang: Lang) -> String {
    let price = product.precio.map(|p| pesos(p.cents()));
    let stock = match (product.stock, lang) {
        (Some(0), Lang::Spanish) => "agotado".to_owned(),
        (Some(0), Lang::English) => "out of stock".to_owned(),
        (Some(1), Lang::Spanish) => "1 disponible".to_owned(),
        (Some(n), Lang::Spanish) => format!("{n} disponibles"),
        (Some(n), Lang::English) => format!("{n} in stock"),
        (None, _) => String::new(),
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

/// The source by its title alone (a document's title and section heading).
fn titled(source: &Source) -> Source {
    Source {
        categoria: None,
        fragmento: String::new(),
        ..source.clone()
    }
}

/// The words of a question that may name something (stop words left out).
fn terms(question: &str) -> Vec<String> {
    words(question)
        .into_iter()
        .filter(|w| w.len() > 1 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Whether the question names the source: one of its words is in the source's name,
/// category or text ("¿qué va con el taladro?" names the drill; "¿qué me
/// recomiendas?" names nothing, whatever retrieval found near it).
pub fn named(question: &str, source: &Source) -> bool {
    !shared_terms(&terms(question), source).is_empty()
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
            motivo: None,
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

    fn passage(n: usize, title: &str, text: &str) -> Source {
        Source {
            n,
            tipo: SourceKind::Documento,
            id: n as i64,
            sku: None,
            titulo: title.to_owned(),
            categoria: None,
            precio: None,
            stock: None,
            fragmento: text.to_owned(),
            motivo: None,
        }
    }

    #[test]
    fn a_shop_passage_that_answers_leads_and_unrelated_products_are_left_out() {
        let sources = [
            product(1, "Agenda ejecutiva 2027", 3_990_000, 20),
            product(2, "Borrador de nata", 190_000, 50),
            passage(
                3,
                "Cambios y devoluciones",
                "Nuestra política: tienes 30 días desde la entrega para devolver un producto sin usar.",
            ),
        ];
        let text = compose(
            "¿Cuál es la política de devoluciones?",
            &sources,
            Lang::Spanish,
        )
        .concat();
        assert!(
            text.starts_with("Según Cambios y devoluciones: Nuestra política"),
            "{text}"
        );
        assert!(text.contains("[3]"), "{text}");
        assert!(
            !text.contains("Agenda") && !text.contains("Borrador"),
            "{text}"
        );
    }

    #[test]
    fn products_that_share_no_word_are_not_offered() {
        let sources = [product(1, "Agenda ejecutiva 2027", 3_990_000, 20)];
        let text = compose("¿Venden helicópteros?", &sources, Lang::Spanish).concat();
        assert!(text.starts_with("No encontré"), "{text}");
    }

    #[test]
    fn nothing_found_says_so() {
        let text = compose("unicornios", &[], Lang::Spanish).concat();
        assert!(text.starts_with("No encontré"), "{text}");
        let text = compose("unicorns", &[], Lang::English).concat();
        assert!(text.starts_with("I could not find"), "{text}");
    }

    #[test]
    fn recommended_products_are_offered_with_their_reason() {
        let drill = product(1, "Taladro Percutor", 18_990_000, 4);
        let mut bits = product(2, "Brocas para concreto", 3_000_000, 9);
        bits.motivo = Some("comprados_juntos".to_owned());
        let text = compose(
            "¿qué va bien con el taladro?",
            &[drill, bits],
            Lang::Spanish,
        )
        .concat();
        assert!(text.starts_with("Te recomiendo:"), "{text}");
        assert!(
            text.contains(
                "Brocas para concreto — $30.000 (9 disponibles) [2]. Suele comprarse junto"
            ),
            "{text}"
        );
        assert!(!text.contains("Taladro Percutor"), "{text}");
    }
}
