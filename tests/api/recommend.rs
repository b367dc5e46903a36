//! Recommendations over REST: complements and "for you" from a known order history,
//! filters that never leak, an order that changes the list at once, bad input refused,
//! a failed training that leaves the previous models serving, the order of purchases,
//! and generations that survive a restart.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(
    a_known_history_gives_the_expected_recommendations,
    filters_never_leak_and_bad_input_is_refused,
    a_failed_training_leaves_the_previous_models_serving,
    a_generation_survives_a_restart_and_one_trained_by_the_cli_is_served,
    the_order_of_purchases_decides_what_comes_next
);

/// The shop: drills are bought with bits, hammers with nails.
pub struct Shop {
    pub taladro: i64,
    pub brocas: i64,
    pub martillo: i64,
    pub clavos: i64,
    pub guantes: i64,
    /// Bought a drill only.
    pub nuevo: i64,
    /// Never ordered.
    pub sin_pedidos: i64,
}

async fn product(app: &TestApp, sku: &str, nombre: &str, categoria: &str, precio: &str) -> i64 {
    app.post(
        "/api/productos",
        &app.admin,
        json!({"sku": sku, "nombre": nombre, "categoria": categoria, "precio": precio, "stock": 100}),
    )
    .await
    .expect(201)["id"]
        .as_i64()
        .unwrap()
}

async fn order(app: &TestApp, cliente: i64, productos: &[i64]) {
    let items: Vec<Value> = productos
        .iter()
        .map(|p| json!({"producto_id": p, "cantidad": 1}))
        .collect();
    app.post(
        "/api/pedidos",
        &app.admin,
        json!({"cliente_id": cliente, "items": items}),
    )
    .await
    .expect(201);
}

async fn customer(app: &TestApp, n: usize) -> i64 {
    app.new_cliente(&format!("Cliente {n}"), &format!("c{n}@correo.co"))
        .await["id"]
        .as_i64()
        .unwrap()
}

pub async fn shop(app: &TestApp) -> Shop {
    let taladro = product(app, "TAL-1", "Taladro percutor", "Herramientas", "250000").await;
    let brocas = product(app, "BRO-1", "Brocas para concreto", "Accesorios", "30000").await;
    let martillo = product(app, "MAR-1", "Martillo de uña", "Herramientas", "45000").await;
    let clavos = product(app, "CLA-1", "Clavos de acero", "Fijaciones", "8000").await;
    let guantes = product(app, "GUA-1", "Guantes de carnaza", "Seguridad", "12000").await;
    for n in 0..6 {
        let c = customer(app, n).await;
        order(app, c, &[taladro, brocas]).await;
    }
    for n in 6..10 {
        let c = customer(app, n).await;
        order(app, c, &[martillo, clavos]).await;
    }
    let nuevo = customer(app, 10).await;
    order(app, nuevo, &[taladro]).await;
    let sin_pedidos = customer(app, 11).await;
    Shop {
        taladro,
        brocas,
        martillo,
        clavos,
        guantes,
        nuevo,
        sin_pedidos,
    }
}

pub async fn train(app: &TestApp) -> Value {
    let reply = app
        .post("/api/recomendaciones/entrenar", &app.admin, json!({}))
        .await;
    if reply.status != 200 {
        let estado = app.get("/api/recomendaciones/estado", &app.admin).await;
        panic!("training failed: {}; state: {}", reply.text, estado.text);
    }
    reply.body
}

