//! What an answer says around an amount: the sentence it is in, the quantities that
//! sentence states, the citations `[n]`, and whether an order's number is stated.

use super::money::{Amount, amounts};
use crate::text::fold;

/// Units of one product a stated quantity may be (2 × price … 20 × price).
const MAX_UNITS: i64 = 20;
/// How far (in characters) before an order's number a word for an order is looked for.
const ORDER_WORD_REACH: usize = 24;

/// The sentence an amount is in: from the end of the sentence before it to the end
/// of its own (a `.`, `!` or `?` followed by a space or the end, or a line break;
/// the separators inside a number do not end a sentence).
pub(super) fn sentence_of<'a>(text: &'a str, amount: &Amount) -> &'a str {
    let ends_at = |i: usize, c: char| {
        c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace))
    };
    let start = text[..amount.start]
        .char_indices()
        .rev()
        .find(|&(i, c)| ends_at(i, c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = text[amount.end..]
        .char_indices()
        .find(|&(i, c)| ends_at(amount.end + i, c))
        .map_or(text.len(), |(i, _)| amount.end + i);
    &text[start..end]
}

/// The quantities a sentence states: numbers of units from 2 to [`MAX_UNITS`],
/// written in digits standing alone ("2 taladros") or in words ("dos", "two",
/// "un par"). Amounts of money, citations and model numbers ("650W") are not
/// quantities.
pub(super) fn quantities(sentence: &str) -> Vec<i64> {
    const WORDS: [(&str, i64); 39] = [
        ("par", 2),
        ("dos", 2),
        ("tres", 3),
        ("cuatro", 4),
        ("cinco", 5),
        ("seis", 6),
        ("siete", 7),
        ("ocho", 8),
        ("nueve", 9),
        ("diez", 10),
        ("once", 11),
        ("doce", 12),
        ("trece", 13),
        ("catorce", 14),
        ("quince", 15),
        ("dieciseis", 16),
        ("diecisiete", 17),
        ("dieciocho", 18),
        ("diecinueve", 19),
        ("veinte", 20),
        ("two", 2),
        ("three", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
        ("twenty", 20),
    ];
    // Money and citations are blanked out before numbers are read.
    let mut plain = sentence.to_owned();
    for amount in amounts(sentence).iter().rev() {
        plain.replace_range(
            amount.start..amount.end,
            &" ".repeat(amount.end - amount.start),
        );
    }
    for (_, at) in citations(sentence).iter().rev() {
        let close = sentence[*at..]
            .find(']')
            .map_or(sentence.len(), |i| at + i + 1);
        plain.replace_range(*at..close, &" ".repeat(close - at));
    }
    let mut found: Vec<i64> = Vec::new();
    for word in plain.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')'))
    {
        let word = fold(word.trim_matches(|c: char| matches!(c, '.' | '¿' | '?' | '¡' | '!')));
        let quantity = if word.chars().all(|c| c.is_ascii_digit()) {
            word.parse().ok()
        } else {
            WORDS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n)
        };
        if let Some(n) = quantity.filter(|n| (2..=MAX_UNITS).contains(n)) {
            found.push(n);
        }
    }
    found
}

/// Whether `text` states order `id` as the order's number: the number standing
/// alone ("pedido 12", "pedido número 12", "orden #12", "order 12"), a few words after
/// a word for an order. A citation `[12]`, a price, or a longer number holding
/// those digits does not state it.
pub fn states_order_number(text: &str, id: i64) -> bool {
    let digits = id.to_string();
    let folded = fold(text);
    let bytes = folded.as_bytes();
    let digit = |at: Option<usize>| {
        at.and_then(|at| bytes.get(at))
            .is_some_and(u8::is_ascii_digit)
    };
    let separator = |at: usize| matches!(bytes.get(at), Some(b'.' | b','));
    folded.match_indices(&digits).any(|(start, _)| {
        let end = start + digits.len();
        // A separator belongs to the number only between two digits ("1.000").
        let joined_before = digit(start.checked_sub(1))
            || (start >= 1 && separator(start - 1) && digit(start.checked_sub(2)));
        let joined_after = digit(Some(end)) || (separator(end) && digit(Some(end + 1)));
        let alone = !joined_before && !joined_after;
        let citation = folded[..start].ends_with('[');
        let money = folded[..start].trim_end().ends_with('$');
        let window_start = folded[..start]
            .char_indices()
            .rev()
            .nth(ORDER_WORD_REACH - 1)
            .map_or(0, |(i, _)| i);
        let before = &folded[window_start..start];
        let names_an_order = ["pedido", "orden", "order"]
            .iter()
            .any(|w| before.contains(w));
        alone && !citation && !money && names_an_order
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_number_is_stated_only_as_a_number_after_an_order_word() {
        assert!(states_order_number(
            "Tu pedido número 1 quedó registrado.",
            1
        ));
        assert!(states_order_number("Listo: pedido #12, pendiente.", 12));
        assert!(states_order_number("Your order 7 is on its way.", 7));
        assert!(states_order_number("Tu orden N.º 3 está lista.", 3));
        // A citation, a price, a longer number or a number far from the order word.
        assert!(!states_order_number(
            "Tu pedido del Taladro [1] quedó listo.",
            1
        ));
        assert!(!states_order_number("Tu pedido por $1.000 quedó listo.", 1));
        assert!(!states_order_number("Tu pedido número 12 quedó listo.", 1));
        assert!(!states_order_number(
            "Tu pedido quedó listo; el taladro tiene 1 año de garantía.",
            1
        ));
        assert!(!states_order_number("Registramos 1 taladro.", 1));
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
