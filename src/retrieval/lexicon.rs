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

/// A heard word this short is too often a real word of its own ("tala", "cama").
const MIN_SPOKEN_LEN: usize = 5;

/// Everyday Spanish a customer says around the product words: heard right, yet
/// not in the catalog, so never to be "corrected" ("quiero" is not "cuero").
const EVERYDAY: &[&str] = &[
    "quiero",
    "quiere",
    "quieren",
    "quisiera",
    "tienen",
    "tiene",
    "tengo",
    "necesito",
    "necesita",
    "busco",
    "buscando",
    "venden",
    "vende",
    "cuanto",
    "cuanta",
    "cuantos",
    "cuesta",
    "cuestan",
    "valen",
    "precio",
    "comprar",
    "compra",
    "compro",
    "pedir",
    "pedido",
    "gracias",
    "buenas",
    "buenos",
    "tardes",
    "noches",
    "favor",
    "puedo",
    "pueden",
    "puede",
    "hacen",
    "alguna",
    "alguno",
    "algunos",
    "otra",
    "otro",
    "donde",
    "cuando",
    "cuales",
    "tambien",
    "pero",
    "menos",
    "muchas",
    "mucho",
    "mismo",
    "ahora",
    "todos",
    "todas",
    "esta",
    "este",
    "estos",
    "estas",
    "tenga",
    "dos",
    "tres",
    "cuatro",
    "cinco",
    "seis",
    "siete",
    "ocho",
    "nueve",
    "diez",
    "veinte",
    "cien",
    "ciento",
    "cientos",
    "pesos",
    "entrega",
    "envio",
    "envian",
    "llega",
    "llegan",
    "disponible",
    "barato",
    "barata",
    "economico",
];

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
        self.replace_words(query, |word| self.correction(word))
    }
}

impl Lexicon {
    /// `transcript` with its unknown words replaced by the catalog words they sound
    /// like, or `None` when nothing changed. Speech recognisers mishear by sound:
    /// "martíos" for "martillos", "tornios" for "tornillos". Words are compared by
    /// [`sound`] (Spanish spelling rules: `ll`/`y`, `b`/`v`, `c`/`s`/`z`, silent
    /// `h`…) at most [`spoken_edits`] edits apart; the closest catalog word wins,
    /// then the one in most chunks.
    pub fn correct_spoken(&self, transcript: &str) -> Option<String> {
        self.replace_words(transcript, |word| self.sounds_like(word))
    }

    fn sounds_like(&self, word: &str) -> Option<String> {
        if word.chars().count() < MIN_SPOKEN_LEN
            || EVERYDAY.contains(&word)
            || word.chars().any(|c| c.is_ascii_digit())
            || self.known(word)
        {
            return None;
        }
        let heard = sound(word);
        let allowed = spoken_edits(heard.len());
        let mut best: Option<(usize, u32, &str)> = None;
        for (candidate, &id) in &self.ids {
            let count = self.counts[id as usize];
            if count == 0 || candidate.len().abs_diff(word.len()) > allowed + 1 {
                continue;
            }
            let key = sound(candidate);
            if key.len().abs_diff(heard.len()) > allowed {
                continue;
            }
            let edits = edit_distance(heard.as_bytes(), key.as_bytes());
            if edits > allowed || edits >= key.len() / 2 {
                continue;
            }
            let better = match best {
                None => true,
                Some((e, c, w)) => {
                    edits < e || (edits == e && (count > c || (count == c && **candidate < *w)))
                }
            };
            if better {
                best = Some((edits, count, &**candidate));
            }
        }
        best.map(|(_, _, word)| word.to_owned())
    }

