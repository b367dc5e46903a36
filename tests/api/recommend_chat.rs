//! Recommendations in the chat: the agent's answers with cards and their reasons (the
//! extractive generator and the `recomendar` tool through the fake Ollama), and clicks
//! (over Socket.IO and REST) that change what the conversation and its customer are
//! offered.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_every_backend;
use crate::recommend::{motivo, shop, train};

on_every_backend!(
    the_agent_recommends_in_the_chat,
    a_click_in_the_chat_shapes_what_is_recommended,
    a_customers_clicks_where_they_ordered_shape_their_own_list
);

/// `POST /api/query/text` (JSON): the answer.
async fn ask(app: &TestApp, query: &str) -> Value {
    app.call(
        Method::POST,
        "/api/query/text",
        None,
        Some(json!({"query": query})),
    )
    .await
    .expect(200)
}

/// The place of product `id` among an answer's sources (from 1).
fn place(answer: &Value, id: i64) -> usize {
    answer["sources"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s["tipo"] == "producto" && s["id"] == id)
        .unwrap_or_else(|| panic!("product {id} not shown: {answer}"))
        + 1
}

fn recommended(answer: &Value) -> Vec<(i64, String, f64)> {
    answer["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["motivo"].is_null())
        .map(|s| {
            (
                s["id"].as_i64().unwrap(),
                s["motivo"].as_str().unwrap().to_owned(),
                s["precio"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// With the extractive generator (no Ollama here): a question that asks what goes
/// with a product is answered with it; an answer about a product brings what goes
/// with it; "parecido pero más barato" stays under the product's price.
async fn the_agent_recommends_in_the_chat(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = shop(&app).await;
    train(&app).await;

    let answer = ask(&app, "¿Qué va bien con el taladro percutor?").await;
    let text = answer["response"].as_str().unwrap();
    assert!(text.contains("Brocas para concreto"), "{text}");
    assert!(text.contains("30.000"), "the live price: {text}");
    assert_eq!(answer["price_check"]["ok"], true, "{answer}");
    let found = recommended(&answer);
    assert_eq!(
        found.first().map(|f| (f.0, f.1.as_str())),
        Some((s.brocas, "comprados_juntos")),
        "{answer}"
    );

    let answer = ask(&app, "¿Tienen taladro percutor?").await;
    let text = answer["response"].as_str().unwrap();
    assert!(text.contains("Taladro percutor"), "{text}");
    let found = recommended(&answer);
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![s.brocas],
        "{answer}"
    );

    let answer = ask(
        &app,
        "¿Hay algo parecido al martillo de uña pero más barato?",
    )
    .await;
    let found = recommended(&answer);
    assert!(!found.is_empty(), "{answer}");
    assert!(
        found.iter().all(|f| f.2 < 45_000.0 && f.0 != s.martillo),
        "{answer}"
    );
}

/// Over Socket.IO, with the extractive generator: "¿qué me recomiendas?" in a chat
/// where the hammer was clicked gets the nails (what its buyers bought), not the
/// hammer again; the same question in a fresh chat gets the popular products.
async fn a_click_in_the_chat_shapes_what_is_recommended(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = shop(&app).await;
    train(&app).await;
    let mut client = crate::socket_client::SocketClient::connect(&app.url(""), None).await;
    client.ask("¿Tienen martillo de uña?", None).await;
    let shown = client.until_end().await.last;
    let chat_id = shown["chat_id"].as_str().unwrap().to_owned();
    client
        .emit(
            "product_click",
            json!({"respuesta_id": shown["respuesta_id"], "producto_id": s.martillo,
                   "posicion": place(&shown, s.martillo)}),
        )
        .await;
    // The event log writes the click in the background.
    let click = app.events("click_producto", 1).await.remove(0);
    assert_eq!(click.chat_id.as_deref(), Some(chat_id.as_str()));
    assert_eq!(click.producto_id, Some(s.martillo));
    client.ask("¿Qué me recomiendas?", Some(&chat_id)).await;
    let answer = client.until_end().await.last;
    let found = recommended(&answer);
    let reasons: Vec<(i64, &str)> = found.iter().map(|f| (f.0, f.1.as_str())).collect();
    assert!(reasons.contains(&(s.clavos, "para_ti")), "{answer}");
    // The rest fills up with popular products; the hammer itself is not offered.
    assert!(
        reasons
            .iter()
            .all(|&(id, motivo)| id == s.clavos || motivo == "popular"),
        "{answer}"
    );
    assert!(found.iter().all(|f| f.0 != s.martillo), "{answer}");

    client.ask("¿Qué me recomiendas?", None).await;
    let fresh = client.until_end().await.last;
    let found = recommended(&fresh);
    assert!(!found.is_empty(), "{fresh}");
    assert!(
        found.iter().all(|f| f.1 == "popular"),
        "no click, no history: {fresh}"
    );
}

/// The model calls `recomendar` (the fake Ollama replays it): the products come back
/// with live prices, become sources with their reason, and the answer's amounts are
/// checked against them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_recommends_with_the_tool() {
    let (app, fake) = crate::agent::with_fake(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let s = shop(&app).await;
    train(&app).await;
    fake.then(crate::fake_ollama::Reply::tool_call(
        "recomendar",
        json!({"tipo": "complementos", "sku": "TAL-1"}),
    ))
    .then(crate::fake_ollama::Reply::say(
        "Con el taladro te sirven las Brocas para concreto por $30.000.",
    ));
    let answer = ask(
        &app,
        "Me llevo el taladro percutor TAL-1, ¿qué más me llevo?",
    )
    .await;
    assert_eq!(answer["price_check"]["ok"], true, "{answer}");
    let found = recommended(&answer);
    assert_eq!(
        found.first().map(|f| (f.0, f.1.as_str())),
        Some((s.brocas, "comprados_juntos")),
        "{answer}"
    );
    let requests = fake.requests();
    let tool_reply = requests.last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the tool's answer went back to the model")["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        tool_reply.contains("Brocas para concreto") && tool_reply.contains("comprados_juntos"),
        "{tool_reply}"
    );
    assert!(tool_reply.contains("30.000"), "{tool_reply}");
    // An unknown SKU is an answer the model can read, not a failure.
    fake.then(crate::fake_ollama::Reply::tool_call(
        "recomendar",
        json!({"tipo": "parecidos", "sku": "NO-EXISTE"}),
    ))
    .then(crate::fake_ollama::Reply::say("No encuentro ese producto."));
    let answer = ask(&app, "¿Tienen algo como el NO-EXISTE?").await;
    assert_eq!(answer["response"], "No encuentro ese producto.");
    let requests = fake.requests();
    let last = requests.last().unwrap().to_string();
    assert!(
        last.contains("no hay ningún producto con SKU NO-EXISTE"),
        "{last}"
    );
}

/// A customer's clicks in the conversation an order of theirs was taken in count for
/// their own list over REST, alone and in a batch, and for nobody else's.
async fn a_customers_clicks_where_they_ordered_shape_their_own_list(backend: Backend) {
    let Some((app, fake)) = crate::agent::with_fake(backend, |_| {}).await else {
        return;
    };
    let s = shop(&app).await;
    train(&app).await;
    // The customer who never ordered buys gloves (which nobody else bought) in a chat.
    fake.then(crate::fake_ollama::Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Cliente 11", "email": "c11@correo.co",
               "items": [{"sku": "GUA-1", "cantidad": 1}]}),
    ))
    .then(crate::fake_ollama::Reply::say(
        "Listo, tus guantes van en camino.",
    ));
    let answer = crate::agent::ask(&app, "Quiero unos guantes, soy c11@correo.co", None)
        .await
        .expect(200);
    assert!(answer["pedido_id"].is_i64(), "{answer}");
    let chat_id = answer["chat_id"].as_str().unwrap().to_owned();
    let path = format!(
        "/api/clientes/{}/recomendaciones?excluir_comprados=true&k=3",
        s.sin_pedidos
    );
    let before = app.get(&path, &app.admin).await.expect(200);
    assert!(
        before["recomendaciones"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["motivo"] == "popular"),
        "gloves bring nothing: {before}"
    );

    // In the same conversation the hammer is shown, and the app sends the click.
    fake.then(crate::fake_ollama::Reply::say(
        "Tenemos el Martillo de uña [1].",
    ));
    let shown = crate::agent::ask(&app, "¿Tienen martillo de uña?", Some(&chat_id))
        .await
        .expect(200);
    app.call(
        Method::POST,
        "/api/eventos",
        None,
        Some(
            json!({"tipo": "click", "respuesta_id": shown["respuesta_id"],
               "producto_id": s.martillo, "posicion": place(&shown, s.martillo)}),
        ),
    )
    .await
    .expect(202);
    // The event log writes the click in the background: the list is asked again
    // until it changes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let reply = app.get(&path, &app.admin).await.expect(200);
        if motivo(&reply, s.clavos) == "para_ti" {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the click never reached the list: {reply}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        after["recomendaciones"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["producto"]["id"] != s.guantes),
        "{after}"
    );

    // In a batch, the click counts for that customer alone.
    let batch = app
        .post(
            "/api/recomendaciones/lote",
            &app.admin,
            json!({"cliente_ids": [s.nuevo, s.sin_pedidos], "k": 3, "filtros": {"excluir_comprados": true}}),
        )
        .await
        .expect(200);
    let results = batch["resultados"].as_array().unwrap();
    assert_eq!(
        results[0]["recomendaciones"][0]["producto"]["id"], s.brocas,
        "{batch}"
    );
    assert_ne!(motivo(&results[0], s.clavos), "para_ti", "{batch}");
    assert_eq!(motivo(&results[1], s.clavos), "para_ti", "{batch}");
}
