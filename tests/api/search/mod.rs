//! `GET /api/search` over the real index (LanceDB folder + FAISS) and the demo shop.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tendero::catalog::demo;
use tendero::db::entities::{evento, producto};

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::on_every_backend;

mod embedder;

async fn demo_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |s| s.server.demo = true).await
}

fn results(body: &Value) -> &Vec<Value> {
    body["resultados"].as_array().expect("resultados")
}

fn names(body: &Value) -> Vec<String> {
    results(body)
        .iter()
        .map(|r| r["producto"]["nombre"].as_str().unwrap().to_owned())
        .collect()
}

fn cents(price: &Value) -> i64 {
    let text = price.as_str().expect("price as string");
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shop_loads_on_first_start_and_is_searchable() {
    let app = demo_app(Backend::Sqlite).await.unwrap();
    let db = app.state.db().conn();
    let products = producto::Entity::find().count(db).await.unwrap();
    let expected = demo::PRODUCTS.lines().count() as u64 - 1;
    assert_eq!(products, expected);
    assert!(products >= 300);
    let categories: HashSet<String> = producto::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.categoria)
        .collect();
    assert!(categories.len() >= 10, "{categories:?}");

    // Accents and case do not matter: "camion" finds "Camión".
    for modo in ["hybrid", "vector", "bm25"] {
        let body = app
            .search(&[("q", "camion"), ("modo", modo)])
            .await
            .expect(200);
        let first = &names(&body)[0];
        assert!(first.contains("Camión"), "{modo}: {first}");
        assert_eq!(body["modo"], modo);
    }
    // Shop documents are indexed too (not returned by product search).
    let status = app.state.index().status();
    assert!(status.chunks > products as usize, "{status:?}");

    // /ready reports the search components.
    let ready = app.get("/ready", &app.admin).await.expect(200);
    for component in ["lancedb", "faiss", "embedder"] {
        assert_eq!(ready["components"][component]["status"], "ok", "{ready}");
    }
    assert!(
        ready["components"]["embedder"]["detail"]
            .as_str()
            .unwrap()
            .contains("hash:384")
    );

    // A restart keeps the catalog as it was left (one product deleted here): the demo
    // is not loaded again, and the index matches; FAISS was saved at shutdown (loading
    // it by tag is a unit test of its own).
    let first = producto::Entity::find().one(db).await.unwrap().unwrap();
    app.delete(&format!("/api/productos/{}", first.id), &app.admin)
        .await
        .expect(200);
    let settings = (**app.state.settings()).clone();
    let _data = app.stop_keeping_data().await;
    let saved = std::fs::read_dir(settings.retrieval.faiss_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "faiss")
        })
        .count();
    assert_eq!(saved, 1);
    let state = tendero::server::Services::build(settings).await.unwrap();
    assert_eq!(
        producto::Entity::find()
            .count(state.db().conn())
            .await
            .unwrap(),
        expected - 1
    );
    assert_eq!(state.index().status().chunks, status.chunks - 1);
}

