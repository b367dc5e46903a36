//! Bad input on every endpoint: always a clear 4xx in the one JSON error shape,
//! never a 500, and nothing changed.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    bad_bodies_never_change_data,
    hostile_text_is_stored_verbatim,
    transport_errors_are_json
);

async fn snapshot(app: &TestApp) -> Value {
    let mut all = Vec::new();
    for path in [
        "/api/clientes?limit=100",
        "/api/productos?limit=100",
        "/api/pedidos?limit=100",
    ] {
        all.push(app.get(path, &app.admin).await.expect(200));
    }
    Value::Array(all)
}

async fn bad_bodies_never_change_data(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cliente = app.new_cliente("Fija Siempre", "fija@correo.co").await;
    let producto = app.new_producto("FIJO-1", "1000", 5).await;
    let pedido = app
        .post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": cliente["id"], "items": [{"sku": "FIJO-1", "cantidad": 1}]}),
        )
        .await
        .expect(201);
    let before = snapshot(&app).await;

    let huge = "x".repeat(200_000);
    let deep = (0..200).fold(json!(1), |acc, _| json!([acc]));
    let bodies = [
        json!(null),
        json!([]),
        json!("texto"),
        json!(42),
        json!({"nombre": 123, "email": true}),
        json!({"nombre": huge, "email": "a@b.co", "sku": huge, "precio": 1, "stock": 1}),
        json!({"nombre": "Ok Nombre", "email": "ok@b.co", "precio": 1e300, "stock": 1e300, "sku": "S"}),
        json!({"nombre": "Ok Nombre", "email": "ok@b.co", "stock": i64::MIN, "precio": "-0.01", "sku": "S"}),
        json!({"cliente_id": "uno", "items": "todos"}),
        json!({"cliente_id": u64::MAX, "items": [{"sku": "FIJO-1", "cantidad": u64::MAX}]}),
        json!({"estado": 7}),
        json!({"desconocido": 1}),
        json!({"nested": deep}),
    ];
    let targets = [
        (Method::POST, "/api/clientes".to_owned()),
        (Method::PATCH, format!("/api/clientes/{}", cliente["id"])),
        (Method::POST, "/api/productos".to_owned()),
        (Method::PATCH, format!("/api/productos/{}", producto["id"])),
        (Method::POST, "/api/pedidos".to_owned()),
        (Method::PATCH, format!("/api/pedidos/{}", pedido["id"])),
        (Method::POST, "/api/auth/login".to_owned()),
    ];
    for (method, path) in &targets {
        for body in &bodies {
            let reply = app
                .call(method.clone(), path, Some(&app.admin), Some(body.clone()))
                .await;
            let status = reply.status.as_u16();
            assert!(
                (400..500).contains(&status),
                "{method} {path} with {} gave {status}: {}",
                &body.to_string().chars().take(80).collect::<String>(),
                reply.text
            );
            assert!(
                !reply.code().is_empty(),
                "{method} {path}: no error code in {}",
                reply.text
            );
        }
    }
    for path in [
        "/api/clientes/abc",
        "/api/productos/1.5",
        "/api/pedidos/99999999999999999999999",
        "/api/clientes/-1",
    ] {
        let reply = app.get(path, &app.admin).await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 404),
            "{path}: {}",
            reply.text
        );
        assert!(!reply.code().is_empty());
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "rejected requests changed data"
    );
}

async fn hostile_text_is_stored_verbatim(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let texts = [
        "Robert'); DROP TABLE clientes;--",
        "' OR '1'='1",
        "Zoë Ñandú 🚀 漢字 مرحبا",
        "<script>alert(1)</script>",
        "100% de \"algodón\" \\ _x_",
    ];
    for (i, text) in texts.iter().enumerate() {
        let c = app
            .post(
                "/api/clientes",
                &app.admin,
                json!({"nombre": text, "email": format!("h{i}@correo.co"), "notas": text}),
            )
            .await
            .expect(201);
        let read = app
            .get(&format!("/api/clientes/{}", c["id"]), &app.admin)
            .await
            .expect(200);
        assert_eq!(read["nombre"], *text);
        assert_eq!(read["notas"], *text);
        let p = app
            .post("/api/productos", &app.admin, json!({"sku": format!("H-{i}"), "nombre": text, "descripcion": text, "precio": 1, "stock": 1, "categoria": text}))
            .await
            .expect(201);
        assert_eq!(p["nombre"], *text);
    }
    assert_eq!(app.total("/api/clientes").await, texts.len() as u64);
    let found = app
        .get("/api/clientes/buscar?q=DROP%20TABLE", &app.admin)
        .await
        .expect(200);
    assert_eq!(found.as_array().unwrap().len(), 1);
}

async fn transport_errors_are_json(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.get("/api/no-existe", &app.admin)
        .await
        .expect_error(404, "route_not_found");
    app.call(
        Method::PUT,
        "/api/clientes",
        Some(&app.admin),
        Some(json!({})),
    )
    .await
    .expect_error(405, "method_not_allowed");

    let send_raw = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = app
            .client
            .post(app.url("/api/clientes"))
            .bearer_auth(&app.admin)
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        async move { TestApp::read(request.send().await.unwrap()).await }
    };
    send_raw(None, b"{\"nombre\": \"Ana\"}".to_vec())
        .await
        .expect_error(415, "unsupported_media_type");
    send_raw(Some("text/plain"), b"hola".to_vec())
        .await
        .expect_error(415, "unsupported_media_type");
    send_raw(Some("application/json"), b"{\"nombre\": ".to_vec())
        .await
        .expect_error(400, "invalid_json");
    send_raw(Some("application/json"), vec![0xff, 0xfe, 0x00])
        .await
        .expect_error(400, "invalid_json");
    // A 10 MB body is refused from its Content-Length, before it is read. The client
    // waits for that answer before sending the body (a client streaming the body
    // regardless may see the connection closed under it).
    let reply = oversized_post(&app, "/api/clientes", 10 * 1024 * 1024).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains(r#""code":"payload_too_large""#), "{reply}");
    assert_eq!(app.total("/api/clientes").await, 0);
}

/// Sends only the head of a POST announcing `length` bytes and returns the raw reply.
async fn oversized_post(app: &TestApp, path: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        app.addr, app.admin
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}
