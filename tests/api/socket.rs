//! The sales agent over Socket.IO, with the official socket.io-client v4 (Node):
//! handshake with and without a token, streamed answers, isolation between
//! clients, events sent the moment a client connects, cancel and disconnect
//! reaching upstream, per-socket rate limits, and the shutdown (answers finish,
//! new questions are refused, connections close).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;

use crate::agent::with_fake;
use crate::fake_ollama::{Reply, Step};
use crate::helpers::Backend;
use crate::socket_client::SocketClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_connects_with_a_token_asks_and_receives_the_stream() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say("La Licuadora Oster 600W [1] cuesta $249.900."));
    let base = app.url("");
    let mut client = SocketClient::connect(&base, Some(&app.admin)).await;
    client.ask("quiero una licuadora", None).await;
    let streamed = client.until_end().await;
    assert_eq!(streamed.last_event, "response", "{:?}", streamed.last);
    let last = &streamed.last;
    assert_eq!(last["complete"], true);
    assert_eq!(streamed.chunks.concat(), last["response"].as_str().unwrap());
    assert_eq!(streamed.chunks.len(), 7);
    assert_eq!(last["sources"][0]["sku"], "LIC-600");
    assert_eq!(last["generator"], "ollama");

    // The conversation is recorded as a socket one, by the signed-in user.
    let chat_id = last["chat_id"].as_str().unwrap();
    let conversation = app.conversation(chat_id).await;
    assert_eq!(conversation["canal"], "socket");
    assert!(conversation["usuario_id"].is_i64());

    // Continuing the conversation by its id.
    fake.then(Reply::say("Sí, tiene cinco velocidades."));
    client
        .ask("¿y cuántas velocidades tiene?", Some(chat_id))
        .await;
    let again = client.until_end().await;
    assert_eq!(again.last["chat_id"], chat_id);
    assert_eq!(fake.requests()[1]["messages"].as_array().unwrap().len(), 4);
}

