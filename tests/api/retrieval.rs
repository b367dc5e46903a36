//! Embedders on real models: the MiniLM folder that `make test` fetches, and the
//! hashing fallback.

use std::path::PathBuf;

use tendero::retrieval::{Embedder, HashEmbedder, MiniLmEmbedder};

use crate::skip::skip;

/// The MiniLM folder under test: `TENDERO_TEST_MINILM_DIR` (set by `make test`);
/// without it the test is noted as skipped.
pub fn minilm_dir() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("TENDERO_TEST_MINILM_DIR") else {
        skip("minilm", "the MiniLM model", "TENDERO_TEST_MINILM_DIR");
        return None;
    };
    let dir = PathBuf::from(dir);
    assert!(
        MiniLmEmbedder::is_model_dir(&dir),
        "TENDERO_TEST_MINILM_DIR={} holds no model: run scripts/fetch-minilm.sh",
        dir.display()
    );
    Some(dir)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_embeds_meaning_in_unit_vectors() {
    let Some(dir) = minilm_dir() else { return };
    let embedder = MiniLmEmbedder::load(&dir).unwrap();
    assert_eq!(embedder.dim(), 384);
    assert!(embedder.id().starts_with("minilm:"));
    let texts = [
        "running shoes for jogging",
        "sneakers for runners",
        "stainless steel kitchen blender",
        "zapatos",
    ];
    let vectors = embedder.embed(&texts).unwrap();
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(
        related > unrelated + 0.2,
        "related {related}, unrelated {unrelated}"
    );

    // Padding in a batch does not change a text's vector.
    let alone = embedder.embed(&["zapatos"]).unwrap();
    assert!(cosine(&alone[0], &vectors[3]) > 0.9999);
    assert!(embedder.embed(&[]).unwrap().is_empty());

    // Many texts of many lengths, embedded in several batches sorted by token count,
    // come back in the order they were given.
    let many: Vec<String> = (0..70)
        .map(|i| format!("taladro {i} {}", "inalámbrico de 20 V ".repeat(i % 9)))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let together = embedder.embed(&many).unwrap();
    for i in [0, 1, 8, 33, 69] {
        let alone = embedder.embed(&many[i..=i]).unwrap();
        assert!(cosine(&alone[0], &together[i]) > 0.9999, "text {i}");
    }

    let missing = tempfile::tempdir().unwrap();
    let err = MiniLmEmbedder::load(missing.path())
        .err()
        .expect("no model there");
    assert!(
        err.to_string().contains("TENDERO_EMBEDDER_MODEL_DIR"),
        "{err}"
    );
}

#[test]
fn hash_embedder_is_the_lexical_fallback() {
    let embedder = HashEmbedder::new(384);
    assert_eq!(embedder.id(), "hash:384");
    let v = embedder.embed(&["Camión rojo", "camion ROJO"]).unwrap();
    assert!(cosine(&v[0], &v[1]) > 0.999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_store_searches_spanish_text_with_filters() {
    use tendero::retrieval::store::{Chunk, ChunkKind, ChunkStore, Read};

    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("lancedb");
    let uri = uri.to_str().unwrap();
    let embedder = HashEmbedder::new(64);
    let chunk =
        |key: i64, kind: ChunkKind, categoria: &str, stock: i64, text: &str, hash: &str| Chunk {
            key,
            kind,
            sku: (kind == ChunkKind::Producto).then(|| format!("SKU-{key}")),
            categoria: Some(categoria.to_owned()),
            precio_centavos: Some(1000 * key),
            stock: Some(stock),
            activo: true,
            title: text.to_owned(),
            text: text.to_owned(),
            content_hash: hash.to_owned(),
            vector: embedder.embed_one(text),
        };
    let store = ChunkStore::open(uri, "chunks", 64, "Spanish")
        .await
        .unwrap();
    let first_version = store.version().await.unwrap();
    store
        .upsert(&[
            chunk(
                1,
                ChunkKind::Producto,
                "juguetes",
                5,
                "Camión de juguete rojo",
                "h1",
            ),
            chunk(
                2,
                ChunkKind::Producto,
                "hogar",
                3,
                "Licuadora de vidrio de 1.5 litros",
                "h2",
            ),
            chunk(
                3,
                ChunkKind::Producto,
                "deportes",
                0,
                "Zapatos para correr en montaña",
                "h3",
            ),
            chunk(
                4,
                ChunkKind::Documento,
                "envios",
                0,
                "Envíos a todo el país en tres días",
                "h4",
            ),
        ])
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 4);
    assert!(store.version().await.unwrap() > first_version);

    let keys = |hits: Vec<(i64, f32)>| hits.into_iter().map(|h| h.0).collect::<Vec<_>>();
    assert_eq!(
        keys(store.full_text("camion", 5, None).await.unwrap()),
        [1],
        "accent folding"
    );
    assert_eq!(
        keys(store.full_text("CAMIONES", 5, None).await.unwrap()),
        [1],
        "stemming and case"
    );
    assert_eq!(
        keys(store.full_text("corriendo", 5, None).await.unwrap()),
        [3],
        "stemming"
    );
    assert!(
        store.full_text("de", 5, None).await.unwrap().is_empty(),
        "stop word"
    );
    assert_eq!(
        keys(
            store
                .full_text("juguete licuadora", 5, Some("categoria = 'hogar'"))
                .await
                .unwrap()
        ),
        [2],
        "prefilter"
    );
    assert_eq!(
        keys(
            store
                .full_text("envios", 5, Some("kind = 'documento'"))
                .await
                .unwrap()
        ),
        [4]
    );

    // Replacing a chunk keeps one row per key; deleting removes it.
    store
        .upsert(&[chunk(
            1,
            ChunkKind::Producto,
            "juguetes",
            5,
            "Camión de bomberos",
            "h1b",
        )])
        .await
        .unwrap();
    // The rewritten row is outside the full-text index (and scanned) until folded in.
    assert_eq!(store.unindexed_rows().await.unwrap(), 1);
    store.refresh().await.unwrap();
    assert_eq!(store.unindexed_rows().await.unwrap(), 0);
    assert_eq!(store.count().await.unwrap(), 4);
    let hashes = store.hashes().await.unwrap();
    assert_eq!(hashes.len(), 4);
    assert_eq!(hashes[&1], "h1b");
    assert_eq!(
        keys(store.full_text("bomberos", 5, None).await.unwrap()),
        [1]
    );
    store.delete(&[2]).await.unwrap();
    assert!(
        store
            .full_text("licuadora", 5, None)
            .await
            .unwrap()
            .is_empty()
    );
    let rows = store.scan(None, Read::WithVectors).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|c| c.vector.len() == 64));

    // Reopening sees the data; another dimension is refused.
    let reopened = ChunkStore::open(uri, "chunks", 64, "Spanish")
        .await
        .unwrap();
    assert_eq!(reopened.count().await.unwrap(), 3);
    let err = ChunkStore::open(uri, "chunks", 32, "Spanish")
        .await
        .err()
        .expect("dimension mismatch");
    assert!(err.to_string().contains("dimension 64"), "{err}");
}
