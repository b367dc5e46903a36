//! Search through Ollama's embedder (a fake served by the test), and what happens
//! when the embedder fails while products change: the changes wait and are retried.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::results;
use crate::helpers::{Backend, TestApp, spawn_app_with};

/// A fake Ollama serving `/api/embed` alone, with hashing-embedder vectors: it
/// counts the texts it embeds in `seen`, and answers 503 while `failing` holds.
/// Returns its URL.
async fn fake_embedder(
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> String {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use std::sync::atomic::Ordering;
    use tendero::retrieval::{Embedder, HashEmbedder};

    let fake = axum::Router::new().route(
        "/api/embed",
        post(move |Json(body): Json<Value>| {
            let (seen, failing) = (seen.clone(), failing.clone());
            async move {
                if failing.load(Ordering::Relaxed) {
                    let error = json!({"error": "the embedding model is reloading"});
                    return (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response();
                }
                assert_eq!(body["model"], "fake-embed");
                let inputs: Vec<String> = match &body["input"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().unwrap().to_owned())
                        .collect(),
                    other => panic!("unexpected input {other}"),
                };
                seen.fetch_add(inputs.len(), Ordering::Relaxed);
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let vectors = HashEmbedder::new(32).embed(&refs).unwrap();
                Json(json!({"model": "fake-embed", "embeddings": vectors})).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await });
    url
}

/// An app embedding through the fake Ollama at `url`.
async fn with_ollama_embedder(url: String) -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.retrieval.embedder = tendero::config::EmbedderChoice::Ollama;
        s.ollama.ollama_url = url;
        s.ollama.ollama_embed_model = "fake-embed".to_owned();
    })
    .await
    .unwrap()
}

/// `TENDERO_EMBEDDER=ollama` embeds through Ollama's `/api/embed` (here a fake one
/// served by the test, answering with hashing-embedder vectors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ollama_embedder_serves_search() {
    use std::sync::atomic::Ordering;

    let texts_seen = std::sync::Arc::default();
    let url = fake_embedder(
        std::sync::Arc::clone(&texts_seen),
        std::sync::Arc::default(),
    )
    .await;
    let app = with_ollama_embedder(url).await;
    assert_eq!(app.state.index().status().embedder, "ollama:fake-embed:32");
    let before = texts_seen.load(Ordering::Relaxed);
    app.new_producto("TERMO-1", "79900", 2).await;
    app.new_producto("SILLA-2", "129900", 5).await;
    assert!(
        texts_seen.load(Ordering::Relaxed) > before,
        "the product was not embedded"
    );
    let body = app
        .search(&[("q", "TERMO-1"), ("modo", "vector")])
        .await
        .expect(200);
    assert_eq!(results(&body)[0]["producto"]["sku"], "TERMO-1");
    assert_eq!(body["embedder"], "ollama:fake-embed:32");
}

/// A product written through the API while the index cannot take it (here the
/// embedder fails) is kept pending: the write answers 2xx, `/ready` and `/metrics`
/// show the backlog, and once the embedder is back the upkeep re-indexes it, so
/// that search finds the new text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_re_index_is_retried_until_the_index_catches_up() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let failing = Arc::new(AtomicBool::new(false));
    let url = fake_embedder(Arc::default(), failing.clone()).await;
    let app = with_ollama_embedder(url).await;
    let product = app.new_producto("TERMO-1", "79900", 2).await;

    failing.store(true, Ordering::Relaxed);
    let id = product["id"].as_i64().unwrap();
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/productos/{id}"),
        Some(&app.admin),
        Some(json!({"nombre": "Termo de acero inoxidable"})),
    )
    .await
    .expect(200);
    let ready = app.get("/ready", &app.admin).await.expect(200);
    let lancedb = &ready["components"]["lancedb"];
    assert_eq!(lancedb["status"], "degraded", "{ready}");
    assert!(
        lancedb["detail"]
            .as_str()
            .unwrap()
            .contains("1 productos por reindexar"),
        "{ready}"
    );
    let metrics = app.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert!(
        metrics.text.contains("tendero_index_backlog_products 1"),
        "{}",
        metrics.text
    );
    let stale = app
        .search(&[("q", "inoxidable"), ("modo", "bm25")])
        .await
        .expect(200);
    assert!(results(&stale).is_empty(), "{stale}");

    failing.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = app.get("/ready", &app.admin).await.expect(200);
        let found = app
            .search(&[("q", "inoxidable"), ("modo", "bm25")])
            .await
            .expect(200);
        if ready["components"]["lancedb"]["status"] == "ok" && !results(&found).is_empty() {
            assert_eq!(results(&found)[0]["producto"]["sku"], "TERMO-1", "{found}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the index never caught up: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let metrics = app.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert!(metrics.text.contains("tendero_index_backlog_products 0"));
}