/// The ids of a list, in order, and the reply.
async fn list(app: &TestApp, path: &str) -> (Vec<i64>, Value) {
    let reply = app
        .call(Method::GET, path, Some(&app.admin), None)
        .await
        .expect(200);
    let ids = reply["recomendaciones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["producto"]["id"].as_i64().unwrap())
        .collect();
    (ids, reply)
}

pub fn motivo(reply: &Value, id: i64) -> String {
    reply["recomendaciones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["producto"]["id"] == id)
        .map(|r| r["motivo"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn a_known_history_gives_the_expected_recommendations(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = shop(&app).await;
    let estado = train(&app).await;
    assert_eq!(estado["pedidos"], 11, "{estado}");
    assert_eq!(estado["clientes"], 11, "{estado}");
    assert_eq!(estado["modelos"].as_array().unwrap().len(), 5, "{estado}");
    let version = estado["version"].as_u64().unwrap();

    // Complements: the bits go with the drill; the drill itself and other tools do not.
    let (ids, reply) = list(
        &app,
        &format!("/api/productos/{}/complementos?k=4", s.taladro),
    )
    .await;
    assert_eq!(ids.first(), Some(&s.brocas), "{reply}");
    assert_eq!(motivo(&reply, s.brocas), "comprados_juntos");
    assert!(
        !ids.contains(&s.taladro) && !ids.contains(&s.martillo),
        "{reply}"
    );
    for other in [s.clavos, s.guantes] {
        assert_ne!(motivo(&reply, other), "comprados_juntos", "{reply}");
    }
    assert_eq!(reply["version"].as_u64(), Some(version));
    // Public, like search: no token needed.
    let public = app
        .call(
            Method::GET,
            &format!("/api/productos/{}/complementos", s.taladro),
            None,
            None,
        )
        .await;
    public.expect(200);

    // Similar: bought by the same customers.
    let (ids, reply) = list(&app, &format!("/api/productos/{}/similares", s.martillo)).await;
    assert!(!ids.contains(&s.martillo), "{reply}");
    assert_eq!(motivo(&reply, s.clavos), "mismos_clientes", "{reply}");

    // For you: the drill buyer gets the bits first among new products, and the drill
    // again first when own products count.
    let path = format!(
        "/api/clientes/{}/recomendaciones?excluir_comprados=true&k=3",
        s.nuevo
    );
    let (ids, reply) = list(&app, &path).await;
    assert_eq!(ids.first(), Some(&s.brocas), "{reply}");
    assert!(!ids.contains(&s.taladro), "{reply}");
    let (ids, reply) = list(
        &app,
        &format!("/api/clientes/{}/recomendaciones?k=3", s.nuevo),
    )
    .await;
    assert_eq!(ids.first(), Some(&s.taladro), "{reply}");
    assert_eq!(motivo(&reply, s.taladro), "recompra");

    // A customer with no orders gets the popular products; an order changes the list
    // at once, without training again.
    let path = format!(
        "/api/clientes/{}/recomendaciones?excluir_comprados=true&k=2",
        s.sin_pedidos
    );
    let (before, reply) = list(&app, &path).await;
    assert_eq!(before.len(), 2, "{reply}");
    assert!(
        reply["recomendaciones"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["motivo"] == "popular"),
        "{reply}"
    );
    order(&app, s.sin_pedidos, &[s.martillo]).await;
    let (after, reply) = list(&app, &path).await;
    assert_eq!(after.first(), Some(&s.clavos), "{reply}");
    assert!(!after.contains(&s.martillo), "{reply}");
    assert_eq!(
        reply["version"].as_u64(),
        Some(version),
        "no training happened"
    );

    // A batch gives each customer's list, in the order asked.
    let batch = app
        .post(
            "/api/recomendaciones/lote",
            &app.admin,
            json!({"cliente_ids": [s.nuevo, s.sin_pedidos], "k": 2, "filtros": {"excluir_comprados": true}}),
        )
        .await
        .expect(200);
    let results = batch["resultados"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["cliente_id"], s.nuevo);
    assert_eq!(results[0]["recomendaciones"][0]["producto"]["id"], s.brocas);
    assert_eq!(results[1]["recomendaciones"][0]["producto"]["id"], s.clavos);

    let estado = app
        .get("/api/recomendaciones/estado", &app.admin)
        .await
        .expect(200);
    assert_eq!(estado["version"].as_u64(), Some(version));
    assert!(estado["ultimo_error"].is_null(), "{estado}");
}

/// Every customer walks round eight products the same way, one order per product,
/// four steps from their own starting point. Which of a product's two neighbours comes
/// next only the order of purchases tells: as sets of products bought, both
/// neighbours look alike.
async fn the_order_of_purchases_decides_what_comes_next(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut tomos = Vec::new();
    for n in 0..8 {
        tomos.push(
            product(
                &app,
                &format!("TOM-{n}"),
                &format!("Colección, tomo {n}"),
                "Libros",
                "20000",
            )
            .await,
        );
    }
    // 56 customers, 7 per starting point, 224 orders: enough for the shop's own
    // validation split to choose the fusion weights. Orders go step by step, so the
    // later orders of the split are later steps of every walk.
    let mut walkers = Vec::new();
    for n in 0..56 {
        walkers.push(customer(&app, n).await);
    }
    for step in 0..4 {
        for (n, &c) in walkers.iter().enumerate() {
            order(&app, c, &[tomos[(n + step) % 8]]).await;
        }
    }
    // Three customers of whom only the order of purchases is known: one walked two
    // steps, two bought the same two products in opposite orders. Bought together,
    // the four neighbours of their products look alike.
    let mut cases = Vec::new();
    for (n, (walk, next)) in [(vec![2, 3], 4), (vec![1, 5], 6), (vec![5, 1], 2)]
        .into_iter()
        .enumerate()
    {
        let c = customer(&app, 100 + n).await;
        for step in walk {
            order(&app, c, &[tomos[step]]).await;
        }
        cases.push((c, tomos[next]));
    }
    let estado = train(&app).await;
    let modelos = estado["modelos"].as_array().unwrap();
    assert!(
        modelos.iter().any(|m| m["nombre"] == "secuencial"),
        "{estado}"
    );
    assert!(
        estado["pesos"]["nuevos"]["sequential"].as_f64().unwrap() > 0.0,
        "validation gave the sequential model no weight: {estado}"
    );
    for &(who, next) in &cases {
        let (ids, reply) = list(
            &app,
            &format!("/api/clientes/{who}/recomendaciones?excluir_comprados=true&k=3"),
        )
        .await;
        assert_eq!(ids.first(), Some(&next), "{reply}");
        assert_eq!(motivo(&reply, next), "para_ti", "{reply}");
    }
    // A new order moves the walk on at once, without training again.
    let walker = cases[0].0;
    order(&app, walker, &[tomos[4]]).await;
    let (ids, reply) = list(
        &app,
        &format!("/api/clientes/{walker}/recomendaciones?excluir_comprados=true&k=3"),
    )
    .await;
    assert_eq!(ids.first(), Some(&tomos[5]), "{reply}");
    assert_eq!(reply["version"], estado["version"], "no training happened");
}

async fn filters_never_leak_and_bad_input_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = shop(&app).await;
    train(&app).await;
    let base = format!("/api/clientes/{}/recomendaciones", s.nuevo);

    // Out of stock: left out unless asked for.
    app.patch(
        &format!("/api/productos/{}", s.brocas),
        &app.admin,
        json!({"stock": 0}),
    )
    .await
    .expect(200);
    let (ids, reply) = list(&app, &format!("{base}?excluir_comprados=true&k=10")).await;
    assert!(!ids.contains(&s.brocas), "{reply}");
    assert_eq!(ids.len(), 3, "every other product with stock: {reply}");
    let (ids, _) = list(
        &app,
        &format!("{base}?excluir_comprados=true&en_stock=false&k=1"),
    )
    .await;
    assert_eq!(ids, vec![s.brocas]);

    // Inactive: never.
    app.patch(
        &format!("/api/productos/{}", s.brocas),
        &app.admin,
        json!({"stock": 5, "activo": false}),
    )
    .await
    .expect(200);
    let (ids, reply) = list(&app, &format!("{base}?en_stock=false&k=10")).await;
    assert!(!ids.contains(&s.brocas), "{reply}");

    // Category and price: every result passes, and k results come whenever k pass.
    let (ids, reply) = list(&app, &format!("{base}?categoria=fijaciones&k=5")).await;
    assert_eq!(ids, vec![s.clavos], "{reply}");
    let (ids, reply) = list(&app, &format!("{base}?precio_max=20000&k=5")).await;
    let mut cheap = ids.clone();
    cheap.sort_unstable();
    assert_eq!(cheap, vec![s.clavos, s.guantes], "{reply}");
    let (ids, reply) = list(
        &app,
        &format!(
            "/api/productos/{}/complementos?precio_min=40000&k=5",
            s.taladro
        ),
    )
    .await;
    assert!(
        ids.iter()
            .all(|id| *id != s.brocas && *id != s.clavos && *id != s.guantes),
        "{reply}"
    );

    // Bad input: clear 4xx, naming what is wrong.
    app.get(&format!("{base}?k=0"), &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.get(&format!("{base}?k=101"), &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.get(&format!("{base}?color=rojo"), &app.admin)
        .await
        .expect_error(400, "invalid_query");
    app.get(&format!("{base}?precio_min=10&precio_max=5"), &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.get("/api/clientes/999999/recomendaciones", &app.admin)
        .await
        .expect_error(404, "not_found");
    app.get("/api/productos/999999/similares", &app.admin)
        .await
        .expect_error(404, "not_found");
    app.get("/api/productos/999999/complementos", &app.admin)
        .await
        .expect_error(404, "not_found");
    app.post(
        "/api/recomendaciones/lote",
        &app.admin,
        json!({"cliente_ids": []}),
    )
    .await
    .expect_error(400, "validation_failed");
    app.post(
        "/api/recomendaciones/lote",
        &app.admin,
        json!({"cliente_ids": [s.nuevo, 999999]}),
    )
    .await
    .expect_error(404, "not_found");
    app.post(
        "/api/recomendaciones/lote",
        &app.admin,
        json!({"cliente_ids": [s.nuevo], "filtros": {"talla": "M"}}),
    )
    .await
    .expect_error(422, "invalid_body");
    // A customer's list is for staff; training is for admins.
    let anonymous = app.call(Method::GET, &base, None, None).await;
    anonymous.expect_error(401, "unauthorized");
    let vendedor = app.vendedor().await;
    app.post("/api/recomendaciones/entrenar", &vendedor, json!({}))
        .await
        .expect_error(403, "forbidden");
}

async fn a_failed_training_leaves_the_previous_models_serving(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = shop(&app).await;
    let version = train(&app).await["version"].as_u64().unwrap();
    let conn = app.state.db().conn();
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared("ALTER TABLE pedido_items RENAME TO pedido_items_fuera")
        .await
        .unwrap();
    app.post("/api/recomendaciones/entrenar", &app.admin, json!({}))
        .await
        .expect_error(500, "internal_error");
    let estado = app
        .get("/api/recomendaciones/estado", &app.admin)
        .await
        .expect(200);
    assert_eq!(estado["version"].as_u64(), Some(version), "{estado}");
    assert!(
        estado["ultimo_error"]
            .as_str()
            .is_some_and(|e| e.contains("pedido_items")),
        "{estado}"
    );
    conn.execute_unprepared("ALTER TABLE pedido_items_fuera RENAME TO pedido_items")
        .await
        .unwrap();
    let (ids, reply) = list(
        &app,
        &format!("/api/productos/{}/complementos?k=1", s.taladro),
    )
    .await;
    assert_eq!(ids, vec![s.brocas], "{reply}");
    assert_eq!(reply["version"].as_u64(), Some(version));
    // The next training succeeds and replaces it.
    let estado = train(&app).await;
    assert_eq!(estado["version"].as_u64(), Some(version + 1), "{estado}");
    assert!(estado["ultimo_error"].is_null(), "{estado}");
}

/// Generations are stored: a restart serves the last one at once, and one trained by
/// `tendero entrenar` (another process) is served within the poll interval.
async fn a_generation_survives_a_restart_and_one_trained_by_the_cli_is_served(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.recommend.recommend_poll_secs = 1).await else {
        return;
    };
    let s = shop(&app).await;
    let version = train(&app).await["version"].as_u64().unwrap();
    let app = app.restart().await;
    let estado = app
        .get("/api/recomendaciones/estado", &app.admin)
        .await
        .expect(200);
    assert_eq!(estado["version"].as_u64(), Some(version), "{estado}");
    assert_eq!(estado["pedidos"], 11, "{estado}");
    let (ids, reply) = list(
        &app,
        &format!("/api/productos/{}/complementos?k=1", s.taladro),
    )
    .await;
    assert_eq!(ids, vec![s.brocas], "{reply}");

    let url = app.state.settings().database.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tendero"))
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TENDERO_DATA_DIR", cwd.join("data"))
            .env("TENDERO_DATABASE_URL", url)
            .arg("entrenar")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = version + 1;
    assert!(
        stdout.contains(&format!("version {expected} stored: 11 orders")),
        "{stdout}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let estado = app
            .get("/api/recomendaciones/estado", &app.admin)
            .await
            .expect(200);
        if estado["version"].as_u64() == Some(expected) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server still serves {estado}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
