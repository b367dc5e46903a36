//! Health, readiness, metrics, OpenAPI, request ids and rate limits.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(health_ready_metrics_docs);

async fn health_ready_metrics_docs(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let health = app
        .call(Method::GET, "/health", None, None)
        .await
        .expect(200);
    assert_eq!(health["status"], "ok");
    let ready = app
        .call(Method::GET, "/ready", None, None)
        .await
        .expect(200);
    assert_eq!(ready["components"]["db"]["status"], "ok");
    let expected_backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(ready["components"]["db"]["detail"], expected_backend);

    app.get("/api/clientes", &app.admin).await.expect(200);
    app.get("/api/clientes/77", &app.admin).await.expect(404);
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains(
            r#"tendero_http_requests_total{method="GET",route="/api/clientes",status="200"} 1"#
        ),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains(r#"route="/api/clientes/{id}",status="404""#)
    );
    assert!(
        metrics
            .text
            .contains("tendero_http_request_duration_seconds_bucket")
    );

    let spec = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    assert_eq!(spec["info"]["title"], "Tendero API");
    for path in [
        "/api/auth/login",
        "/api/clientes/{id}",
        "/api/clientes/buscar",
        "/api/productos",
        "/api/pedidos/{id}",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(docs.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn request_ids_are_returned_and_kept() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let generated = app.client.get(app.url("/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let given = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "pedido-de-prueba-1")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "pedido-de-prueba-1");
}

#[tokio::test]
async fn rate_limits_apply_per_ip_and_per_user() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.rate_limit_per_second = 1;
        s.limits.rate_limit_burst = 3;
    })
    .await
    .unwrap();
    // Signing in used one anonymous request from this IP; two remain.
    for _ in 0..2 {
        app.call(Method::GET, "/api/productos", None, None)
            .await
            .expect(401);
    }
    let limited = app.call(Method::GET, "/api/productos", None, None).await;
    limited.expect_error(429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));

    // The signed-in admin has a budget of their own.
    for _ in 0..3 {
        app.get("/api/productos", &app.admin).await.expect(200);
    }
    app.get("/api/productos", &app.admin)
        .await
        .expect_error(429, "rate_limited");
    let created = app
        .post(
            "/api/productos",
            &app.admin,
            json!({"sku": "RL-1", "nombre": "Limitado", "precio": 1, "stock": 1}),
        )
        .await;
    created.expect_error(429, "rate_limited");
    // Probes are not limited.
    app.call(Method::GET, "/health", None, None)
        .await
        .expect(200);
}

#[tokio::test]
async fn shutdown_returns_and_stops_accepting_connections() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let addr = app.addr;
    app.stop().await.expect("server stopped cleanly");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
