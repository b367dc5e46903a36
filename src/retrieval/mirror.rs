//! What a search index holds in memory about its chunk table, besides the vectors:
//! each chunk's filter metadata, the spellings of each category, and the words of
//! the active chunks (for correcting misspelt queries). Kept in step by [`ChunkMirror::apply`].

use std::collections::{HashMap, HashSet};

use super::filters::Meta;
use super::lexicon::Lexicon;
use super::store::Chunk;
use crate::text::fold;

pub(super) struct ChunkMirror {
    pub(super) meta: HashMap<i64, Meta>,
    /// Folded category name → the spellings stored under it.
    pub(super) categorias: HashMap<String, HashSet<String>>,
    /// The active chunks' words, for correcting misspelt query words.
    pub(super) lexicon: Lexicon,
}

impl ChunkMirror {
    /// An empty mirror whose lexicon stems as the full-text analyzer of `language`.
    pub(super) fn new(language: &str) -> Self {
        Self {
            meta: HashMap::new(),
            categorias: HashMap::new(),
            lexicon: Lexicon::new(language),
        }
    }

    /// Removes `deletes`, then records `upserts` (replacing chunks of the same key).
    /// An inactive chunk's words are not counted: they should not steer corrections
    /// towards what no search returns.
    pub(super) fn apply(&mut self, upserts: &[Chunk], deletes: &[i64]) {
        for key in deletes {
            self.meta.remove(key);
            self.lexicon.remove(*key);
        }
        for chunk in upserts {
            self.meta.insert(chunk.key, Meta::of(chunk));
            if chunk.activo {
                self.lexicon.insert(chunk.key, &chunk.text);
            } else {
                self.lexicon.remove(chunk.key);
            }
        }
        self.categorias.clear();
        for meta in self.meta.values() {
            if let Some(c) = &meta.categoria {
                self.categorias
                    .entry(fold(c))
                    .or_default()
                    .insert(c.clone());
            }
        }
    }
}
