//! The analytics and the orders' attribution through the real interfaces: customers
//! search (`GET /api/search`, each from their own address), click (`POST
//! /api/eventos`), order after a search (`POST /api/pedidos` naming its
//! `busqueda_id`) and in a conversation (the agent's `crear_pedido`), and rate an
//! answer; `/api/analitica/…` then give exactly those figures. Staff sockets see each
//! new order arrive (`pedido_nuevo`); customers' sockets do not.

use reqwest::Method;
use serde_json::{Value, json};

use crate::agent::{ask, with_fake};
use crate::fake_ollama::Reply;
use crate::helpers::{Backend, TestApp};
use crate::on_every_backend;
use crate::socket_client::SocketClient;

on_every_backend!(
    the_figures_are_those_of_what_customers_did,
    staff_sockets_see_each_new_order_and_customers_do_not
);

fn shown(found: &Value) -> Vec<i64> {
    found["resultados"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["producto"]["id"].as_i64().unwrap())
        .collect()
}

/// Asks `path` until `ready` holds of its answer (the event log and the fold run in
/// the background), and returns that answer.
async fn once(app: &TestApp, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = app.get(path, &app.admin).await.expect(200);
        if ready(&answer) {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never showed what was done: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn cents(amount: &Value) -> i64 {
    let text = amount
        .as_str()
        .unwrap_or_else(|| panic!("not an amount: {amount}"));
    let (whole, frac) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

async fn the_figures_are_those_of_what_customers_did(backend: Backend) {
    let Some((app, fake)) = with_fake(backend, |s| s.limits.trust_forwarded_for = true).await
    else {
        return;
    };
    // Four searches by three customers: "taladro" twice (written two ways), one
    // clicked at its second place; "licuadora" shown and not clicked; "manguera"
    // under a price nothing has.
    let drills = app
        .search_from("10.0.0.1", &[("q", "Taladro"), ("k", "3")])
        .await;
    let drill_ids = shown(&drills);
    assert!(drill_ids.len() >= 2, "{drills}");
    app.search_from("10.0.0.2", &[("q", "  TALADRO "), ("k", "3")])
        .await;
    let blenders = app
        .search_from("10.0.0.3", &[("q", "licuadora"), ("k", "3")])
        .await;
    assert!(!shown(&blenders).is_empty());
    let hoses = app
        .search_from("10.0.0.3", &[("q", "manguera"), ("precio_max", "1")])
        .await;
    assert!(shown(&hoses).is_empty(), "{hoses}");
    app.call(
        Method::POST,
        "/api/eventos",
        None,
        Some(
            json!({"tipo": "click", "busqueda_id": drills["busqueda_id"],
                    "producto_id": drill_ids[1], "posicion": 2}),
        ),
    )
    .await
    .expect(202);

    // An order naming a search that does not exist, or is no search id, or a
    // conversation that does not exist, is refused and takes no stock.
    let cliente = app.new_cliente("Ana Pérez", "ana@correo.test").await["id"].clone();
    let stock = app.stock(drill_ids[1]).await;
    let order = |extra: Value| {
        let mut body =
            json!({"cliente_id": cliente, "items": [{"producto_id": drill_ids[1], "cantidad": 2}]});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    app.post(
        "/api/pedidos",
        &app.admin,
        order(json!({"busqueda_id": "0b8e5a0e-5b7a-4a59-9d8e-4f3c2a1b0c9d"})),
    )
    .await
    .expect_error(404, "not_found");
    let bad = app
        .post(
            "/api/pedidos",
            &app.admin,
            order(json!({"busqueda_id": "abc"})),
        )
        .await;
    bad.expect_error(400, "validation_failed");
    assert_eq!(bad.body["error"]["field"], "busqueda_id");
    let bad = app
        .post(
            "/api/pedidos",
            &app.admin,
            order(json!({"conversacion_id": "no-existe"})),
        )
        .await;
    bad.expect_error(400, "validation_failed");
    assert_eq!(bad.body["error"]["field"], "conversacion_id");
    assert_eq!(app.stock(drill_ids[1]).await, stock);

    // The order after the clicked search keeps it.
    let after_search = app
        .post(
            "/api/pedidos",
            &app.admin,
            order(json!({"busqueda_id": drills["busqueda_id"]})),
        )
        .await
        .expect(201);
    assert_eq!(after_search["busqueda_id"], drills["busqueda_id"]);
    let search_revenue = cents(&after_search["total"]);

    // An order taken by the agent in a conversation, whose answer is then rated.
    fake.then(Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Luis Gómez", "email": "luis@correo.test",
               "items": [{"sku": "LIC-600", "cantidad": 1}]}),
    ))
    .then(Reply::say(
        "Listo, Luis: tu Licuadora Oster 600W [1] va en camino.",
    ));
    let answer = ask(
        &app,
        "Soy Luis Gómez, luis@correo.test: quiero la licuadora",
        None,
    )
    .await
    .expect(200);
    let agent_order = app
        .get(
            &format!("/api/pedidos/{}", answer["pedido_id"].as_i64().unwrap()),
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(agent_order["conversacion_id"], answer["chat_id"]);
    let chat_revenue = cents(&agent_order["total"]);
    app.call(
        Method::POST,
        "/api/eventos",
        None,
        Some(
            json!({"tipo": "valoracion", "respuesta_id": answer["respuesta_id"],
                    "util": false, "comentario": "No encontré el color"}),
        ),
    )
    .await
    .expect(202);

    // Everything counted: the range's total.
    let serie = once(&app, "/api/analitica/serie", |s| {
        s["total"]["pedidos"] == 2
            && s["total"]["busquedas"] == 4
            && s["total"]["clics"] == 1
            && s["total"]["valoraciones_no_utiles"] == 1
    })
    .await;
    let total = &serie["total"];
    assert_eq!(serie["por"], "dia");
    assert_eq!(serie["puntos"].as_array().unwrap().len(), 30);
    assert_eq!(serie["hasta"], today());
    let expected = [
        ("busquedas", json!(4)),
        ("sin_resultados", json!(1)),
        ("busquedas_con_clic", json!(1)),
        ("clics", json!(1)),
        ("ctr", json!(0.3333)),
        ("posicion_media_clic", json!(2.0)),
        ("respuestas", json!(1)),
        ("conversaciones", json!(1)),
        ("pedidos", json!(2)),
        ("pedidos_busqueda", json!(1)),
        ("pedidos_conversacion", json!(1)),
        ("valoraciones_utiles", json!(0)),
        ("valoraciones_no_utiles", json!(1)),
        ("tasa_util", json!(0.0)),
        ("conversion_busquedas", json!(0.25)),
        ("conversion_conversaciones", json!(1.0)),
    ];
    for (field, value) in expected {
        assert_eq!(total[field], value, "{field}: {total}");
    }
    assert_eq!(cents(&total["ingresos_busqueda"]), search_revenue);
    assert_eq!(cents(&total["ingresos_conversacion"]), chat_revenue);
    assert_eq!(cents(&total["ingresos"]), search_revenue + chat_revenue);
    // Today's point holds it all; by week, the point is this week's Monday.
    let last = serie["puntos"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["periodo"], today());
    assert_eq!(last["busquedas"], 4);
    let weeks = app
        .get(
            &format!("/api/analitica/serie?desde={}&por=semana", today()),
            &app.admin,
        )
        .await
        .expect(200);
    let now = chrono::Utc::now().date_naive();
    let monday = now
        - chrono::Days::new(u64::from(
            chrono::Datelike::weekday(&now).num_days_from_monday(),
        ));
    assert_eq!(weeks["puntos"].as_array().unwrap().len(), 1, "{weeks}");
    assert_eq!(weeks["puntos"][0]["periodo"], monday.to_string());
    assert_eq!(weeks["puntos"][0]["pedidos"], 2);
    // A range before any of it is empty.
    let before = app
        .get(
            "/api/analitica/serie?desde=2026-01-01&hasta=2026-01-31",
            &app.admin,
        )
        .await
        .expect(200);
    assert_eq!(before["total"]["busquedas"], 0);
    assert_eq!(before["total"]["ctr"], Value::Null);

    // Queries: the popular ones, those without results, those without clicks.
    let list = |orden: &str| {
        let path = format!("/api/analitica/consultas?orden={orden}");
        let app = &app;
        async move {
            let answer = app.get(&path, &app.admin).await.expect(200);
            answer["consultas"].as_array().unwrap().clone()
        }
    };
    let popular = list("populares").await;
    let names: Vec<&str> = popular
        .iter()
        .map(|c| c["consulta"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["taladro", "licuadora", "manguera"]);
    let drill = &popular[0];
    assert_eq!(
        (
            &drill["busquedas"],
            &drill["busquedas_con_clic"],
            &drill["clics"]
        ),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(drill["ctr"], 0.5);
    assert_eq!(drill["posicion_media_clic"], 2.0);
    assert_eq!(drill["pedidos"], 1);
    assert_eq!(cents(&drill["ingresos"]), search_revenue);
    let missing = list("sin_resultados").await;
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (&missing[0]["consulta"], &missing[0]["sin_resultados"]),
        (&json!("manguera"), &json!(1))
    );
    let unclicked = list("sin_clics").await;
    assert_eq!(unclicked.len(), 1);
    assert_eq!(unclicked[0]["consulta"], "licuadora");

    // Products: the clicked one, and what sold.
    let clicked = app
        .get("/api/analitica/productos", &app.admin)
        .await
        .expect(200);
    let clicked = clicked["productos"].as_array().unwrap();
    assert_eq!(clicked.len(), 1, "{clicked:?}");
    assert_eq!(clicked[0]["producto_id"], drill_ids[1]);
    assert_eq!(clicked[0]["clics"], 1);
    assert_eq!(clicked[0]["posicion_media_clic"], 2.0);
    assert!(
        clicked[0]["impresiones"].as_i64().unwrap() >= 2,
        "{clicked:?}"
    );
    assert!(clicked[0]["sku"].is_string() && clicked[0]["nombre"].is_string());
    let sold = app
        .get("/api/analitica/productos?orden=unidades", &app.admin)
        .await
        .expect(200);
    let units: Vec<(i64, i64)> = sold["productos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["producto_id"].as_i64().unwrap(),
                p["unidades"].as_i64().unwrap(),
            )
        })
        .collect();
    let blender = app.product_id("LIC-600").await;
    assert_eq!(units, [(drill_ids[1], 2), (blender, 1)]);

    // Ratings, with the comment.
    let ratings = app
        .get("/api/analitica/valoraciones", &app.admin)
        .await
        .expect(200);
    assert_eq!(
        (&ratings["utiles"], &ratings["no_utiles"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(
        ratings["comentarios"][0]["comentario"],
        "No encontré el color"
    );
    assert_eq!(ratings["comentarios"][0]["chat_id"], answer["chat_id"]);

    // The order events say where each order came from.
    let orders = app.events("pedido", 2).await;
    let channels: Vec<(&str, bool, bool)> = orders
        .iter()
        .map(|e| {
            (
                e.datos["canal"].as_str().unwrap(),
                e.datos["busqueda_id"].is_string(),
                e.datos["chat_id"].is_string(),
            )
        })
        .collect();
    assert_eq!(channels, [("rest", true, false), ("agente", false, true)]);

    // Staff only; a vendedor may read; bad filters name their field.
    let vendedor = app.vendedor().await;
    app.get("/api/analitica/consultas", &vendedor)
        .await
        .expect(200);
    app.call(Method::GET, "/api/analitica/serie", None, None)
        .await
        .expect_error(401, "unauthorized");
    for (path, field) in [
        (
            "/api/analitica/serie?desde=2026-12-08&hasta=2026-12-01",
            "desde",
        ),
        ("/api/analitica/serie?hasta=7-12-2026", "hasta"),
        ("/api/analitica/serie?por=mes", "por"),
        (
            "/api/analitica/serie?desde=2020-01-01&hasta=2026-01-01",
            "desde",
        ),
        ("/api/analitica/consultas?orden=raras", "orden"),
        ("/api/analitica/productos?limite=0", "limite"),
        ("/api/analitica/valoraciones?limite=101", "limite"),
    ] {
        let refused = app.get(path, &app.admin).await;
        refused.expect_error(400, "validation_failed");
        assert_eq!(refused.body["error"]["field"], field, "{path}");
    }
    let unknown = app.get("/api/analitica/serie?mes=12", &app.admin).await;
    assert_eq!(unknown.status.as_u16(), 400, "{}", unknown.text);
}

async fn staff_sockets_see_each_new_order_and_customers_do_not(backend: Backend) {
    let Some((app, fake)) = with_fake(backend, |_| {}).await else {
        return;
    };
    let base = app.url("");
    let base = base.trim_end_matches('/');
    let mut staff = SocketClient::connect(base, Some(&app.admin)).await;
    let mut customer = SocketClient::connect(base, None).await;

    // An order over REST reaches the staff socket as the API shows it.
    let cliente = app.new_cliente("Ana Pérez", "ana@correo.test").await["id"].clone();
    let drill = app.product_id("TAL-650").await;
    let created = app
        .post(
            "/api/pedidos",
            &app.admin,
            json!({"cliente_id": cliente, "items": [{"producto_id": drill, "cantidad": 1}]}),
        )
        .await
        .expect(201);
    let (event, data) = staff.next_event().await;
    assert_eq!(event, "pedido_nuevo");
    assert_eq!(data, created);

    // An order the agent takes over Socket.IO reaches it too, with its conversation.
    fake.then(Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Luis Gómez", "email": "luis@correo.test",
               "items": [{"sku": "LIC-600", "cantidad": 1}]}),
    ))
    .then(Reply::say(
        "Listo, Luis: tu Licuadora Oster 600W [1] va en camino.",
    ));
    customer
        .ask(
            "Soy Luis Gómez, luis@correo.test: quiero la licuadora",
            None,
        )
        .await;
    let answered = customer.until_end().await;
    assert_eq!(answered.last_event, "response", "{:?}", answered.last);
    let (event, data) = staff.next_event().await;
    assert_eq!(event, "pedido_nuevo");
    assert_eq!(data["id"], answered.last["pedido_id"]);
    assert_eq!(data["conversacion_id"], answered.last["chat_id"]);

    // The customer's socket saw its answer and nothing of the orders: the next thing
    // it sees is the reply to what it asks now.
    customer
        .emit("history", json!({"chat_id": answered.last["chat_id"]}))
        .await;
    let (event, _) = customer.next_event().await;
    assert_eq!(event, "history");
}
