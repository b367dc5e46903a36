//! Products: validation, exact prices, filters, soft deletion.

use serde_json::json;

use crate::helpers::{Backend, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    prices_are_exact_and_validated,
    filters_and_updates,
    delete_keeps_ordered_products
);

async fn prices_are_exact_and_validated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let created = app
        .post(
            "/api/productos",
            &app.admin,
            json!({"sku": "CAF-500", "nombre": "Café de Huila 500 g", "precio": 0.1, "stock": 40,
                   "categoria": "despensa", "atributos": {"origen": "Huila", "tueste": "medio"}}),
        )
        .await
        .expect(201);
    assert_eq!(created["precio"], "0.10");
    assert_eq!(created["atributos"]["origen"], "Huila");
    let big = app
        .post("/api/productos", &app.admin, json!({"sku": "TV-85", "nombre": "Televisor 85 pulgadas", "precio": "12999999999.99", "stock": 1}))
        .await
        .expect(201);
    assert_eq!(big["precio"], "12999999999.99");
    assert_eq!(big["categoria"], "general");

    let cases = [
        (
            json!({"sku": "X-1", "nombre": "Malo", "precio": -1, "stock": 1}),
            "precio",
        ),
        (
            json!({"sku": "X-1", "nombre": "Malo", "precio": "1.005", "stock": 1}),
            "precio",
        ),
        (
            json!({"sku": "X-1", "nombre": "Malo", "precio": "100000000000000000", "stock": 1}),
            "precio",
        ),
        (
            json!({"sku": "X-1", "nombre": "Malo", "precio": 1, "stock": -3}),
            "stock",
        ),
        (
            json!({"sku": "X-1", "nombre": "Malo", "precio": 1, "stock": 10_000_000_000i64}),
            "stock",
        ),
        (
            json!({"sku": "con espacio", "nombre": "Malo", "precio": 1, "stock": 1}),
            "sku",
        ),
        (
            json!({"sku": "X-1", "nombre": "M", "precio": 1, "stock": 1}),
            "nombre",
        ),
        (
            json!({"sku": "X-1", "nombre": "Malo", "precio": 1, "stock": 1, "atributos": [1, 2]}),
            "atributos",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/productos", &app.admin, body.clone()).await;
        reply.expect_error(400, "validation_failed");
        assert_eq!(reply.body["error"]["field"], field, "{body}");
    }
    app.post(
        "/api/productos",
        &app.admin,
        json!({"sku": "CAF-500", "nombre": "Otro café", "precio": 1, "stock": 1}),
    )
    .await
    .expect_error(409, "sku_taken");
    app.patch(
        &format!("/api/productos/{}", big["id"]),
        &app.admin,
        json!({"sku": "CAF-500"}),
    )
    .await
    .expect_error(409, "sku_taken");
    assert_eq!(app.total("/api/productos").await, 2);
}

async fn filters_and_updates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for (sku, precio, stock, categoria) in [
        ("A-1", "10000", 5, "ropa"),
        ("A-2", "20000", 0, "ropa"),
        ("B-1", "30000", 7, "hogar"),
        ("B-2", "40000", 1, "hogar"),
    ] {
        app.post("/api/productos", &app.admin, json!({"sku": sku, "nombre": format!("Artículo {sku}"), "precio": precio, "stock": stock, "categoria": categoria}))
            .await
            .expect(201);
    }
    assert_eq!(app.total("/api/productos?categoria=ropa").await, 2);
    assert_eq!(app.total("/api/productos?en_stock=true").await, 3);
    assert_eq!(app.total("/api/productos?en_stock=false").await, 1);
    assert_eq!(
        app.total("/api/productos?precio_min=15000&precio_max=35000")
            .await,
        2
    );
    assert_eq!(app.total("/api/productos?q=b-").await, 2);
    app.get("/api/productos?precio_min=-5", &app.admin)
        .await
        .expect_error(400, "validation_failed");

    let list = app
        .get("/api/productos?categoria=hogar", &app.admin)
        .await
        .expect(200);
    let id = list["items"][0]["id"].as_i64().unwrap();
    let updated = app
        .patch(
            &format!("/api/productos/{id}"),
            &app.admin,
            json!({"precio": "31500.50", "stock": 9, "descripcion": "Nueva", "activo": false}),
        )
        .await
        .expect(200);
    assert_eq!(updated["precio"], "31500.50");
    assert_eq!(updated["stock"], 9);
    assert_eq!(updated["activo"], false);
    assert_eq!(app.total("/api/productos?activo=false").await, 1);
    let cleared = app
        .patch(
            &format!("/api/productos/{id}"),
            &app.admin,
            json!({"descripcion": null}),
        )
        .await
        .expect(200);
    assert!(cleared["descripcion"].is_null());
    app.patch(
        &format!("/api/productos/{id}"),
        &app.admin,
        json!({"stock": -1}),
    )
    .await
    .expect_error(400, "validation_failed");
    assert_eq!(app.stock(id).await, 9);
}

async fn delete_keeps_ordered_products(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cliente = app.new_cliente("Pedro Páramo", "pedro@correo.co").await;
    let ordered = app.new_producto("ORD-1", "1500", 10).await;
    let unordered = app.new_producto("ORD-2", "1500", 10).await;
    app.post(
        "/api/pedidos",
        &app.admin,
        json!({"cliente_id": cliente["id"], "items": [{"sku": "ORD-1", "cantidad": 2}]}),
    )
    .await
    .expect(201);
    let soft = app
        .delete(&format!("/api/productos/{}", ordered["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(soft["eliminacion"], "logica");
    let hard = app
        .delete(&format!("/api/productos/{}", unordered["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(hard["eliminacion"], "definitiva");
    assert_eq!(app.total("/api/productos").await, 0);
    let kept = app
        .get(&format!("/api/productos/{}", ordered["id"]), &app.admin)
        .await
        .expect(200);
    assert!(kept["eliminado_at"].is_string());
    app.post(
        "/api/pedidos",
        &app.admin,
        json!({"cliente_id": cliente["id"], "items": [{"sku": "ORD-1", "cantidad": 1}]}),
    )
    .await
    .expect_error(409, "product_unavailable");
    // The SKU stays taken by the kept product.
    app.post(
        "/api/productos",
        &app.admin,
        json!({"sku": "ORD-1", "nombre": "Reemplazo", "precio": 1, "stock": 1}),
    )
    .await
    .expect_error(409, "sku_taken");
}
