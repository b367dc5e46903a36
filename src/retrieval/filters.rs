//! What a search asks for: the ranking mode and the filters, and the metadata of
//! each chunk the filters are checked against in memory.

use std::collections::HashSet;

use super::store::{Chunk, ChunkKind};

/// Which retriever ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Hybrid,
    Vector,
    Bm25,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Hybrid, Mode::Vector, Mode::Bm25];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Vector => "vector",
            Mode::Bm25 => "bm25",
        }
    }

    pub(super) fn needs_vector(self) -> bool {
        self != Mode::Bm25
    }
}

/// What a search may return. Inactive chunks are never returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub kind: Option<ChunkKind>,
    /// Matched without regard to case or accents.
    pub categoria: Option<String>,
    pub precio_min: Option<i64>,
    pub precio_max: Option<i64>,
    pub en_stock: bool,
    /// Rank without the term learned from clicks ([`super::learned`]), to compare.
    pub ignore_clicks: bool,
}

impl Filters {
    pub(super) fn is_selective(&self) -> bool {
        self.categoria.is_some()
            || self.precio_min.is_some()
            || self.precio_max.is_some()
            || self.en_stock
    }

    /// Whether a chunk passes; `categorias` are the folded category names accepted.
    pub(super) fn matches(&self, meta: &Meta, categorias: Option<&HashSet<String>>) -> bool {
        meta.activo
            && self.kind.is_none_or(|kind| meta.kind == kind)
            && categorias.is_none_or(|accepted| {
                meta.categoria
                    .as_deref()
                    .is_some_and(|c| accepted.contains(c))
            })
            && self
                .precio_min
                .is_none_or(|min| meta.precio_centavos.is_some_and(|p| p >= min))
            && self
                .precio_max
                .is_none_or(|max| meta.precio_centavos.is_some_and(|p| p <= max))
            && (!self.en_stock || meta.stock.is_some_and(|s| s > 0))
    }

    /// The same condition in LanceDB's SQL, with the category spelled as stored.
    pub(super) fn sql(&self, categorias: Option<&HashSet<String>>) -> String {
        let mut parts = vec!["activo = true".to_owned()];
        if let Some(kind) = self.kind {
            parts.push(format!("kind = '{}'", kind.as_str()));
        }
        if let Some(accepted) = categorias {
            let mut names: Vec<&String> = accepted.iter().collect();
            names.sort();
            let list = names
                .iter()
                .map(|c| format!("'{}'", c.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(format!("categoria IN ({list})"));
        }
        if let Some(min) = self.precio_min {
            parts.push(format!("precio_centavos >= {min}"));
        }
        if let Some(max) = self.precio_max {
            parts.push(format!("precio_centavos <= {max}"));
        }
        if self.en_stock {
            parts.push("stock > 0".to_owned());
        }
        parts.join(" AND ")
    }
}

/// What the filters need of a chunk, held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub kind: ChunkKind,
    pub sku: Option<String>,
    pub categoria: Option<String>,
    pub precio_centavos: Option<i64>,
    pub stock: Option<i64>,
    pub activo: bool,
    pub content_hash: String,
}

impl Meta {
    pub(super) fn of(chunk: &Chunk) -> Self {
        Self {
            kind: chunk.kind,
            sku: chunk.sku.clone(),
            categoria: chunk.categoria.clone(),
            precio_centavos: chunk.precio_centavos,
            stock: chunk.stock,
            activo: chunk.activo,
            content_hash: chunk.content_hash.clone(),
        }
    }
}
