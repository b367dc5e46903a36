//! The price guard: every money amount in a finished answer is checked against the
//! current prices of the products it cites. The model may round, invent or remember
//! an old price; the customer must never be left with one. A mismatch is corrected
//! in a note at the end of the answer, and recorded (`price_check`) in the final
//! event and the stored message.

use serde::Serialize;
use utoipa::ToSchema;

use crate::retrieval::text::fold;

use super::context::{Lang, Source, SourceKind};
use super::prompt::pesos;

/// Units of one product an amount may be the total of (2 × price, …).
const MAX_UNITS: i64 = 20;
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

/// A money amount found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub cents: i64,
    pub start: usize,
    pub end: usize,
}

impl Amount {
    fn written<'a>(&self, text: &'a str) -> &'a str {
        text[self.start..self.end].trim()
    }
}

/// Money amounts in `text`: numbers with a currency sign or word (`$1.299.000`,
/// `$ 45.900,50`, `COP 120000`, `89.900 pesos`, `$45 mil`). Bare numbers (stock,
/// quantities, SKUs) are not money.
pub fn amounts(text: &str) -> Vec<Amount> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && is_number_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < bytes.len()
            && (bytes[end].is_ascii_digit()
                || ((bytes[end] == b'.' || bytes[end] == b',')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)))
        {
            end += 1;
        }
        let number = &text[start..end];
        i = end;
        let before = text[..start].trim_end_matches(' ');
        let dollar = before.ends_with('$');
        let cop = before
            .get(before.len().saturating_sub(3)..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case("cop"));
        let after = fold(first_chars(&text[end..], 16));
        let after = after.trim_start();
        let (multiplier, suffix_len) = if after.starts_with("millones") {
            (1_000_000, "millones".len())
        } else if after.starts_with("millon") {
            (1_000_000, "millon".len())
        } else if after.starts_with("mil") && !after.starts_with("mill") {
            (1_000, "mil".len())
        } else {
            (1, 0)
        };
        let rest = after[suffix_len..].trim_start();
        let suffixed = rest.starts_with("cop") || rest.starts_with("pesos");
        if !dollar && !cop && !suffixed {
            continue;
        }
        let Some(cents) = parse_number(number, multiplier) else {
            continue;
        };
        let money_start = if dollar {
            before.len() - 1
        } else if cop {
            before.len() - 3
        } else {
            start
        };
        found.push(Amount {
            cents,
            start: money_start,
            end,
        });
    }
    found
}

/// The first `n` characters of `text`.
fn first_chars(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.' || b == b','
}

/// Cents of a number written with `.` or `,` as thousands or decimal separators,
/// times `multiplier`. `1.299.000`, `1,299,000` and `1299000` are the same;
/// `45.900,50` and `45,900.50` have cents; one separator followed by three digits
/// groups thousands (`45.900`), by one or two it marks decimals (`45.9`, `45,90`).
fn parse_number(number: &str, multiplier: i64) -> Option<i64> {
    let last_sep = number.rfind(['.', ',']);
    let (integer, decimals): (String, &str) = match last_sep {
        None => (number.to_owned(), ""),
        Some(pos) => {
            let sep = number.as_bytes()[pos];
            let tail = &number[pos + 1..];
            let same_kind = number.bytes().filter(|b| *b == sep).count();
            let other_kind = number
                .bytes()
                .filter(|b| (*b == b'.' || *b == b',') && *b != sep)
                .count();
            let decimal = (other_kind > 0 || same_kind == 1) && tail.len() != 3;
            if decimal {
                let head: String = number[..pos].chars().filter(char::is_ascii_digit).collect();
                (head, tail)
            } else {
                (number.chars().filter(char::is_ascii_digit).collect(), "")
            }
        }
    };
    let integer: i64 = integer.parse().ok()?;
    let cents = match decimals.len() {
        0 => 0,
        1 => decimals.parse::<i64>().ok()? * 10,
        2 => decimals.parse::<i64>().ok()?,
        _ => return None,
    };
    integer
        .checked_mul(100)?
        .checked_add(cents)?
        .checked_mul(multiplier)
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
    let explains = |cents: i64, p: &Priced| {
        p.cents > 0 && cents % p.cents == 0 && (1..=MAX_UNITS).contains(&(cents / p.cents))
    };
    let mut mismatches = Vec::new();
    for amount in &found {
        if also_valid.contains(&amount.cents) || document_amounts.contains(&amount.cents) {
            continue;
        }
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

/// Citation markers `[n]` (also `[1, 2]` and `[1][2]`) with their byte positions.
pub fn citations(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let inside = &rest[open + 1..open + close];
        if !inside.is_empty()
            && inside
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        {
            for n in inside.split(',').filter_map(|n| n.trim().parse().ok()) {
                found.push((n, offset + open));
            }
        }
        offset += open + close + 1;
        rest = &rest[open + close + 1..];
    }
    found
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
        }
    }

    fn cents(text: &str) -> Vec<i64> {
        amounts(text).into_iter().map(|a| a.cents).collect()
    }

    #[test]
    fn money_is_read_in_local_and_english_notation() {
        assert_eq!(cents("cuesta $1.299.000"), [129_900_000]);
        assert_eq!(cents("cuesta $ 45.900,50 hoy"), [4_590_050]);
        assert_eq!(cents("costs $45,900.50"), [4_590_050]);
        assert_eq!(cents("COP 120000 y 89.900 pesos"), [12_000_000, 8_990_000]);
        assert_eq!(cents("unos $45 mil"), [4_500_000]);
        assert_eq!(cents("$1,5 millones"), [150_000_000]);
        assert_eq!(cents("$19.99"), [1999]);
        assert!(cents("quedan 12 unidades del SKU 4455, modelo 2024").is_empty());
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
    fn citations_are_found() {
        assert_eq!(
            citations("a [1] b [2, 3][4] [x] [")
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }
}