/// The chat page asks for its conversation's `history` the moment it is connected
/// (after a reload or a reconnect): an event sent that early is heard on every
/// socket, however many connect at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_emitted_the_moment_clients_connect_are_all_answered() {
    let (app, _fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    let mut client = SocketClient::connect(&app.url(""), None).await;
    let chat_id = uuid::Uuid::new_v4().to_string();
    for _ in 0..3 {
        let answered = client
            .burst(100, "history", json!({"chat_id": chat_id}), "history")
            .await;
        assert_eq!(answered, 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_customers_connect_and_bad_tokens_are_refused() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    let base = app.url("");
    let (_, refused) = SocketClient::start(&base, Some("not-a-token")).await;
    assert_eq!(refused["type"], "connect_error", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("token"));

    fake.then(Reply::say("Hola."));
    let mut anonymous = SocketClient::connect(&base, None).await;
    anonymous.ask("hola", None).await;
    let streamed = anonymous.until_end().await;
    assert_eq!(streamed.last["response"], "Hola.");

    // Bad payloads get an error event, and the socket stays usable.
    anonymous
        .emit("query_text", json!({"pregunta": "hola"}))
        .await;
    let (event, error) = anonymous.next_event().await;
    assert_eq!(event, "error");
    assert_eq!(error["code"], "invalid_body");
    anonymous.emit("query_text", json!({"query": ""})).await;
    let (event, error) = anonymous.next_event().await;
    assert_eq!(event, "error");
    assert_eq!(error["code"], "validation_failed");
    assert_eq!(error["field"], "query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_streaming_at_once_never_receive_each_others_pieces() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.always(Reply::Echo {
        delay: Duration::from_millis(15),
    });
    let base = app.url("");
    let mut ana = SocketClient::connect(&base, None).await;
    let mut luis = SocketClient::connect(&base, None).await;
    let ana_question = "alfa alfa alfa alfa alfa alfa alfa alfa";
    let luis_question = "beta beta beta beta beta beta beta beta";
    ana.ask(ana_question, None).await;
    luis.ask(luis_question, None).await;
    let (ana_seen, luis_seen) = tokio::join!(ana.until_end(), luis.until_end());
    // Both streams overlapped in time: each took several pieces, interleaved upstream.
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(
        ana_seen.chunks.concat(),
        format!("Respuesta a: {ana_question}")
    );
    assert_eq!(
        luis_seen.chunks.concat(),
        format!("Respuesta a: {luis_question}")
    );
    assert!(ana_seen.chunks.iter().all(|c| !c.contains("beta")));
    assert!(luis_seen.chunks.iter().all(|c| !c.contains("alfa")));
    assert_ne!(ana_seen.last["chat_id"], luis_seen.last["chat_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_disconnect_stop_the_upstream_request() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.always(Reply::Echo {
        delay: Duration::from_millis(100),
    });
    let base = app.url("");

    let mut client = SocketClient::connect(&base, None).await;
    client
        .ask(
            "una pregunta con muchas palabras para que la respuesta sea larga",
            None,
        )
        .await;
    let (event, first) = client.next_event().await;
    assert_eq!(event, "response");
    let chat_id = first["chat_id"].as_str().unwrap().to_owned();
    client.emit("cancel", json!({"chat_id": chat_id})).await;
    let streamed = client.until_end().await;
    assert_eq!(streamed.last_event, "error");
    assert_eq!(streamed.last["code"], "cancelled");
    fake.wait_abandoned(1).await;
    let conversation = app.conversation(&chat_id).await;
    assert_eq!(conversation["mensajes"][1]["estado"], "cancelado");

    let mut leaving = SocketClient::connect(&base, None).await;
    leaving
        .ask(
            "otra pregunta con muchas palabras para una respuesta larga",
            None,
        )
        .await;
    let (event, _) = leaving.next_event().await;
    assert_eq!(event, "response");
    leaving.disconnect().await;
    fake.wait_abandoned(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_socket_has_its_own_question_budget() {
    let (app, fake) = with_fake(Backend::Sqlite, |s| {
        s.limits.chat_rate_limit_per_minute = 1;
        s.limits.chat_rate_limit_burst = 2;
    })
    .await
    .unwrap();
    fake.always(Reply::say("Hola."));
    let base = app.url("");
    let mut client = SocketClient::connect(&base, None).await;
    for _ in 0..2 {
        client.ask("hola", None).await;
        assert_eq!(client.until_end().await.last_event, "response");
    }
    client.ask("hola", None).await;
    let (event, error) = client.next_event().await;
    assert_eq!(event, "error");
    assert_eq!(error["code"], "rate_limited");
    // Another socket has its own budget.
    let mut other = SocketClient::connect(&base, None).await;
    other.ask("hola", None).await;
    assert_eq!(other.until_end().await.last_event, "response");
    // Ollama failing mid-stream reaches a socket client as an error with the partial answer.
    fake.then(Reply::steps(vec![
        Step::Text("Parte ".to_owned()),
        Step::Error("boom".to_owned()),
    ]));
    other.ask("hola de nuevo", None).await;
    let streamed = other.until_end().await;
    assert_eq!(streamed.last_event, "error");
    assert_eq!(streamed.last["code"], "generator_unavailable");
    assert_eq!(streamed.last["parcial"], "Parte ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_answers_finish_refuses_new_questions_and_closes_the_connections() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    let gate = Arc::new(Notify::new());
    fake.then(Reply::steps(vec![
        Step::Text("Un momento, ".to_owned()),
        Step::Gate(gate.clone()),
        Step::Text("ya está.".to_owned()),
    ]));
    let base = app.url("");
    let mut asking = SocketClient::connect(&base, None).await;
    let mut other = SocketClient::connect(&base, None).await;
    asking.ask("quiero una licuadora", None).await;
    let (event, first) = asking.next_event().await;
    assert_eq!(event, "response", "{first}");
    assert_eq!(first["chunk"], "Un momento, ");

    // Shut down while the answer is half-way; the listener closes at once.
    let addr = app.addr;
    let stopped = tokio::spawn(app.stop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the server kept listening");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A new question is refused in plain words; it never reaches the model.
    other.ask("¿tienen hornos?", None).await;
    let (event, refused) = other.next_event().await;
    assert_eq!(event, "error", "{refused}");
    assert_eq!(refused["code"], "shutting_down");
    assert!(
        refused["message"].as_str().unwrap().contains("reiniciando"),
        "{refused}"
    );

    // The answer in flight still completes...
    gate.notify_one();
    let rest = asking.until_end().await;
    assert_eq!(rest.last_event, "response", "{:?}", rest.last);
    assert_eq!(rest.last["complete"], true);
    assert_eq!(rest.last["response"], "Un momento, ya está.");

    // ...and then every connection closes at the transport, which a client
    // answers by reconnecting (a server disconnect would stop it from trying).
    for client in [&mut asking, &mut other] {
        let seen = client.next().await;
        assert_eq!(seen["type"], "disconnect", "{seen}");
        assert_eq!(seen["reason"], "transport close", "{seen}");
    }
    stopped.await.unwrap().expect("the server stopped cleanly");
    assert_eq!(fake.requests().len(), 1);
}
