//! The catalog's own words, for correcting misspelt query words.
//!
//! Customers misspell ("camizeta", "dewalt driil"), and BM25 finds nothing for a word
//! the catalog does not contain. A query word is *known* when the catalog has it, or a
//! word of the same stem ("zapatillas" when the catalog says "zapatilla"). An unknown
//! word of at least [`MIN_LEN`] letters, without digits, is replaced by the catalog
//! word one edit away (a letter deleted, inserted, replaced, or two swapped) that the
//! most chunks contain; with no such word it stays as typed. Known words, numbers,
//! model codes and short words are never touched.
//!
//! Counts are kept per chunk so that writes and deletes keep the lexicon in step with
//! the index without rebuilding it.

use std::collections::HashMap;

use crate::text::{fold, words};

/// Shorter words are too ambiguous to correct ("tap" is one edit from dozens).
const MIN_LEN: usize = 4;

/// Letters an edit may insert or substitute (queries are folded: no accents).
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// Word and stem counts over the chunks of an index.
pub struct Lexicon {
    stemmer: Option<frostem::Stemmer>,
    /// Folded word → id.
    ids: HashMap<Box<str>, u32>,
    /// Chunks containing each word, by id.
    counts: Vec<u32>,
    /// Each word's stem, by word id.
    stem_of: Vec<u32>,
    stems: HashMap<Box<str>, u32>,
    /// Chunks containing a word of each stem, by stem id.
    stem_counts: Vec<u32>,
    /// The distinct words of each chunk, by chunk key.
    chunks: HashMap<i64, Box<[u32]>>,
}

impl Lexicon {
    /// An empty lexicon stemming as the full-text analyzer of `language` does
    /// (`Spanish`, `English`, …); a language without a stemmer compares whole words.
    pub fn new(language: &str) -> Self {
        Self {
            stemmer: frostem::Stemmer::try_from_name(&language.to_lowercase()).ok(),
            ids: HashMap::new(),
            counts: Vec::new(),
            stem_of: Vec::new(),
            stems: HashMap::new(),
            stem_counts: Vec::new(),
            chunks: HashMap::new(),
        }
    }

