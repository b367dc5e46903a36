//! The embedder of last resort: signed feature hashing of words and character
//! trigrams into a fixed-size, L2-normalised vector.
//!
//! It needs no model and no network, so the server always starts; it captures shared
//! words and spellings (lexical similarity), not meaning, and says so in its id.

use crate::text::words;

/// Feature-hashing embedder.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
    id: String,
}

impl HashEmbedder {
    pub fn new(dim: usize) -> Self {
        assert!(dim > 0, "an embedding needs at least one dimension");
        Self {
            dim,
            id: format!("hash:{dim}"),
        }
    }

    pub(super) fn id_str(&self) -> &str {
        &self.id
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; self.dim];
        for word in words(text) {
            self.add(&mut vector, word.as_bytes(), 1.0);
            let padded: Vec<char> = format!("^{word}$").chars().collect();
            for gram in padded.windows(3) {
                let gram: String = gram.iter().collect();
                self.add(&mut vector, gram.as_bytes(), 0.5);
            }
        }
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
        vector
    }

    fn add(&self, vector: &mut [f32], feature: &[u8], weight: f32) {
        let hash = fnv1a(feature);
        let index = (hash % self.dim as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[index] += sign * weight;
    }
}

/// 64-bit FNV-1a: stable across platforms and releases (stored vectors depend on it).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn similar_spellings_are_close_and_vectors_are_unit_length() {
        let e = HashEmbedder::new(384);
        let a = e.embed_one("camión de juguete rojo");
        let b = e.embed_one("camion juguete");
        let c = e.embed_one("licuadora de vidrio");
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(cosine(&a, &b) > 0.5, "{}", cosine(&a, &b));
        assert!(cosine(&a, &c) < cosine(&a, &b));
        assert_eq!(e.embed_one("").iter().filter(|v| **v != 0.0).count(), 0);
    }

    #[test]
    fn hashing_is_stable() {
        // Stored indexes depend on these exact values.
        assert_eq!(fnv1a(b"camion"), 0x4bed_3492_5a63_abfa);
    }
}
