//! Orders: one transaction with stock checks, concurrency without overselling, and
//! the state machine.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    order_copies_prices_and_decrements_stock,
    rejected_orders_change_nothing,
    concurrent_orders_never_oversell,
    state_machine_and_cancellation,
    list_filters
);

async fn order_copies_prices_and_decrements_stock(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cliente = app.new_cliente("Laura Torres", "laura@correo.co").await;
    let camisa = app.new_producto("CAM-1", "49900.50", 10).await;
    let gorra = app.new_producto("GOR-1", "15000", 4).await;
    let pedido = app
        .post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": cliente["id"], "notas": "Regalo",
                   "items": [{"producto_id": camisa["id"], "cantidad": 2}, {"sku": "GOR-1", "cantidad": 1}, {"sku": "CAM-1", "cantidad": 1}]}),
        )
        .await
        .expect(201);
    assert_eq!(pedido["estado"], "pendiente");
    assert_eq!(pedido["total"], "164701.50");
    let items = pedido["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "lines naming one product are merged: {pedido}"
    );
    let camisa_line = items.iter().find(|i| i["sku"] == "CAM-1").unwrap();
    assert_eq!(camisa_line["cantidad"], 3);
    assert_eq!(camisa_line["precio_unitario"], "49900.50");
    assert_eq!(camisa_line["subtotal"], "149701.50");
    assert_eq!(app.stock(camisa["id"].as_i64().unwrap()).await, 7);
    assert_eq!(app.stock(gorra["id"].as_i64().unwrap()).await, 3);

    // A later price change does not touch the order.
    app.patch(
        &format!("/api/productos/{}", camisa["id"]),
        &app.admin,
        json!({"precio": 1}),
    )
    .await
    .expect(200);
    let again = app
        .get(&format!("/api/pedidos/{}", pedido["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(again["total"], "164701.50");
    assert_eq!(again["items"], pedido["items"]);

    // A client-sent total or price is not accepted.
    app.post("/api/pedidos", &app.admin, json!({"cliente_id": cliente["id"], "total": "1", "items": [{"sku": "GOR-1", "cantidad": 1}]}))
        .await
        .expect_error(422, "invalid_body");
}

async fn rejected_orders_change_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cliente = app.new_cliente("Mario Díaz", "mario@correo.co").await;
    let inactivo = app.new_cliente("Inactivo Díaz", "inactivo@correo.co").await;
    app.patch(
        &format!("/api/clientes/{}", inactivo["id"]),
        &app.admin,
        json!({"activo": false}),
    )
    .await
    .expect(200);
    let a = app.new_producto("R-1", "1000", 5).await;
    let b = app.new_producto("R-2", "2000", 1).await;
    let off = app.new_producto("R-3", "2000", 9).await;
    app.patch(
        &format!("/api/productos/{}", off["id"]),
        &app.admin,
        json!({"activo": false}),
    )
    .await
    .expect(200);
    let line = |sku: &str, cantidad: i64| json!({"sku": sku, "cantidad": cantidad});
    let order =
        |cliente: &Value, items: Value| json!({"cliente_id": cliente["id"], "items": items});

    // The second line fails after the first was decremented: all of it rolls back.
    let reply = app
        .post(
            "/api/pedidos",
            &app.admin,
            order(&cliente, json!([line("R-1", 2), line("R-2", 3)])),
        )
        .await;
    reply.expect_error(409, "insufficient_stock");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("R-2")
    );
    app.post(
        "/api/pedidos",
        &app.admin,
        order(&inactivo, json!([line("R-1", 1)])),
    )
    .await
    .expect_error(409, "customer_inactive");
    app.post(
        "/api/pedidos",
        &app.admin,
        json!({"cliente_id": 424242, "items": [line("R-1", 1)]}),
    )
    .await
    .expect_error(404, "not_found");
    app.post(
        "/api/pedidos",
        &app.admin,
        order(&cliente, json!([line("NO-EXISTE", 1)])),
    )
    .await
    .expect_error(404, "not_found");
    app.post(
        "/api/pedidos",
        &app.admin,
        order(&cliente, json!([line("R-3", 1)])),
    )
    .await
    .expect_error(409, "product_unavailable");
    for items in [
        json!([]),
        json!([line("R-1", 0)]),
        json!([line("R-1", -2)]),
        json!([line("R-1", 10_001)]),
        json!([{"cantidad": 1}]),
        json!([{"sku": "R-1", "producto_id": a["id"], "cantidad": 1}]),
    ] {
        app.post("/api/pedidos", &app.admin, order(&cliente, items.clone()))
            .await
            .expect_error(400, "validation_failed");
    }
    assert_eq!(app.stock(a["id"].as_i64().unwrap()).await, 5);
    assert_eq!(app.stock(b["id"].as_i64().unwrap()).await, 1);
    assert_eq!(app.total("/api/pedidos").await, 0);
}

