//! Text comparison shared by search, the shop's customer search and the agent:
//! lower-casing, accent folding and word splitting, so that "Camión" and "camion"
//! are the same word.

use unicode_normalization::UnicodeNormalization;

/// The text lower-cased and without accents ("Tecnología" → "tecnologia").
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Lower-cased, accent-folded words of a text (letters and digits; the rest splits).
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{fold, words};

    #[test]
    fn folding_removes_case_and_accents() {
        assert_eq!(fold("José Peña ÁÉÍÓÚÜ"), "jose pena aeiouu");
        assert_eq!(fold("camión"), "camion");
    }

    #[test]
    fn words_are_folded_and_split() {
        assert_eq!(
            words("Camión ROJO, 4x4 (niño)"),
            ["camion", "rojo", "4x4", "nino"]
        );
        assert!(words(" ,.;- ").is_empty());
    }
}