    /// `text` with each word `fix` returns a replacement for replaced (the words
    /// passed folded); spacing, punctuation and numbers are kept.
    fn replace_words(&self, text: &str, fix: impl Fn(&str) -> Option<String>) -> Option<String> {
        let mut out = String::with_capacity(text.len() + 8);
        let mut changed = false;
        let mut rest = text;
        while let Some(start) = rest.find(char::is_alphanumeric) {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(tail.len());
            let word = &tail[..end];
            match fix(&fold(word)) {
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

/// Edits a heard word may be from the catalog word it sounds like: one, two from
/// nine sounds on (with two, "nemenos" would become "pequenos").
fn spoken_edits(sounds: usize) -> usize {
    if sounds >= 9 { 2 } else { 1 }
}

/// How a folded Spanish word sounds, spelt one way: `ll` and `y` as `y`, `v` as
/// `b`, soft `c` and `z` as `s`, hard `c`, `qu` and `k` as `k`, soft `g` as `j`,
/// `h` silent (but `ch` kept, as `x`), doubled letters once; and a `y` between
/// vowels, which a recogniser often loses ("martíos" for "martillos"), dropped.
pub fn sound(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let soft = matches!(next, Some('e' | 'i'));
        let (sound, used) = match c {
            'l' if next == Some('l') => ('y', 2),
            'c' if next == Some('h') => ('x', 2),
            'c' if soft => ('s', 1),
            'c' => ('k', 1),
            'q' if next == Some('u') => ('k', 2),
            'g' if soft => ('j', 1),
            'g' if next == Some('u') && matches!(chars.get(i + 2).copied(), Some('e' | 'i')) => {
                ('g', 2)
            }
            'z' => ('s', 1),
            'v' => ('b', 1),
            'w' => ('b', 1),
            'h' => {
                i += 1;
                continue;
            }
            'y' if next.is_none() => ('i', 1),
            other => (other, 1),
        };
        if !out.ends_with(sound) {
            out.push(sound);
        }
        i += used;
    }
    let vowel = |c: Option<&char>| matches!(c, Some('a' | 'e' | 'i' | 'o' | 'u'));
    let sounds: Vec<char> = out.chars().collect();
    (0..sounds.len())
        .filter(|&i| {
            sounds[i] != 'y' || i == 0 || !vowel(sounds.get(i - 1)) || !vowel(sounds.get(i + 1))
        })
        .map(|i| sounds[i])
        .collect()
}

/// Optimal string alignment distance: deletions, insertions, substitutions and
/// swaps of neighbours, each one edit.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = best;
        }
    }
    rows[a.len() * width + b.len()]
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

    #[test]
    fn misheard_words_become_the_catalog_words_they_sound_like() {
        let mut lexicon = Lexicon::new("Spanish");
        lexicon.insert(1, "Martillo de uña con mango de fibra de vidrio");
        lexicon.insert(2, "Caja de tornillos para madera");
        lexicon.insert(3, "Taladro percutor inalámbrico con baterías");
        lexicon.insert(4, "Taladros y brocas");
        lexicon.insert(5, "Bombillo LED de 9 W");
        // A lost or misheard `ll`, `b` for `v`, a missing `r`.
        assert_eq!(
            lexicon.correct_spoken("quiero dos martios").as_deref(),
            Some("quiero dos martillo")
        );
        assert_eq!(
            lexicon.correct_spoken("una caja de tornios").as_deref(),
            Some("una caja de tornillos")
        );
        assert_eq!(
            lexicon.correct_spoken("tienen talados?").as_deref(),
            Some("tienen taladros?")
        );
        assert_eq!(
            lexicon.correct_spoken("bombiyo").as_deref(),
            Some("bombillo")
        );
        assert_eq!(lexicon.correct_spoken("fivra").as_deref(), Some("fibra"));
        // Known words, short words, numbers and words far from any are kept.
        assert_eq!(lexicon.correct_spoken("martillo inalámbrico de 20 V"), None);
        assert_eq!(lexicon.correct_spoken("quiero comprar una lámpara"), None);
        // Everyday words heard right stay, even one sound from a catalog word.
        lexicon.insert(6, "Billetera de cuero");
        assert_eq!(lexicon.correct_spoken("quiero una billetera"), None);
    }

    #[test]
    fn sounds_follow_spanish_spelling() {
        use super::sound;
        assert_eq!(sound("martillo"), sound("martiyo"));
        assert_eq!(sound("tornillos"), sound("tornios"));
        assert_eq!(sound("yate"), "yate");
        assert_eq!(sound("vaso"), sound("baso"));
        assert_eq!(sound("cereza"), sound("seresa"));
        assert_eq!(sound("queso"), sound("keso"));
        assert_eq!(sound("hacha"), sound("acha"));
        assert_eq!(sound("gente"), sound("jente"));
        assert_eq!(sound("perro"), "pero");
    }
}
