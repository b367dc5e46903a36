//! Reports saved under the exports folder and downloaded again, a client that leaves
//! mid-export, and the limits on exports (size and rate).

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use sea_orm::{EntityTrait, Set};
use serde_json::json;
use tendero::db::entities::producto;

use super::{TRICKY, download, seed};
use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(saved_reports, client_leaving_stops_the_export);

async fn saved_reports(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    assert_eq!(
        app.get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200),
        json!([])
    );
    let response = app
        .client
        .get(app.url("/api/exportar/pedidos?guardar=true"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = response.text().await.unwrap();

    // The file is renamed into place once the stream ends; poll for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = app
            .get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200);
        if listed.as_array().is_some_and(|l| !l.is_empty()) {
            break listed;
        }
        assert!(Instant::now() < deadline, "saved report never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let name = listed[0]["nombre"].as_str().unwrap();
    assert!(
        name.starts_with("pedidos-") && name.ends_with(".csv"),
        "{name}"
    );
    assert_eq!(
        listed[0]["bytes"].as_u64().unwrap() as usize,
        streamed.len()
    );
    let (headers, saved) = download(&app, &format!("/api/exportar/archivos/{name}")).await;
    assert_eq!(saved, streamed);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");

    let dir = app.state.settings().export.exports_dir.clone();
    std::fs::write(dir.join(".pedidos-x.csv.part"), "half").unwrap();
    std::fs::write(dir.parent().unwrap().join("secreto.csv"), "no").unwrap();
    assert_eq!(
        app.get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in [
        "..%2Fsecreto.csv",
        "%2E%2E%2Fsecreto.csv",
        ".pedidos-x.csv.part",
        "%2E%2E",
        "%2Fetc%2Fpasswd",
        "a%00.csv",
    ] {
        let (status, body) = app
            .raw_get(&format!("/api/exportar/archivos/{bad}"), &app.admin)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("validation_failed"), "{bad}: {body}");
    }
    for bad in ["../secreto.csv", "../../secreto.csv", "./../secreto.csv"] {
        let (status, body) = app
            .raw_get(&format!("/api/exportar/archivos/{bad}"), &app.admin)
            .await;
        assert_eq!(status, 404, "{bad}: {body}");
    }
    app.get("/api/exportar/archivos/otro.csv", &app.admin)
        .await
        .expect_error(404, "not_found");
}

async fn client_leaving_stops_the_export(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let now = Utc::now();
    let rows: Vec<producto::ActiveModel> = (0..30_000)
        .map(|i| producto::ActiveModel {
            sku: Set(format!("BULK-{i:06}")),
            nombre: Set(format!(
                "Producto masivo número {i} con un nombre largo para ocupar bytes"
            )),
            descripcion: Set(Some("Descripción de relleno ".repeat(8))),
            categoria: Set("masivo".into()),
            precio_centavos: Set(123_456),
            stock: Set(5),
            atributos: Set(json!({"lote": i})),
            activo: Set(true),
            eliminado_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        producto::Entity::insert_many(chunk.to_vec())
            .exec(app.state.db().conn())
            .await
            .unwrap();
    }

    let mut response = app
        .client
        .get(app.url("/api/exportar/productos?formato=jsonl&guardar=true"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-export-rows"], "30000");
    let first = response.chunk().await.unwrap().expect("some bytes");
    assert!(!first.is_empty());
    drop(response);

    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = app.call(Method::GET, "/metrics", None, None).await.text;
        if metrics.contains(r#"tendero_exports_total{report="productos",outcome="cancelled"} 1"#) {
            break metrics;
        }
        assert!(
            !metrics.contains(r#"outcome="completed""#),
            "the export ran to the end although the client left"
        );
        assert!(
            Instant::now() < deadline,
            "export never noticed the client left:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(metrics.contains("tendero_exports_running 0"), "{metrics}");
    let written: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"tendero_export_rows_total{report="productos"} "#))
        .expect("rows counter")
        .parse()
        .unwrap();
    assert!(
        written < 30_000,
        "{written} rows written for a client that left"
    );
    // Nothing half-written was left behind or listed.
    assert_eq!(
        app.get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200),
        json!([])
    );
    let dir = &app.state.settings().export.exports_dir;
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn exports_over_the_cap_are_refused_before_starting() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.export.export_max_rows = 3)
        .await
        .unwrap();
    seed(&app).await;
    let reply = app.get("/api/exportar/clientes", &app.admin).await;
    reply.expect_error(422, "export_too_large");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&TRICKY.len().to_string())
    );
    assert_eq!(
        app.get(
            "/api/exportar/pedidos?cliente_id=1&formato=jsonl",
            &app.admin
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn exports_have_their_own_rate_limit() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.export_rate_limit_per_minute = 1;
        s.limits.export_rate_limit_burst = 2;
    })
    .await
    .unwrap();
    for _ in 0..2 {
        assert_eq!(
            app.get("/api/exportar/clientes", &app.admin).await.status,
            200
        );
    }
    app.get("/api/exportar/clientes", &app.admin)
        .await
        .expect_error(429, "rate_limited");
    app.get("/api/clientes", &app.admin).await.expect(200);
}
