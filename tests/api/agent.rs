//! The sales agent over REST and SSE, against the fake Ollama: streaming, sources,
//! the price guard, memory and tool calls that take orders (failures and limits are
//! in `agent_failures`).

use reqwest::Method;
use serde_json::{Value, json};
use tendero::config::Settings;

use crate::fake_ollama::{FakeOllama, Reply, Step};
use crate::helpers::{Backend, Reply as HttpReply, TestApp, spawn_app_with};
use crate::on_every_backend;

/// A small catalog: two drills and a blender.
pub async fn stock_shop(app: &TestApp) -> Vec<Value> {
    let products = [
        (
            "TAL-650",
            "Taladro Percutor 650W",
            "Taladro percutor con cable de 650 W y mandril de 13 mm.",
            "herramientas",
            "189900",
            12,
        ),
        (
            "TAL-20V",
            "Taladro Inalámbrico 20V Azul",
            "Taladro atornillador inalámbrico de 20 V, color azul, con dos baterías.",
            "herramientas",
            "329900",
            5,
        ),
        (
            "LIC-600",
            "Licuadora Oster 600W",
            "Licuadora con vaso de vidrio de 1,5 litros y cinco velocidades.",
            "cocina",
            "249900",
            8,
        ),
    ];
    let mut created = Vec::new();
    for (sku, nombre, descripcion, categoria, precio, stock) in products {
        created.push(
            app.post(
                "/api/productos",
                &app.admin,
                json!({"sku": sku, "nombre": nombre, "descripcion": descripcion,
                       "categoria": categoria, "precio": precio, "stock": stock}),
            )
            .await
            .expect(201),
        );
    }
    created
}

/// An app whose generator is the fake Ollama.
pub async fn with_fake(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
) -> Option<(TestApp, FakeOllama)> {
    let fake = FakeOllama::start().await;
    let url = fake.url.clone();
    let app = spawn_app_with(backend, move |s| {
        s.ollama.ollama_url = url;
        s.ollama.ollama_model = "fake-chat".to_owned();
        tweak(s);
    })
    .await?;
    stock_shop(&app).await;
    Some((app, fake))
}

/// `POST /api/query/text`, JSON.
pub async fn ask(app: &TestApp, query: &str, chat_id: Option<&str>) -> HttpReply {
    let mut body = json!({"query": query});
    if let Some(chat_id) = chat_id {
        body["chat_id"] = json!(chat_id);
    }
    app.call(Method::POST, "/api/query/text", None, Some(body))
        .await
}

/// `POST /api/query/text` as SSE: the events `(name, data)` in order.
pub async fn ask_streaming(
    app: &TestApp,
    query: &str,
) -> (reqwest::header::HeaderMap, Vec<(String, Value)>) {
    let response = app
        .client
        .post(app.url("/api/query/text"))
        .header("accept", "text/event-stream")
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (headers, sse_events(&text))
}

/// Parses an SSE body into its named events (comments skipped).
pub fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).expect("JSON data")))
        })
        .collect()
}

