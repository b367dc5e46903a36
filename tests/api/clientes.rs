//! Customers: validation, uniqueness, search, pagination, soft deletion.

use serde_json::json;

use crate::helpers::{Backend, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    create_read_update,
    emails_are_unique,
    search_by_name_email_and_phone,
    pagination_and_filters,
    delete_is_soft_when_orders_refer
);

async fn create_read_update(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let created = app
        .post(
            "/api/clientes",
            &app.admin,
            json!({"nombre": "  Ana María Pérez ", "email": " Ana@Correo.CO", "telefono": "+57 300 123 4567", "ciudad": "Medellín"}),
        )
        .await
        .expect(201);
    assert_eq!(created["nombre"], "Ana María Pérez");
    assert_eq!(created["email"], "ana@correo.co");
    assert_eq!(created["activo"], true);
    let id = created["id"].as_i64().unwrap();

    let read = app
        .get(&format!("/api/clientes/{id}"), &app.admin)
        .await
        .expect(200);
    assert_eq!(read, created);

    let updated = app
        .patch(
            &format!("/api/clientes/{id}"),
            &app.admin,
            json!({"telefono": null, "notas": "Prefiere entregas en la tarde", "activo": false}),
        )
        .await
        .expect(200);
    assert_eq!(updated["telefono"], serde_json::Value::Null);
    assert_eq!(updated["ciudad"], "Medellín");
    assert_eq!(updated["notas"], "Prefiere entregas en la tarde");
    assert_eq!(updated["activo"], false);

    for (body, field) in [
        (json!({"nombre": "A"}), "nombre"),
        (json!({"email": "sin-arroba"}), "email"),
        (json!({"telefono": "llámame"}), "telefono"),
    ] {
        let reply = app
            .patch(&format!("/api/clientes/{id}"), &app.admin, body)
            .await;
        reply.expect_error(400, "validation_failed");
        assert_eq!(reply.body["error"]["field"], field);
    }
    let unchanged = app
        .get(&format!("/api/clientes/{id}"), &app.admin)
        .await
        .expect(200);
    assert_eq!(unchanged["nombre"], "Ana María Pérez");
    assert_eq!(unchanged["email"], "ana@correo.co");

    app.get("/api/clientes/999999", &app.admin)
        .await
        .expect_error(404, "not_found");
    app.patch(
        "/api/clientes/999999",
        &app.admin,
        json!({"nombre": "Nadie"}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn emails_are_unique(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.new_cliente("Carlos Ruiz", "carlos@correo.co").await;
    let other = app.new_cliente("Carla Ruiz", "carla@correo.co").await;
    app.post(
        "/api/clientes",
        &app.admin,
        json!({"nombre": "Otro Carlos", "email": "CARLOS@correo.co"}),
    )
    .await
    .expect_error(409, "email_taken");
    app.patch(
        &format!("/api/clientes/{}", other["id"]),
        &app.admin,
        json!({"email": "carlos@correo.co"}),
    )
    .await
    .expect_error(409, "email_taken");
    assert_eq!(app.total("/api/clientes").await, 2);
    let carla = app
        .get(&format!("/api/clientes/{}", other["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(carla["email"], "carla@correo.co");
}

async fn search_by_name_email_and_phone(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.post(
        "/api/clientes",
        &app.admin,
        json!({"nombre": "José Peña", "email": "jpena@correo.co", "telefono": "300-555-1234"}),
    )
    .await
    .expect(201);
    app.new_cliente("María López", "maria@tienda.co").await;
    app.new_cliente("100%_real Pérez", "real@correo.co").await;
    app.new_cliente("1000 Reales", "mil@correo.co").await;
    app.new_cliente("Barra \\ Invertida", "barra@correo.co")
        .await;

    let names = |reply: crate::helpers::Reply| -> Vec<String> {
        reply
            .expect(200)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["nombre"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(
            app.get("/api/clientes/buscar?q=jose%20pena", &app.admin)
                .await
        ),
        ["José Peña"]
    );
    assert_eq!(
        names(
            app.get("/api/clientes/buscar?q=PE%C3%91A", &app.admin)
                .await
        ),
        ["José Peña"]
    );
    assert_eq!(
        names(
            app.get("/api/clientes/buscar?q=tienda.co", &app.admin)
                .await
        ),
        ["María López"]
    );
    assert_eq!(
        names(
            app.get("/api/clientes/buscar?q=3005551234", &app.admin)
                .await
        ),
        ["José Peña"]
    );
    assert_eq!(
        names(
            app.get("/api/clientes/buscar?q=555%201234", &app.admin)
                .await
        ),
        ["José Peña"]
    );
    // LIKE wildcards in the query match literally.
    assert_eq!(
        names(app.get("/api/clientes/buscar?q=100%25_", &app.admin).await),
        ["100%_real Pérez"]
    );
    assert_eq!(
        names(app.get("/api/clientes/buscar?q=%25", &app.admin).await),
        ["100%_real Pérez"]
    );
    // Unescaped, `_` would match any character and find "1000 Reales" and "100%…".
    assert!(names(app.get("/api/clientes/buscar?q=100_", &app.admin).await).is_empty());
    assert_eq!(
        names(app.get("/api/clientes/buscar?q=%5C", &app.admin).await),
        ["Barra \\ Invertida"]
    );
    assert!(names(app.get("/api/clientes/buscar?q=zzz", &app.admin).await).is_empty());
    app.get("/api/clientes/buscar?q=", &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.get("/api/clientes/buscar", &app.admin)
        .await
        .expect_error(400, "invalid_query");
}

async fn pagination_and_filters(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for i in 0..25 {
        app.post(
            "/api/clientes",
            &app.admin,
            json!({"nombre": format!("Cliente {i:02}"), "email": format!("c{i}@correo.co"), "ciudad": if i % 5 == 0 { "Cali" } else { "Bogotá" }}),
        )
        .await
        .expect(201);
    }
    let first = app
        .get("/api/clientes?limit=10", &app.admin)
        .await
        .expect(200);
    assert_eq!(first["total"], 25);
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    let last = app
        .get("/api/clientes?limit=10&offset=20", &app.admin)
        .await
        .expect(200);
    assert_eq!(last["items"].as_array().unwrap().len(), 5);
    assert_eq!(last["items"][0]["nombre"], "Cliente 20");
    let default = app.get("/api/clientes", &app.admin).await.expect(200);
    assert_eq!(default["limit"], 20);

    let cali = app
        .get("/api/clientes?ciudad=Cali", &app.admin)
        .await
        .expect(200);
    assert_eq!(cali["total"], 5);
    let q = app
        .get("/api/clientes?q=cliente%2007", &app.admin)
        .await
        .expect(200);
    assert_eq!(q["total"], 1);

    for bad in [
        "limit=101",
        "limit=0",
        "limit=-1",
        "limit=abc",
        "offset=-5",
        "activo=quizas",
    ] {
        let reply = app.get(&format!("/api/clientes?{bad}"), &app.admin).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
}

async fn delete_is_soft_when_orders_refer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let without_orders = app.new_cliente("Sin Pedidos", "sin@correo.co").await;
    let with_orders = app.new_cliente("Con Pedidos", "con@correo.co").await;
    let producto = app.new_producto("DEL-1", "5000", 3).await;
    let pedido = app
        .post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": with_orders["id"], "items": [{"sku": "DEL-1", "cantidad": 1}]}),
        )
        .await
        .expect(201);

    let hard = app
        .delete(
            &format!("/api/clientes/{}", without_orders["id"]),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(hard["eliminacion"], "definitiva");
    app.get(
        &format!("/api/clientes/{}", without_orders["id"]),
        &app.admin,
    )
    .await
    .expect_error(404, "not_found");

    let soft = app
        .delete(&format!("/api/clientes/{}", with_orders["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(soft["eliminacion"], "logica");
    let kept = app
        .get(&format!("/api/clientes/{}", with_orders["id"]), &app.admin)
        .await
        .expect(200);
    assert!(kept["eliminado_at"].is_string());
    assert_eq!(kept["activo"], false);
    assert_eq!(app.total("/api/clientes").await, 0);
    app.delete(&format!("/api/clientes/{}", with_orders["id"]), &app.admin)
        .await
        .expect_error(404, "not_found");
    // The order still shows its customer.
    let order = app
        .get(&format!("/api/pedidos/{}", pedido["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(order["cliente_id"], with_orders["id"]);
    // A deleted customer cannot order.
    app.post("/api/pedidos", &app.admin, json!({"cliente_id": with_orders["id"], "items": [{"producto_id": producto["id"], "cantidad": 1}]}))
        .await
        .expect_error(404, "not_found");
}
