//! The price guard: every money amount in an answer is checked against the current
//! prices of the products it cites. The model may round, invent or remember an old
//! price; the customer must never be left with one. An amount is tied to the product
//! it is said of (a citation right after it, else the last product cited or named
//! before it on its line) and must be that product's price, or that price times a
//! quantity the same sentence states ("dos taladros … $379.800"). A mismatch is
//! corrected in a note at the end of the answer, and recorded (`price_check`) in the
//! final event and the stored message; an answer cut short is checked too.
//!
//! The guard also tells whether an answer states an order's number
//! ([`states_order_number`]), so that the number is added when the model left it out.

use serde::Serialize;
use utoipa::ToSchema;

mod money;
mod said;

pub use money::{Amount, amounts};
pub use said::{citations, states_order_number};

use crate::llm::source::{Lang, Source, SourceKind};
use crate::shop::types::pesos;
use crate::text::fold;
use money::first_chars;
use said::{quantities, sentence_of};

/// How far (in characters) after an amount a citation still belongs to it.
const CITATION_REACH: usize = 12;

/// What the guard found.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PriceCheck {
    /// No amount in the answer disagreed with the cited prices.
    pub ok: bool,
    /// Money amounts found in the answer.
    pub checked: usize,
    pub mismatches: Vec<Mismatch>,
}

/// One amount that no cited price explains.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Mismatch {
    /// The amount as the answer wrote it.
    pub mencionado: String,
    /// The product it was said of, when the answer made that clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nombre: Option<String>,
    /// That product's current price.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub precio_actual: Option<String>,
}

/// A product the answer could cite, with its current price.
struct Priced<'a> {
    source: &'a Source,
    cents: i64,
    folded_name: String,
}

/// Checks every amount in `answer` against the cited products' current prices.
/// Amounts that appear in a cited document passage, or in `also_valid` (e.g. the
/// total of an order taken in this answer), are valid too.
pub fn check(answer: &str, sources: &[Source], also_valid: &[i64]) -> PriceCheck {
    let found = amounts(answer);
    let priced: Vec<Priced> = sources
        .iter()
        .filter(|s| s.tipo == SourceKind::Producto)
        .filter_map(|s| {
            Some(Priced {
                source: s,
                cents: s.precio?.cents(),
                folded_name: fold(&s.titulo),
            })
        })
        .collect();
    let document_amounts: Vec<i64> = sources
        .iter()
        .filter(|s| s.tipo == SourceKind::Documento)
        .flat_map(|s| amounts(&s.fragmento))
        .map(|a| a.cents)
        .collect();
    let mut mismatches = Vec::new();
    for amount in &found {
        if also_valid.contains(&amount.cents) || document_amounts.contains(&amount.cents) {
            continue;
        }
        let stated = quantities(sentence_of(answer, amount));
        let explains = |cents: i64, p: &Priced| {
            cents == p.cents
                || (p.cents > 0 && cents % p.cents == 0 && stated.contains(&(cents / p.cents)))
        };
        match subject(answer, amount, &priced) {
            Some(p) if explains(amount.cents, p) => {}
            Some(p) => mismatches.push(Mismatch {
                mencionado: amount.written(answer).to_owned(),
                sku: p.source.sku.clone(),
                nombre: Some(p.source.titulo.clone()),
                precio_actual: Some(pesos(p.cents)),
            }),
            None if priced.iter().any(|p| explains(amount.cents, p)) => {}
            None => mismatches.push(Mismatch {
                mencionado: amount.written(answer).to_owned(),
                sku: None,
                nombre: None,
                precio_actual: None,
            }),
        }
    }
    PriceCheck {
        ok: mismatches.is_empty(),
        checked: found.len(),
        mismatches,
    }
}

/// The product an amount is said of: a citation right after it (`$45.900 [2]`),
/// else the last product cited or named before it in the same line.
fn subject<'a>(answer: &str, amount: &Amount, priced: &'a [Priced<'a>]) -> Option<&'a Priced<'a>> {
    let by_number = |n: usize| priced.iter().find(|p| p.source.n == n);
    if let Some((n, _)) = citations(first_chars(&answer[amount.end..], CITATION_REACH)).first() {
        return by_number(*n);
    }
    let line_start = answer[..amount.start].rfind('\n').map_or(0, |i| i + 1);
    // Citations and names are both looked for in the folded line, so that their
    // positions compare.
    let line = fold(&answer[line_start..amount.start]);
    let cited = citations(&line)
        .into_iter()
        .rev()
        .find_map(|(n, at)| Some((at, by_number(n)?)));
    let named = priced
        .iter()
        .filter(|p| !p.folded_name.is_empty())
        .filter_map(|p| line.rfind(&p.folded_name).map(|at| (at, p)))
        .max_by_key(|(at, _)| *at);
    match (cited, named) {
        (Some((c_at, c)), Some((n_at, n))) => Some(if n_at > c_at { n } else { c }),
        (Some((_, c)), None) => Some(c),
        (None, Some((_, n))) => Some(n),
        (None, None) => None,
    }
}

