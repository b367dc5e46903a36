//! The staff dashboard (`/panel`) in a real headless Chromium (Debian's `chromium`,
//! driven by playwright-core through `test_frontend/panel_page.mjs`): a wrong password
//! refused, the figures of what customers did shown in cards, tables and charts, a new
//! order arriving live without a reload, a report downloaded, and a phone-sized page
//! that does not scroll sideways. Screenshots go to `test_frontend/screenshots/`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chromium::{Driver, check_screenshot, frontend_dir, require_static};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, spawn_app_with};

struct Panel {
    driver: Driver,
}

impl Panel {
    async fn open(app: &TestApp) -> (Self, Value) {
        require_static("chart.js/dist/chart.umd.js");
        let url = app.url("");
        let screenshots = frontend_dir().join("screenshots");
        let driver = Driver::start(
            "panel_page.mjs",
            &[std::ffi::OsStr::new(&url), screenshots.as_os_str()],
        );
        let mut panel = Self { driver };
        let opened = panel.run(json!({"cmd": "open"})).await;
        (panel, opened)
    }

    /// Runs one command; panics when it failed or the page logged an error.
    async fn run(&mut self, command: Value) -> Value {
        let reply = self.driver.send(&command).await;
        assert_ne!(reply["ok"], false, "{command} failed: {reply}");
        assert_eq!(
            reply["errors"],
            json!([]),
            "errors on the page after {command}"
        );
        reply
    }

    async fn screenshot(&mut self, name: &str) {
        check_screenshot(&self.run(json!({"cmd": "screenshot", "name": name})).await);
    }
}

/// An order of one unit of `producto`, after the search `busqueda_id` when given.
async fn order(app: &TestApp, cliente: &Value, producto: i64, busqueda_id: Option<&Value>) -> i64 {
    let mut body =
        json!({"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 1}]});
    if let Some(id) = busqueda_id {
        body["busqueda_id"] = id.clone();
    }
    app.post("/api/pedidos", &app.admin, body).await.expect(201)["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_read_the_figures_and_see_orders_arrive() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.demo = true;
        s.limits.trust_forwarded_for = true;
    })
    .await
    .unwrap();
    // Two customers: one searches drills, clicks the first and orders it; the other
    // searches for what the shop does not have.
    let drills = app
        .search_from("10.0.0.1", &[("q", "taladro"), ("k", "5")])
        .await;
    let first = drills["resultados"][0]["producto"]["id"].as_i64().unwrap();
    app.call(
        reqwest::Method::POST,
        "/api/eventos",
        None,
        Some(
            json!({"tipo": "click", "busqueda_id": drills["busqueda_id"],
                    "producto_id": first, "posicion": 1}),
        ),
    )
    .await
    .expect(202);
    app.search_from("10.0.0.2", &[("q", "unicornio"), ("precio_max", "1")])
        .await;
    let cliente = app.new_cliente("Ana Pérez", "ana@correo.test").await["id"].clone();
    let ordered = order(&app, &cliente, first, Some(&drills["busqueda_id"])).await;
    // The API counts it all before the page is asked.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let serie = app
            .get("/api/analitica/serie", &app.admin)
            .await
            .expect(200);
        let total = &serie["total"];
        if total["busquedas"] == 2 && total["clics"] == 1 && total["pedidos"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never counted: {serie}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut panel, opened) = Panel::open(&app).await;
    assert_eq!(opened["signed_in"], false, "{opened}");
    let refused = panel
        .run(json!({"cmd": "login", "email": ADMIN_EMAIL, "password": "no-es-la-clave"}))
        .await;
    assert_eq!(refused["signed_in"], false, "{refused}");
    assert_eq!(refused["error"], "Correo o contraseña incorrectos.");
    panel.screenshot("panel-acceso-rechazado").await;
    let signed = panel
        .run(json!({"cmd": "login", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .await;
    assert_eq!(signed["signed_in"], true, "{signed}");

    // The cards, tables, charts and latest orders show what was done.
    let shown = panel.run(json!({"cmd": "figures"})).await;
    let figures = &shown["figures"];
    assert_eq!(figures["busquedas"], "2", "{shown}");
    assert_eq!(figures["clics"], "1", "{shown}");
    assert_eq!(figures["pedidos"], "1", "{shown}");
    // One search had results, and it was clicked.
    assert_eq!(figures["ctr"], "100,0 %", "{shown}");
    assert_eq!(
        shown["tables"]["consultas-populares"][0][0], "taladro",
        "{shown}"
    );
    assert_eq!(
        shown["tables"]["consultas-sin-resultados"][0][0], "unicornio",
        "{shown}"
    );
    assert_eq!(
        shown["tables"]["consultas-sin-clics"],
        json!([["Sin datos en estas fechas."]]),
        "{shown}"
    );
    assert_eq!(
        shown["tables"]["productos-top"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
    assert_eq!(shown["charts"], 3, "{shown}");
    assert_eq!(shown["pedidos"], json!([ordered]), "{shown}");
    panel.screenshot("panel-telefono").await;

    // A new order arrives live: no reload.
    panel.run(json!({"cmd": "wait_live"})).await;
    let live = order(&app, &cliente, first, None).await;
    let arrived = panel.run(json!({"cmd": "wait_order", "id": live})).await;
    assert_eq!(arrived["reloaded"], false, "{arrived}");
    assert_eq!(arrived["pedidos"], json!([live, ordered]), "{arrived}");
    assert_eq!(arrived["nuevos"], "1 nuevo desde que abriste el panel");

    // A report downloads with its name.
    let csv = panel
        .run(json!({"cmd": "download", "reporte": "pedidos-csv"}))
        .await;
    let filename = csv["filename"].as_str().unwrap();
    assert!(
        filename.starts_with("pedidos-") && filename.ends_with(".csv"),
        "{csv}"
    );
    assert!(
        csv["first_line"].as_str().unwrap().starts_with("id,"),
        "{csv}"
    );

    // By week; on a phone nothing scrolls sideways, nor on a desktop.
    panel.run(json!({"cmd": "filters", "por": "semana"})).await;
    let overflow = panel.run(json!({"cmd": "overflow"})).await;
    assert_eq!(overflow["overflow"], false);
    panel.run(json!({"cmd": "wide"})).await;
    let overflow = panel.run(json!({"cmd": "overflow"})).await;
    assert_eq!(overflow["overflow"], false);
    panel.screenshot("panel-escritorio").await;
    panel.run(json!({"cmd": "close"})).await;
}