fn system_prompt(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_pieces_arrive_in_order_and_join_into_the_final_answer() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say(
        "Sí: el Taladro Percutor 650W [1] cuesta $189.900 y quedan 12.",
    ));
    let (headers, events) = ask_streaming(&app, "¿Tienen taladro percutor?").await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["cache-control"], "no-cache");

    let (last_name, last) = events.last().unwrap().clone();
    assert_eq!(last_name, "response");
    assert_eq!(last["complete"], true);
    let chunks: Vec<&str> = events[..events.len() - 1]
        .iter()
        .map(|(name, data)| {
            assert_eq!(name, "response");
            assert_eq!(data["complete"], false);
            assert_eq!(data["chat_id"], last["chat_id"]);
            data["chunk"].as_str().unwrap()
        })
        .collect();
    assert_eq!(chunks.len(), 11, "one event per piece the model sent");
    assert_eq!(chunks.concat(), last["response"].as_str().unwrap());
    assert_eq!(
        last["response"],
        "Sí: el Taladro Percutor 650W [1] cuesta $189.900 y quedan 12."
    );
    assert_eq!(last["generator"], "ollama");
    assert_eq!(last["price_check"]["ok"], true);
    assert_eq!(last["price_check"]["checked"], 1);
    let sources = last["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{last}");
    assert_eq!(sources[0]["sku"], "TAL-650");
    assert_eq!(sources[0]["precio"], "189900.00");
    assert_eq!(sources[0]["n"], 1);
    let timings = &last["timings"];
    assert!(timings["first_token_ms"].as_f64().unwrap() > 0.0);
    // Embedding and searching are parts of retrieval, which precedes the first piece.
    let part = |name: &str| timings[name].as_f64().unwrap();
    assert!(
        part("embed_ms") > 0.0 && part("search_ms") > 0.0,
        "{timings}"
    );
    assert!(
        part("embed_ms") + part("search_ms") <= part("retrieval_ms"),
        "{timings}"
    );
    assert!(part("retrieval_ms") <= part("first_token_ms"), "{timings}");

    // The model was given the live price and stock, numbered, and the rules.
    let request = &fake.requests()[0];
    assert_eq!(request["model"], "fake-chat");
    assert_eq!(request["stream"], true);
    let system = system_prompt(request);
    assert!(
        system.contains("[1] Producto: Taladro Percutor 650W | SKU TAL-650 | Categoría: herramientas | Precio: $189.900 COP | Existencias: 12"),
        "{system}"
    );
    assert!(system.contains("Nunca inventes"), "{system}");
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "buscar_productos",
            "consultar_stock",
            "recomendar",
            "crear_pedido"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answer_is_stored_and_staff_can_read_the_conversation() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say("La Licuadora Oster 600W [1] vale $249.900."));
    let answer = ask(&app, "quiero una licuadora", None).await.expect(200);
    let chat_id = answer["chat_id"].as_str().unwrap();
    assert_eq!(
        answer["response"],
        "La Licuadora Oster 600W [1] vale $249.900."
    );
    assert_eq!(answer["sources"][0]["sku"], "LIC-600");
    assert!(answer["pedido_id"].is_null());

    // Anonymous customers cannot read conversations; staff can.
    app.call(
        Method::GET,
        &format!("/api/conversaciones/{chat_id}"),
        None,
        None,
    )
    .await
    .expect_error(401, "unauthorized");
    let conversation = app.conversation(chat_id).await;
    assert_eq!(conversation["canal"], "rest");
    let messages = conversation["mensajes"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["rol"], "usuario");
    assert_eq!(messages[0]["contenido"], "quiero una licuadora");
    assert_eq!(messages[1]["rol"], "asistente");
    assert_eq!(messages[1]["estado"], "completo");
    assert_eq!(messages[1]["generador"], "ollama");
    assert_eq!(messages[1]["price_check"]["ok"], true);
    assert_eq!(messages[1]["fuentes"][0]["sku"], "LIC-600");
    let list = app.get("/api/conversaciones", &app.admin).await.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], chat_id);
    app.get("/api/conversaciones/no-existe", &app.admin)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_price_guard_corrects_a_wrong_price() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say(
        "El Taladro Percutor 650W [1] está en oferta por $150.000.",
    ));
    let (_, events) = ask_streaming(&app, "precio del taladro percutor").await;
    let (_, last) = events.last().unwrap();
    let response = last["response"].as_str().unwrap();
    assert!(response.starts_with("El Taladro Percutor 650W [1] está en oferta por $150.000."));
    assert!(
        response.contains("Taladro Percutor 650W: el precio vigente es $189.900 (no $150.000)"),
        "{response}"
    );
    // The correction reached the customer as a piece of the stream, too.
    let streamed: String = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| d["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, response);
    let check = &last["price_check"];
    assert_eq!(check["ok"], false);
    assert_eq!(check["mismatches"][0]["sku"], "TAL-650");
    assert_eq!(check["mismatches"][0]["mencionado"], "$150.000");
    assert_eq!(check["mismatches"][0]["precio_actual"], "$189.900");

    let chat_id = last["chat_id"].as_str().unwrap();
    let stored = app.conversation(chat_id).await;
    assert_eq!(stored["mensajes"][1]["price_check"]["ok"], false);
    assert_eq!(stored["mensajes"][1]["contenido"], response);
}