/// The note that corrects the mismatches, in the answer's language.
pub fn correction(check: &PriceCheck, lang: Lang) -> Option<String> {
    if check.ok {
        return None;
    }
    let lines: Vec<String> = check
        .mismatches
        .iter()
        .map(|m| match (lang, &m.nombre, &m.precio_actual) {
            (Lang::Spanish, Some(nombre), Some(precio)) => {
                format!(
                    "- {nombre}: el precio vigente es {precio} (no {}).",
                    m.mencionado
                )
            }
            (Lang::English, Some(nombre), Some(precio)) => {
                format!(
                    "- {nombre}: the current price is {precio} (not {}).",
                    m.mencionado
                )
            }
            (Lang::Spanish, _, _) => format!(
                "- {} no corresponde al precio de ningún producto citado.",
                m.mencionado
            ),
            (Lang::English, _, _) => {
                format!("- {} is not the price of any product cited.", m.mencionado)
            }
        })
        .collect();
    let heading = match lang {
        Lang::Spanish => "Corrección de precios (precios vigentes en la tienda):",
        Lang::English => "Price correction (current prices in the shop):",
    };
    Some(format!("\n\n{heading}\n{}", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shop::types::Money;

    fn product(n: usize, name: &str, cents: i64) -> Source {
        Source {
            n,
            tipo: SourceKind::Producto,
            id: n as i64,
            sku: Some(format!("SKU-{n}")),
            titulo: name.to_owned(),
            categoria: None,
            precio: Some(Money::from_cents(cents)),
            stock: Some(3),
            fragmento: String::new(),
            motivo: None,
        }
    }

    #[test]
    fn right_prices_pass_and_wrong_ones_are_caught() {
        let sources = [
            product(1, "Taladro Percutor 650W", 18_990_000),
            product(2, "Licuadora Oster", 32_990_000),
        ];
        let good = "El Taladro Percutor 650W [1] cuesta $189.900 y la Licuadora Oster [2] $329.900.\nDos Taladro Percutor 650W [1] suman $379.800.";
        let check = check(good, &sources, &[]);
        assert!(check.ok, "{check:?}");
        assert_eq!(check.checked, 3);

        let bad = "El Taladro Percutor 650W [1] cuesta $150.000.";
        let result = super::check(bad, &sources, &[]);
        assert!(!result.ok);
        assert_eq!(result.mismatches[0].sku.as_deref(), Some("SKU-1"));
        assert_eq!(
            result.mismatches[0].precio_actual.as_deref(),
            Some("$189.900")
        );
        let note = correction(&result, Lang::Spanish).unwrap();
        assert!(
            note.contains("Taladro Percutor 650W: el precio vigente es $189.900 (no $150.000)"),
            "{note}"
        );

        // A price right of a citation belongs to that citation.
        let swapped = "Dos opciones: $329.900 [1] y $189.900 [2].";
        let result = super::check(swapped, &sources, &[]);
        assert_eq!(result.mismatches.len(), 2, "{result:?}");

        let unknown = "Tenemos uno por $99.000.";
        let result = super::check(unknown, &sources, &[]);
        assert!(!result.ok);
        assert!(result.mismatches[0].sku.is_none());
        assert!(super::check(unknown, &sources, &[9_900_000]).ok);
    }

    #[test]
    fn a_multiple_of_a_price_needs_the_quantity_said() {
        let sources = [product(1, "Taladro Percutor 650W", 18_990_000)];
        let doubled = "El Taladro Percutor 650W [1] cuesta $379.800.";
        let result = check(doubled, &sources, &[]);
        assert!(!result.ok, "a doubled unit price passed: {result:?}");
        for said in [
            "Dos Taladro Percutor 650W [1] cuestan $379.800.",
            "2 unidades del Taladro Percutor 650W [1]: $379.800 en total.",
            "Un par de Taladro Percutor 650W [1] te salen en $379.800.",
            "Two of the Taladro Percutor 650W [1] cost $379,800.",
        ] {
            assert!(check(said, &sources, &[]).ok, "{said}");
        }
        // The quantity must be in the amount's own sentence, and a model number
        // or a citation is no quantity.
        let elsewhere = "Quieres 2. El Taladro Percutor 650W [1] cuesta $379.800.";
        assert!(!check(elsewhere, &sources, &[]).ok);
        assert!(!check("El Taladro [1] 2x cuesta $379.800 [1].", &sources, &[]).ok);
        let unnamed = "Tenemos taladros por $379.800.";
        assert!(!check(unnamed, &sources, &[]).ok);
    }
}