async fn concurrent_orders_never_oversell(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let app = Arc::new(app);
    let cliente = app.new_cliente("Comprador Veloz", "veloz@correo.co").await;
    let producto = app.new_producto("HOT-1", "99000", 10).await;
    let body = json!({"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 1}]});
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let body = body.clone();
            tokio::spawn(async move { app.post("/api/pedidos", &app.admin, body).await })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match reply.status.as_u16() {
            201 => created += 1,
            409 => {
                assert_eq!(reply.code(), "insufficient_stock");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!((created, refused), (10, 40));
    assert_eq!(app.stock(producto["id"].as_i64().unwrap()).await, 0);
    assert_eq!(app.total("/api/pedidos").await, 10);
}

async fn state_machine_and_cancellation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let app = &app;
    let cliente = app.new_cliente("Sofía Castro", "sofia@correo.co").await;
    let producto = app.new_producto("SM-1", "2500", 10).await;
    let pid = producto["id"].as_i64().unwrap();
    let new_order = || async {
        app.post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": cliente["id"], "items": [{"sku": "SM-1", "cantidad": 2}]}),
        )
        .await
        .expect(201)
    };
    let move_to = |id: &Value, estado: &str| {
        let path = format!("/api/pedidos/{id}");
        let body = json!({"estado": estado});
        async move { app.patch(&path, &app.admin, body).await }
    };

    let delivered = new_order().await;
    for estado in ["confirmado", "enviado", "entregado"] {
        let moved = move_to(&delivered["id"], estado).await.expect(200);
        assert_eq!(moved["estado"], estado);
    }
    for estado in ["pendiente", "confirmado", "enviado", "cancelado"] {
        move_to(&delivered["id"], estado)
            .await
            .expect_error(409, "invalid_transition");
    }

    let skipped = new_order().await;
    move_to(&skipped["id"], "enviado")
        .await
        .expect_error(409, "invalid_transition");
    move_to(&skipped["id"], "entregado")
        .await
        .expect_error(409, "invalid_transition");
    move_to(&skipped["id"], "perdido")
        .await
        .expect_error(422, "invalid_body");
    assert_eq!(app.stock(pid).await, 6);

    let cancelled = move_to(&skipped["id"], "cancelado").await.expect(200);
    assert_eq!(cancelled["estado"], "cancelado");
    assert_eq!(app.stock(pid).await, 8, "cancelling restores stock");
    move_to(&skipped["id"], "cancelado").await.expect(200);
    move_to(&skipped["id"], "confirmado")
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(app.stock(pid).await, 8, "stock is restored once");

    let confirmed = new_order().await;
    move_to(&confirmed["id"], "confirmado").await.expect(200);
    let by_delete = app
        .delete(&format!("/api/pedidos/{}", confirmed["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(by_delete["estado"], "cancelado");
    assert_eq!(app.stock(pid).await, 8);
    let again = app
        .delete(&format!("/api/pedidos/{}", confirmed["id"]), &app.admin)
        .await
        .expect(200);
    assert_eq!(again["estado"], "cancelado");
    assert_eq!(
        app.stock(pid).await,
        8,
        "a repeated cancel restores nothing"
    );

    let noted = app
        .patch(
            &format!("/api/pedidos/{}", delivered["id"]),
            &app.admin,
            json!({"notas": "Entregado en portería"}),
        )
        .await
        .expect(200);
    assert_eq!(noted["notas"], "Entregado en portería");
    assert_eq!(noted["estado"], "entregado");
    app.patch(
        "/api/pedidos/987654",
        &app.admin,
        json!({"estado": "confirmado"}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn list_filters(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ana = app.new_cliente("Ana Filtro", "ana.f@correo.co").await;
    let beto = app.new_cliente("Beto Filtro", "beto.f@correo.co").await;
    app.new_producto("LF-1", "100", 100).await;
    for cliente in [&ana, &ana, &beto] {
        app.post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": cliente["id"], "items": [{"sku": "LF-1", "cantidad": 1}]}),
        )
        .await
        .expect(201);
    }
    let all = app.get("/api/pedidos", &app.admin).await.expect(200);
    assert_eq!(all["total"], 3);
    assert!(
        all["items"][0]["id"].as_i64() > all["items"][2]["id"].as_i64(),
        "newest first"
    );
    assert_eq!(all["items"][0]["items"].as_array().unwrap().len(), 1);
    let first = all["items"][2]["id"].clone();
    app.patch(
        &format!("/api/pedidos/{first}"),
        &app.admin,
        json!({"estado": "confirmado"}),
    )
    .await
    .expect(200);

    assert_eq!(
        app.total(&format!("/api/pedidos?cliente_id={}", ana["id"]))
            .await,
        2
    );
    assert_eq!(app.total("/api/pedidos?estado=confirmado").await, 1);
    assert_eq!(app.total("/api/pedidos?estado=pendiente").await, 2);
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    assert_eq!(
        app.total(&format!("/api/pedidos?desde={today}&hasta={today}"))
            .await,
        3
    );
    assert_eq!(
        app.total(&format!("/api/pedidos?desde={tomorrow}")).await,
        0
    );
    assert_eq!(
        app.total(&format!("/api/pedidos?hasta={}", today.pred_opt().unwrap()))
            .await,
        0
    );
    app.get("/api/pedidos?desde=ayer", &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.get(
        &format!("/api/pedidos?desde={tomorrow}&hasta={today}"),
        &app.admin,
    )
    .await
    .expect_error(400, "validation_failed");
    app.get("/api/pedidos?estado=perdido", &app.admin)
        .await
        .expect_error(400, "invalid_query");
}
