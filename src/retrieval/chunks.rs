//! How the database's rows become the index's chunks.
//!
//! Each product is one chunk keyed by its id; each document is several chunks (its
//! passages, see [`super::passages`]) keyed by negative numbers derived from the
//! document id. A chunk's content hash has two halves, the text's and the
//! metadata's: a changed text is re-embedded, a changed price or stock only
//! rewrites the metadata and keeps the vector.

use crate::db::entities::{documento, producto};

use super::hash::fnv1a;
use super::passages;
use super::store::{Chunk, ChunkKind};

/// Chunks one document may have at most (keys are spaced by this).
pub const MAX_CHUNKS_PER_DOC: i64 = 100_000;

/// The search key of a document's `n`th chunk (negative: never a product id).
pub fn document_key(documento_id: i64, n: usize) -> i64 {
    -(documento_id * MAX_CHUNKS_PER_DOC + n as i64 + 1)
}

/// The document id and passage number of a document chunk's search key.
pub fn document_of_key(key: i64) -> Option<(i64, usize)> {
    if key >= 0 {
        return None;
    }
    let raw = -key - 1;
    Some((
        raw / MAX_CHUNKS_PER_DOC,
        (raw % MAX_CHUNKS_PER_DOC) as usize,
    ))
}

/// The text a product is searched and embedded by.
pub fn product_text(p: &producto::Model) -> String {
    let mut text = format!("{}\n{}", p.nombre, p.categoria);
    if let Some(d) = &p.descripcion {
        text.push('\n');
        text.push_str(d);
    }
    if let Some(attributes) = p.atributos.as_object() {
        for (name, value) in attributes {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            text.push_str(&format!("\n{name}: {value}"));
        }
    }
    text
}

fn hash_of(text: &str, meta: &str) -> String {
    format!(
        "{:016x}-{:016x}",
        fnv1a(text.as_bytes()),
        fnv1a(meta.as_bytes())
    )
}

pub(super) fn text_half(hash: &str) -> &str {
    hash.split_once('-').map_or(hash, |(text, _)| text)
}

/// The chunk of a product (without its vector).
pub fn product_chunk(p: &producto::Model) -> Chunk {
    let text = product_text(p);
    let meta = format!(
        "{}|{}|{}|{}|{}",
        p.sku, p.categoria, p.precio_centavos, p.stock, p.activo
    );
    Chunk {
        key: p.id,
        kind: ChunkKind::Producto,
        sku: Some(p.sku.clone()),
        categoria: Some(p.categoria.clone()),
        precio_centavos: Some(p.precio_centavos),
        stock: Some(p.stock),
        activo: p.activo,
        title: p.nombre.clone(),
        content_hash: hash_of(&text, &meta),
        text,
        vector: Vec::new(),
    }
}

/// The chunks of a document (without vectors).
pub fn document_chunks(d: &documento::Model) -> Vec<Chunk> {
    passages::chunk(&d.titulo, &d.contenido)
        .into_iter()
        .take(MAX_CHUNKS_PER_DOC as usize)
        .enumerate()
        .map(|(n, piece)| {
            let title = if piece.heading.is_empty() {
                d.titulo.clone()
            } else {
                format!("{} — {}", d.titulo, piece.heading)
            };
            Chunk {
                key: document_key(d.id, n),
                kind: ChunkKind::Documento,
                sku: None,
                categoria: None,
                precio_centavos: None,
                stock: None,
                activo: true,
                content_hash: hash_of(&piece.text, &format!("{}|{}", d.ruta, title)),
                title,
                text: piece.text,
                vector: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_keys_round_trip() {
        assert_eq!(document_of_key(document_key(7, 0)), Some((7, 0)));
        assert_eq!(document_of_key(document_key(123, 45)), Some((123, 45)));
        assert_eq!(document_of_key(42), None);
    }
}
