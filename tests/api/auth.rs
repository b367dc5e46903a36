//! Sign-in, tokens and roles.

use chrono::Utc;
use reqwest::Method;
use serde_json::json;
use tendero::auth::{Claims, JwtKeys, Role};
use tendero::config::Secret;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, JWT_SECRET, spawn_app};
use crate::on_every_backend;

on_every_backend!(login_and_me, bad_tokens_are_refused, vendedor_cannot_delete);

async fn login_and_me(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let session = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "  ADMIN@tienda.test ", "password": ADMIN_PASSWORD})),
        )
        .await
        .expect(200);
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["usuario"]["rol"], "admin");
    assert!(session["usuario"].get("password_hash").is_none());
    let token = session["token"].as_str().unwrap();
    let me = app.get("/api/auth/me", token).await.expect(200);
    assert_eq!(me["email"], ADMIN_EMAIL);

    for (email, password) in [
        (ADMIN_EMAIL, "equivocada"),
        ("nadie@tienda.test", ADMIN_PASSWORD),
    ] {
        app.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
}

async fn bad_tokens_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let missing = app.call(Method::GET, "/api/clientes", None, None).await;
    missing.expect_error(401, "unauthorized");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");

    let now = Utc::now().timestamp();
    let claims = |iss: &str, exp: i64| Claims {
        sub: "1".into(),
        email: ADMIN_EMAIL.into(),
        rol: Role::Admin,
        iss: iss.into(),
        iat: now - 10,
        exp,
    };
    let ours = JwtKeys::new(JWT_SECRET.as_bytes(), "tendero", 60);
    let forger = JwtKeys::new(b"not-the-server-secret-not-the-server", "tendero", 60);
    let tokens = [
        ours.sign(&claims("tendero", now - 3600)).0,
        forger.sign(&claims("tendero", now + 3600)).0,
        ours.sign(&claims("otra-tienda", now + 3600)).0,
        "garbage".to_owned(),
        format!("{}x", ours.sign(&claims("tendero", now + 3600)).0),
    ];
    for token in &tokens {
        app.get("/api/clientes", token)
            .await
            .expect_error(401, "unauthorized");
    }
    // A well-formed token of ours works, proving the refusals above are about the token.
    app.get(
        "/api/clientes",
        &ours.sign(&claims("tendero", now + 3600)).0,
    )
    .await
    .expect(200);

    let raw = app
        .client
        .get(app.url("/api/auth/me"))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
}

async fn vendedor_cannot_delete(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let vendedor = app.vendedor().await;
    let cliente = app
        .post(
            "/api/clientes",
            &vendedor,
            json!({"nombre": "Luisa Gómez", "email": "luisa@correo.co"}),
        )
        .await
        .expect(201);
    let producto = app.new_producto("VEN-1", "1000", 5).await;
    let pedido = app
        .post("/api/pedidos", &vendedor, json!({"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 1}]}))
        .await
        .expect(201);
    for path in [
        format!("/api/clientes/{}", cliente["id"]),
        format!("/api/productos/{}", producto["id"]),
        format!("/api/pedidos/{}", pedido["id"]),
    ] {
        app.delete(&path, &vendedor)
            .await
            .expect_error(403, "forbidden");
        app.get(&path, &vendedor).await.expect(200);
    }
    assert_eq!(app.stock(producto["id"].as_i64().unwrap()).await, 4);
    app.delete(&format!("/api/pedidos/{}", pedido["id"]), &app.admin)
        .await
        .expect(200);
}

#[tokio::test]
async fn refuses_to_start_without_a_strong_secret_outside_dev() {
    let dir = tempfile::tempdir().unwrap();
    let base = crate::helpers::test_settings(&dir);
    for secret in [None, Some(Secret::new("corto"))] {
        let mut settings = base.clone();
        settings.auth.jwt_secret = secret;
        settings.server.dev = false;
        let err = tendero::server::Services::build(settings)
            .await
            .err()
            .expect("must refuse");
        assert!(err.to_string().contains("TENDERO_JWT_SECRET"), "{err}");
    }
    let mut dev = base;
    dev.auth.jwt_secret = None;
    dev.server.dev = true;
    assert!(tendero::server::Services::build(dev).await.is_ok());
}
