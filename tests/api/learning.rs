//! Search that learns from clicks, through the real interfaces: customers search and
//! click (`GET /api/search`, `POST /api/eventos`, each from its own address), a
//! learning runs (`POST /api/aprendizaje/entrenar`, `tendero aprender`), and the
//! product they chose rises; `aprendizaje=false` ranks as before, and a flood of
//! clicks from one client counts once.

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(
    clicks_teach_the_ranking_and_a_request_can_switch_it_off,
    a_flood_of_clicks_from_one_client_counts_once
);

const QUERY: &str = "taladro";

async fn demo_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |s| {
        s.server.demo = true;
        // Each simulated customer comes from its own address.
        s.limits.trust_forwarded_for = true;
        // Strong enough for a few customers to decide the order of a small demo shop.
        s.learning.clicks_weight = 3.0;
    })
    .await
}

fn ids(found: &Value) -> Vec<i64> {
    found["resultados"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["producto"]["id"].as_i64().unwrap())
        .collect()
}

fn scores(found: &Value) -> Vec<(i64, f64)> {
    found["resultados"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["producto"]["id"].as_i64().unwrap(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The customer at `address` searches and clicks the result at `place` (from 1);
/// returns what the search showed.
async fn search_and_click(app: &TestApp, address: &str, place: usize) -> Vec<i64> {
    let found = app.search_from(address, &[("q", QUERY), ("k", "5")]).await;
    let shown = ids(&found);
    let reply = app
        .client
        .post(app.url("/api/eventos"))
        .header("x-forwarded-for", address)
        .json(&json!({
            "tipo": "click",
            "busqueda_id": found["busqueda_id"],
            "producto_id": shown[place - 1],
            "posicion": place,
        }))
        .send()
        .await
        .expect("request sent");
    TestApp::read(reply).await.expect(202);
    shown
}

async fn learn(app: &TestApp) -> Reply {
    app.call(
        Method::POST,
        "/api/aprendizaje/entrenar",
        Some(&app.admin),
        None,
    )
    .await
}

/// Learns once every event sent so far is in the log.
async fn learn_after(app: &TestApp, searches: usize, clicks: usize) -> Value {
    app.events("busqueda", searches).await;
    app.events("click_producto", clicks).await;
    learn(app).await.expect(200)
}

async fn clicks_teach_the_ranking_and_a_request_can_switch_it_off(backend: Backend) {
    let Some(app) = demo_app(backend).await else {
        return;
    };
    let before = ids(&app
        .search_from("10.0.0.1", &[("q", QUERY), ("k", "5")])
        .await);
    assert!(before.len() >= 3, "{before:?}");
    let chosen = before[2];

    // Nothing learned yet: the state says so, and staff only may ask.
    let estado = app
        .get("/api/aprendizaje/estado", &app.admin)
        .await
        .expect(200);
    assert_eq!(estado["version"], Value::Null, "{estado}");
    assert_eq!(estado["activo"], false);
    app.call(Method::POST, "/api/aprendizaje/entrenar", None, None)
        .await
        .expect_error(401, "unauthorized");
    let vendedor = app.vendedor().await;
    app.call(
        Method::POST,
        "/api/aprendizaje/entrenar",
        Some(&vendedor),
        None,
    )
    .await
    .expect_error(403, "forbidden");

    // Six customers search and pick the third result.
    for customer in 0..6 {
        let shown = search_and_click(&app, &format!("10.0.1.{customer}"), 3).await;
        assert_eq!(shown, before, "the ranking changed before any learning");
    }
    let estado = learn_after(&app, 7, 6).await;
    let resumen = &estado["resumen"];
    assert_eq!(estado["activo"], true, "{estado}");
    assert_eq!(resumen["busquedas"], 7, "{estado}");
    assert_eq!(resumen["clics_contados"], 6, "{estado}");
    assert_eq!(resumen["consultas"], 1, "{estado}");
    assert_eq!(resumen["propensiones"][0], 1.0, "{estado}");

    // The chosen product now leads, however the query is written.
    for written in [QUERY, "  TALADRO "] {
        let after = ids(&app
            .search_from("10.0.2.1", &[("q", written), ("k", "5")])
            .await);
        assert_eq!(after[0], chosen, "{written}: {after:?} (before {before:?})");
    }
    // Asked to, the search ranks as it did before any click.
    let off = app
        .search_from(
            "10.0.2.1",
            &[("q", QUERY), ("k", "5"), ("aprendizaje", "false")],
        )
        .await;
    assert_eq!(ids(&off), before);
    // The search event says which ranking the customer saw, and keeps the customer as
    // a hash: the same for one address, another for another, never the address.
    let logged = app.events("busqueda", 10).await;
    assert_eq!(logged.last().unwrap().datos["aprendizaje"], false);
    let client = |i: usize| logged[i].datos["cliente"].as_str().unwrap().to_owned();
    // 0: 10.0.0.1; 1..=6: 10.0.1.0 to 10.0.1.5; 7..=9: 10.0.2.1.
    assert_eq!(client(7), client(9));
    assert_ne!(client(1), client(2));
    assert!(
        client(1).len() == 24 && client(1).chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        client(1)
    );
}

async fn a_flood_of_clicks_from_one_client_counts_once(backend: Backend) {
    // Two shops alike: in the second, one of the three customers clicks the same
    // product thirty more times the same day.
    let Some(honest) = demo_app(backend).await else {
        return;
    };
    let Some(flooded) = demo_app(backend).await else {
        return;
    };
    for customer in 0..3 {
        let address = format!("10.0.1.{customer}");
        search_and_click(&honest, &address, 3).await;
        search_and_click(&flooded, &address, 3).await;
    }
    for _ in 0..30 {
        search_and_click(&flooded, "10.0.1.0", 3).await;
    }
    let learned_honest = learn_after(&honest, 3, 3).await;
    let learned_flooded = learn_after(&flooded, 33, 33).await;
    assert_eq!(
        learned_flooded["resumen"]["clics_recibidos"], 33,
        "{learned_flooded}"
    );
    assert_eq!(
        learned_flooded["resumen"]["clics_contados"], 3,
        "{learned_flooded}"
    );
    assert_eq!(
        learned_flooded["resumen"]["sesiones"],
        learned_honest["resumen"]["sesiones"]
    );
    // The flood moved nothing: the same products with the same scores.
    let read = async |app: &TestApp| {
        scores(
            &app.search_from("10.0.9.9", &[("q", QUERY), ("k", "5")])
                .await,
        )
    };
    assert_eq!(read(&flooded).await, read(&honest).await);
}

/// `tendero aprender` learns from the log of a stopped server; started again, the
/// server serves what it learned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendero_aprender_learns_and_the_server_serves_it() {
    let Some(app) = demo_app(Backend::Sqlite).await else {
        return;
    };
    let before = ids(&app
        .search_from("10.0.0.1", &[("q", QUERY), ("k", "5")])
        .await);
    for customer in 0..4 {
        search_and_click(&app, &format!("10.0.1.{customer}"), 3).await;
    }
    app.events("click_producto", 4).await;
    let stopped = app.stop_for_restart().await;
    let out = Command::new(env!("CARGO_BIN_EXE_tendero"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TENDERO_DATA_DIR", stopped.data_dir())
        .env("TENDERO_EMBEDDER", "hash")
        .env("TENDERO_DEMO", "false")
        .args(["aprender", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["clics_contados"], 4, "{summary}");
    assert_eq!(summary["consultas"], 1, "{summary}");
    assert_eq!(summary["embedder"], "hash:384", "{summary}");

    let app = stopped.start().await;
    let estado = app
        .get("/api/aprendizaje/estado", &app.admin)
        .await
        .expect(200);
    assert_eq!(estado["version"], 1, "{estado}");
    let after = ids(&app
        .search_from("10.0.2.1", &[("q", QUERY), ("k", "5")])
        .await);
    assert_eq!(after[0], before[2], "{after:?} (before {before:?})");
}
