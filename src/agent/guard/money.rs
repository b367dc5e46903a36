//! Money amounts as answers write them: `$1.299.000`, `$ 45.900,50`, `COP 120000`,
//! `89.900 pesos`, `$45 mil`, in the shop's notation or in English.

use crate::text::fold;

/// A money amount found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub cents: i64,
    pub start: usize,
    pub end: usize,
}

impl Amount {
    pub(super) fn written<'a>(&self, text: &'a str) -> &'a str {
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
pub(super) fn first_chars(text: &str, n: usize) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