    fn stem<'a>(&self, word: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.stemmer {
            Some(stemmer) => stemmer.stem(word),
            None => word.into(),
        }
    }

    fn intern(&mut self, word: String) -> u32 {
        if let Some(&id) = self.ids.get(word.as_str()) {
            return id;
        }
        let stem = self.stem(&word).into_owned();
        let next_stem = self.stems.len() as u32;
        let stem_id = *self.stems.entry(stem.into()).or_insert(next_stem);
        if stem_id == next_stem {
            self.stem_counts.push(0);
        }
        let id = self.counts.len() as u32;
        self.ids.insert(word.into(), id);
        self.counts.push(0);
        self.stem_of.push(stem_id);
        id
    }

    /// Counts the words of chunk `key` (replacing what it had before).
    pub fn insert(&mut self, key: i64, text: &str) {
        self.remove(key);
        let mut ids: Vec<u32> = words(text).into_iter().map(|w| self.intern(w)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut stems: Vec<u32> = ids.iter().map(|&id| self.stem_of[id as usize]).collect();
        stems.sort_unstable();
        stems.dedup();
        for &id in &ids {
            self.counts[id as usize] += 1;
        }
        for stem in stems {
            self.stem_counts[stem as usize] += 1;
        }
        self.chunks.insert(key, ids.into());
    }

    /// Forgets the words of chunk `key`.
    pub fn remove(&mut self, key: i64) {
        let Some(ids) = self.chunks.remove(&key) else {
            return;
        };
        let mut stems: Vec<u32> = ids.iter().map(|&id| self.stem_of[id as usize]).collect();
        stems.sort_unstable();
        stems.dedup();
        for &id in ids.iter() {
            self.counts[id as usize] -= 1;
        }
        for stem in stems {
            self.stem_counts[stem as usize] -= 1;
        }
    }

    fn count(&self, word: &str) -> u32 {
        self.ids.get(word).map_or(0, |&id| self.counts[id as usize])
    }

    fn known(&self, word: &str) -> bool {
        self.count(word) > 0
            || self
                .stems
                .get(self.stem(word).as_ref())
                .is_some_and(|&id| self.stem_counts[id as usize] > 0)
    }

    /// The catalog word replacing `word`, when `word` is unknown and one edit from a
    /// word the catalog has.
    fn correction(&self, word: &str) -> Option<String> {
        if word.chars().count() < MIN_LEN
            || word.chars().any(|c| c.is_ascii_digit())
            || !word.is_ascii()
            || self.known(word)
        {
            return None;
        }
        let bytes = word.as_bytes();
        let mut best: Option<(u32, String)> = None;
        let mut consider = |candidate: Vec<u8>| {
            let candidate = String::from_utf8(candidate).expect("ASCII edits of an ASCII word");
            let count = self.count(&candidate);
            let better = match &best {
                None => count > 0,
                // Most chunks first; on a tie the alphabetically first, so that the
                // correction never depends on hash order.
                Some((c, w)) => count > *c || (count == *c && candidate < *w),
            };
            if better {
                best = Some((count, candidate));
            }
        };
        for i in 0..bytes.len() {
            consider([&bytes[..i], &bytes[i + 1..]].concat());
            if i + 1 < bytes.len() {
                let mut swapped = bytes.to_vec();
                swapped.swap(i, i + 1);
                consider(swapped);
            }
            for &letter in ALPHABET {
                if letter != bytes[i] {
                    let mut replaced = bytes.to_vec();
                    replaced[i] = letter;
                    consider(replaced);
                }
            }
        }
        for i in 0..=bytes.len() {
            for &letter in ALPHABET {
                consider([&bytes[..i], &[letter], &bytes[i..]].concat());
            }
        }
        best.map(|(_, word)| word)
    }

    /// `query` with its misspelt words corrected, or `None` when nothing changed.
    /// Everything but the corrected words (spacing, punctuation, numbers) is kept.
    pub fn correct(&self, query: &str) -> Option<String> {
        let mut out = String::with_capacity(query.len() + 8);
        let mut changed = false;
        let mut rest = query;
        while let Some(start) = rest.find(char::is_alphanumeric) {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(tail.len());
            let word = &tail[..end];
            match self.correction(&fold(word)) {
                Some(fixed) => {
                    out.push_str(&fixed);
                    changed = true;
                }
                None => out.push_str(word),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::Lexicon;

    fn catalog() -> Lexicon {
        let mut lexicon = Lexicon::new("Spanish");
        lexicon.insert(1, "Camiseta deportiva roja de algodón");
        lexicon.insert(2, "Camiseta básica azul");
        lexicon.insert(3, "Zapatilla de running, talla 42");
        lexicon.insert(4, "Cámara réflex 24 MP");
        lexicon.insert(5, "Carcasa para cámara");
        lexicon
    }

    #[test]
    fn misspelt_words_become_catalog_words() {
        let lexicon = catalog();
        // Substitution, deletion, insertion and transposition.
        assert_eq!(
            lexicon.correct("camizeta roja").as_deref(),
            Some("camiseta roja")
        );
        assert_eq!(lexicon.correct("camisetta").as_deref(), Some("camiseta"));
        assert_eq!(lexicon.correct("camsieta").as_deref(), Some("camiseta"));
        assert_eq!(lexicon.correct("algodn").as_deref(), Some("algodon"));
        // Spacing and punctuation are kept around the corrected word.
        assert_eq!(
            lexicon.correct("¿tienen  camizetas, azul?").as_deref(),
            None,
            "two edits away: left as typed"
        );
        assert_eq!(
            lexicon.correct("¿tienen  camizeta, azul?").as_deref(),
            Some("¿tienen  camiseta, azul?")
        );
    }

    #[test]
    fn known_short_and_coded_words_are_kept() {
        let lexicon = catalog();
        // Known words, with or without accents, and words of a known stem.
        assert_eq!(lexicon.correct("cámara azul"), None);
        assert_eq!(lexicon.correct("camara"), None);
        assert_eq!(lexicon.correct("zapatillas camisetas"), None);
        // Short words and words with digits.
        assert_eq!(
            lexicon.correct("mesa"),
            None,
            "no catalog word one edit away"
        );
        assert_eq!(lexicon.correct("azl"), None, "too short to correct");
        assert_eq!(lexicon.correct("talla 42x 24mq"), None);
        assert_eq!(lexicon.correct(""), None);
    }

    #[test]
    fn the_most_common_candidate_wins_and_removal_forgets() {
        let mut lexicon = catalog();
        // "camara" is in two chunks, "carcasa" one edit from "carcaza" in one.
        assert_eq!(lexicon.correct("camaras"), None, "same stem as camara");
        assert_eq!(lexicon.correct("carcaza").as_deref(), Some("carcasa"));
        lexicon.remove(5);
        assert_eq!(
            lexicon.correct("carcaza"),
            None,
            "the only chunk with it is gone"
        );
        // Re-inserting a chunk replaces its words instead of counting them twice.
        lexicon.insert(1, "Pantalón");
        lexicon.insert(1, "Pantalón");
        lexicon.remove(1);
        assert_eq!(lexicon.correct("pantalom"), None);
        assert_eq!(lexicon.correct("camiseya").as_deref(), Some("camiseta"));
        lexicon.insert(6, "Camisa de lino");
        lexicon.insert(7, "Camisa de seda");
        // Both one edit from "camisea"; "camisa" is in more chunks now.
        assert_eq!(lexicon.correct("camisea").as_deref(), Some("camisa"));
    }
}