/// Every filter, in every mode: nothing that fails it comes back, and when at least
/// `k` products pass it, `k` come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_never_let_a_product_through() {
    let app = demo_app(Backend::Sqlite).await.unwrap();
    let all = producto::Entity::find()
        .all(app.state.db().conn())
        .await
        .unwrap();
    type Case<'a> = (&'a [(&'a str, &'a str)], fn(&producto::Model) -> bool);
    let cases: [Case; 5] = [
        (&[("categoria", "Juguetes")], |p| p.categoria == "juguetes"),
        (&[("categoria", "tecnologia")], |p| {
            p.categoria == "tecnología"
        }),
        (&[("precio_min", "100000"), ("precio_max", "300000")], |p| {
            (10_000_000..=30_000_000).contains(&p.precio_centavos)
        }),
        (&[("en_stock", "true")], |p| p.stock > 0),
        (
            &[
                ("categoria", "ropa"),
                ("en_stock", "true"),
                ("precio_max", "80000"),
            ],
            |p| p.categoria == "ropa" && p.stock > 0 && p.precio_centavos <= 8_000_000,
        ),
    ];
    for (filters, passes) in cases {
        let matching = all.iter().filter(|p| passes(p)).count();
        assert!(matching > 0, "{filters:?} matches nothing in the demo");
        for modo in ["hybrid", "vector", "bm25"] {
            for q in ["regalo para niño", "camiseta azul", "xyzzy"] {
                let mut params = vec![("q", q), ("modo", modo), ("k", "20")];
                params.extend_from_slice(filters);
                let body = app.search(&params).await.expect(200);
                for r in results(&body) {
                    let id = r["producto"]["id"].as_i64().unwrap();
                    let p = all.iter().find(|p| p.id == id).unwrap();
                    assert!(passes(p), "{filters:?} {modo} {q}: {} leaked", p.nombre);
                    assert_eq!(cents(&r["producto"]["precio"]), p.precio_centavos);
                }
                // Vector search ranks every matching product: k results when k exist.
                if modo == "vector" {
                    assert_eq!(results(&body).len(), matching.min(20), "{filters:?} {q}");
                }
            }
        }
    }
    // A category nobody has: no results, not an error.
    let body = app
        .search(&[("q", "camión"), ("categoria", "naves espaciales")])
        .await
        .expect(200);
    assert!(results(&body).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_searches_get_clear_errors() {
    let app = demo_app(Backend::Sqlite).await.unwrap();
    for (params, field) in [
        (vec![], "q"),
        (vec![("q", "   ")], "q"),
        (vec![("q", "silla"), ("k", "0")], "k"),
        (vec![("q", "silla"), ("k", "101")], "k"),
        (vec![("q", "silla"), ("precio_min", "-1")], "precio_min"),
        (
            vec![("q", "silla"), ("precio_min", "500"), ("precio_max", "100")],
            "precio_min",
        ),
    ] {
        let reply = app.search(&params).await;
        reply.expect_error(400, "validation_failed");
        assert_eq!(reply.body["error"]["field"], field, "{params:?}");
    }
    let reply = app.search(&[("q", "silla"), ("modo", "magia")]).await;
    assert_eq!(reply.status, 400, "{}", reply.text);

    // 10 KB of query: refused with the limit named, the server unharmed.
    let long = "camión rojo ".repeat(900);
    let reply = app.search(&[("q", &long)]).await;
    reply.expect_error(400, "validation_failed");
    assert!(reply.text.contains("2000"), "{}", reply.text);

    // The largest k and a query of odd characters work.
    let body = app
        .search(&[("q", "silla"), ("k", "100")])
        .await
        .expect(200);
    assert_eq!(results(&body).len(), 100);
    let body = app
        .search(&[("q", "¿\"'; DROP TABLE productos; -- 🚚 ñandú ü")])
        .await
        .expect(200);
    assert!(body["resultados"].is_array());
}

/// Products created, changed and deleted through the REST API are searchable (or
/// gone) as soon as the API answers.
async fn product_changes_reach_the_index(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let created = app
        .post(
            "/api/productos",
            &app.admin,
            json!({"sku": "BICI-1", "nombre": "Bicicleta eléctrica plegable",
                   "categoria": "deportes", "precio": "2500000", "stock": 3,
                   "descripcion": "Motor de 250 W y batería de litio"}),
        )
        .await
        .expect(201);
    let id = created["id"].as_i64().unwrap();
    let body = app
        .search(&[("q", "bicicleta electrica")])
        .await
        .expect(200);
    assert_eq!(results(&body)[0]["producto"]["id"], id);

    app.patch(
        &format!("/api/productos/{id}"),
        &app.admin,
        json!({"nombre": "Patineta eléctrica", "precio": "900000"}),
    )
    .await
    .expect(200);
    let body = app
        .search(&[("q", "patineta"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(results(&body)[0]["producto"]["precio"], "900000.00");
    let body = app
        .search(&[("q", "bicicleta"), ("modo", "bm25")])
        .await
        .expect(200);
    assert!(results(&body).is_empty(), "{body}");
    let body = app
        .search(&[("q", "patineta"), ("precio_min", "1000000")])
        .await
        .expect(200);
    assert!(results(&body).is_empty(), "{body}");
    // Saved rows are outside the full-text index (scanned by every BM25 query) until
    // the index upkeep folds them in, within a poll.
    let store = app.state.index().store();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.unindexed_rows().await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "saved products never reached the full-text index"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = app
        .search(&[("q", "patineta"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(results(&body)[0]["producto"]["id"], id);

    app.delete(&format!("/api/productos/{id}"), &app.admin)
        .await
        .expect(200);
    let body = app.search(&[("q", "patineta")]).await.expect(200);
    assert!(results(&body).is_empty(), "{body}");
}

/// A misspelt word is searched as the catalog word one edit away, and the answer
/// says so; the catalog's words follow products created and deleted through the API,
/// and a restart (which loads the saved FAISS file) keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misspelt_words_are_searched_as_catalog_words() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    for (sku, nombre) in [
        ("TAL-1", "Taladro percutor inalámbrico"),
        ("LIN-1", "Linterna frontal recargable"),
    ] {
        app.post(
            "/api/productos",
            &app.admin,
            json!({"sku": sku, "nombre": nombre, "categoria": "herramientas",
                   "precio": "150000", "stock": 5}),
        )
        .await
        .expect(201);
    }
    let first_sku = |body: &Value| results(body)[0]["producto"]["sku"].clone();

    let body = app
        .search(&[("q", "talardo inalambrico"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(body["corrected_query"], "taladro inalambrico", "{body}");
    assert_eq!(body["query"], "talardo inalambrico");
    assert_eq!(first_sku(&body), "TAL-1");
    // Correctly spelt queries, and unknown words with no catalog word one edit
    // away, are searched as written.
    let body = app
        .search(&[("q", "linterna"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(body["corrected_query"], Value::Null);
    assert_eq!(first_sku(&body), "LIN-1");
    let body = app
        .search(&[("q", "zapatos"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(body["corrected_query"], Value::Null);
    assert!(results(&body).is_empty(), "{body}");

    // A word that arrives with a new product is corrected to at once; it leaves with it.
    let created = app
        .post(
            "/api/productos",
            &app.admin,
            json!({"sku": "MOTO-1", "nombre": "Motosierra a gasolina",
                   "categoria": "jardin", "precio": "700000", "stock": 2}),
        )
        .await
        .expect(201);
    let body = app
        .search(&[("q", "motosiera"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(body["corrected_query"], "motosierra");
    assert_eq!(first_sku(&body), "MOTO-1");
    app.delete(
        &format!("/api/productos/{}", created["id"].as_i64().unwrap()),
        &app.admin,
    )
    .await
    .expect(200);
    let body = app
        .search(&[("q", "motosiera"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(body["corrected_query"], Value::Null, "{body}");

    let app = app.restart().await;
    let body = app
        .search(&[("q", "linterma"), ("modo", "bm25")])
        .await
        .expect(200);
    assert_eq!(body["corrected_query"], "linterna", "{body}");
    assert_eq!(first_sku(&body), "LIN-1");
    // Hybrid search corrects too.
    let body = app.search(&[("q", "talardo")]).await.expect(200);
    assert_eq!(body["corrected_query"], "taladro");
    assert_eq!(first_sku(&body), "TAL-1");
}

/// Orders change stock; the `en_stock` filter follows.
async fn ordered_out_products_leave_en_stock(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let producto = app.new_producto("LAMP-1", "89000", 1).await;
    let cliente = app.new_cliente("Ana Gómez", "ana@correo.co").await;
    let pedido = app
        .post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 1}]}),
        )
        .await
        .expect(201);
    let nombre = producto["nombre"].as_str().unwrap();
    let body = app
        .search(&[("q", nombre), ("en_stock", "true")])
        .await
        .expect(200);
    assert!(results(&body).is_empty(), "{body}");
    app.delete(&format!("/api/pedidos/{}", pedido["id"]), &app.admin)
        .await
        .expect(200);
    // The cancelled order restored the stock: the index's copy follows within a poll.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = app
            .search(&[("q", nombre), ("en_stock", "true")])
            .await
            .expect(200);
        if !results(&body).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stock never came back to the index"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_are_recorded_as_events() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    app.new_producto("SILLA-1", "120000", 4).await;
    app.search(&[("q", "silla gamer"), ("en_stock", "true")])
        .await
        .expect(200);
    let db = app.state.db().conn();
    let deadline = Instant::now() + Duration::from_secs(5);
    let event = loop {
        if let Some(event) = evento::Entity::find()
            .filter(evento::Column::Tipo.eq("busqueda"))
            .one(db)
            .await
            .unwrap()
        {
            break event;
        }
        assert!(Instant::now() < deadline, "no search event recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(event.datos["q"], "silla gamer");
    assert_eq!(event.datos["modo"], "hybrid");
    assert_eq!(event.datos["en_stock"], true);
    assert_eq!(event.datos["resultados"], 1);
}

on_every_backend!(
    product_changes_reach_the_index,
    ordered_out_products_leave_en_stock
);