/// A price doubled without saying so is no longer taken for two units, and an
/// answer cut short by the model is checked and corrected too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doubled_prices_and_wrong_prices_in_cut_answers_are_corrected() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say("El Taladro Percutor 650W [1] cuesta $379.800."));
    let answer = ask(&app, "precio del taladro percutor", None)
        .await
        .expect(200);
    assert_eq!(answer["price_check"]["ok"], false, "{answer}");
    assert_eq!(
        answer["price_check"]["mismatches"][0]["mencionado"],
        "$379.800"
    );
    fake.then(Reply::say(
        "Dos Taladro Percutor 650W [1] te salen en $379.800.",
    ));
    let answer = ask(&app, "precio del taladro percutor", None)
        .await
        .expect(200);
    assert_eq!(answer["price_check"]["ok"], true, "{answer}");

    fake.then(Reply::steps(vec![
        Step::Text("El Taladro Percutor 650W [1] cuesta $150.000. ".to_owned()),
        Step::Error("out of memory".to_owned()),
    ]));
    let (_, events) = ask_streaming(&app, "precio del taladro percutor").await;
    let error = match events.last() {
        Some((name, data)) if name == "error" => data,
        other => panic!("the answer did not end in an error: {other:?}"),
    };
    assert_eq!(error["code"], "generator_unavailable");
    let partial = error["parcial"].as_str().unwrap();
    assert!(
        partial.contains("Taladro Percutor 650W: el precio vigente es $189.900 (no $150.000)"),
        "{partial}"
    );
    let chat_id = error["chat_id"].as_str().unwrap();
    let stored = app.conversation(chat_id).await;
    assert_eq!(stored["mensajes"][1]["estado"], "parcial");
    assert_eq!(stored["mensajes"][1]["price_check"]["ok"], false);
}

/// Order 1 is stated even when the answer cites source [1]: the number has to be
/// said as the order's number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_one_is_stated_beside_a_citation_one() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Ana Pérez", "email": "ana@correo.test",
               "items": [{"sku": "TAL-20V", "cantidad": 1}]}),
    ))
    .then(Reply::say(
        "Listo, Ana: tu Taladro Inalámbrico 20V Azul [1] va en camino.",
    ));
    let answer = ask(
        &app,
        "Soy Ana Pérez, ana@correo.test: quiero el taladro azul",
        None,
    )
    .await
    .expect(200);
    assert_eq!(answer["pedido_id"], 1, "{answer}");
    let response = answer["response"].as_str().unwrap();
    assert!(
        response.contains("Tu pedido número 1 quedó registrado"),
        "the reply states the order number: {response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_uses_the_conversation_even_after_a_restart() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say("Tenemos el Taladro Percutor 650W [1]."));
    let first = ask(&app, "¿Tienen taladros inalámbricos?", None)
        .await
        .expect(200);
    let chat_id = first["chat_id"].as_str().unwrap().to_owned();

    let app = app.restart().await;
    fake.then(Reply::say("Sí, el Taladro Inalámbrico 20V Azul [2]."));
    let second = ask(&app, "¿y en azul?", Some(&chat_id)).await.expect(200);
    assert_eq!(second["chat_id"], chat_id.as_str());

    let request = &fake.requests()[1];
    let messages = request["messages"].as_array().unwrap();
    let turns: Vec<(&str, &str)> = messages[1..]
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [
            ("user", "¿Tienen taladros inalámbricos?"),
            ("assistant", "Tenemos el Taladro Percutor 650W [1]."),
            ("user", "¿y en azul?"),
        ]
    );
    // "¿y en azul?" alone names no product: retrieval used the earlier question too.
    let system = system_prompt(request);
    assert!(system.contains("Taladro Inalámbrico 20V Azul"), "{system}");
    let stored = app.conversation(&chat_id).await;
    assert_eq!(stored["mensajes"].as_array().unwrap().len(), 4);
}

async fn tool_calls_create_exactly_one_order(backend: Backend) {
    let Some((app, fake)) = with_fake(backend, |_| {}).await else {
        return;
    };
    fake.then(Reply::tool_call(
        "consultar_stock",
        json!({"sku": "TAL-20V"}),
    ))
    .then(Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Ana Pérez", "email": "Ana@Correo.test",
                   "items": [{"sku": "TAL-20V", "cantidad": 2}],
                   "direccion_envio": "Calle 10 # 20-30, Bogotá"}),
    ))
    // A confused model asks for the same order twice: only one is created.
    .then(Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Ana Pérez", "email": "ana@correo.test",
                   "items": [{"sku": "TAL-20V", "cantidad": 2}]}),
    ))
    .then(Reply::say(
        "Listo, Ana: tu pedido quedó registrado por $659.800.",
    ));
    let answer = ask(
        &app,
        "Soy Ana Pérez, ana@correo.test: quiero 2 taladros inalámbricos azules",
        None,
    )
    .await
    .expect(200);
    let pedido_id = answer["pedido_id"].as_i64().expect("an order was taken");
    let response = answer["response"].as_str().unwrap();
    assert!(
        response.contains(&format!("Tu pedido número {pedido_id} quedó registrado")),
        "the reply states the order number: {response}"
    );
    assert_eq!(answer["price_check"]["ok"], true, "{answer}");

    let orders = app.get("/api/pedidos", &app.admin).await.expect(200);
    assert_eq!(orders["total"], 1);
    let order = &orders["items"][0];
    assert_eq!(order["id"], pedido_id);
    assert_eq!(order["estado"], "pendiente");
    assert_eq!(order["total"], "659800.00");
    assert_eq!(order["conversacion_id"], answer["chat_id"]);
    assert_eq!(order["direccion_envio"], "Calle 10 # 20-30, Bogotá");
    let producto_id = order["items"][0]["producto_id"].as_i64().unwrap();
    assert_eq!(app.stock(producto_id).await, 3);
    let clientes = app.get("/api/clientes?q=ana", &app.admin).await.expect(200);
    assert_eq!(clientes["total"], 1);
    assert_eq!(clientes["items"][0]["email"], "ana@correo.test");

    // The model read each tool's result before going on.
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let tool_result = |i: usize| -> Value {
        let last = requests[i]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["role"], "tool");
        serde_json::from_str(last["content"].as_str().unwrap()).unwrap()
    };
    assert_eq!(tool_result(1)["existencias"], 5);
    assert_eq!(tool_result(1)["precio"], "$329.900");
    assert_eq!(tool_result(2)["pedido"], pedido_id);
    assert!(
        tool_result(3)["error"]
            .as_str()
            .unwrap()
            .contains("ya se creó el pedido")
    );

    let chat_id = answer["chat_id"].as_str().unwrap();
    let conversation = app.conversation(chat_id).await;
    assert_eq!(conversation["pedidos"], json!([pedido_id]));
    assert_eq!(conversation["cliente_id"], clientes["items"][0]["id"]);
}

async fn an_order_beyond_stock_is_refused_to_the_model(backend: Backend) {
    let Some((app, fake)) = with_fake(backend, |_| {}).await else {
        return;
    };
    fake.then(Reply::tool_call(
        "crear_pedido",
        json!({"nombre": "Luis", "email": "luis@correo.test",
               "items": [{"sku": "TAL-20V", "cantidad": 50}]}),
    ))
    .then(Reply::say("Lo siento, no hay suficientes unidades."));
    let answer = ask(&app, "quiero 50 taladros inalámbricos", None)
        .await
        .expect(200);
    assert!(answer["pedido_id"].is_null());
    let refusal = fake.requests()[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refusal.contains("stock insuficiente"), "{refusal}");
    assert_eq!(app.total("/api/pedidos").await, 0);
}

on_every_backend!(
    tool_calls_create_exactly_one_order,
    an_order_beyond_stock_is_refused_to_the_model
);
