//! The sales agent when things go wrong or are limited: Ollama down, failing or
//! stalling, the extractive generator, clients that leave, validation, the
//! generation cap and rate limits.

use std::time::Duration;

use serde_json::json;
use tendero::config::GeneratorChoice;

use crate::agent::{ask, ask_streaming, stock_shop, with_fake};
use crate::fake_ollama::{Reply, Step};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_down_answers_with_the_extractive_generator() {
    // test_settings point Ollama at a closed port.
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    stock_shop(&app).await;
    let ready = app.get("/ready", &app.admin).await.expect(200);
    assert_eq!(ready["components"]["generator"]["status"], "ok");
    assert!(
        ready["components"]["generator"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("extractive"),
        "{ready}"
    );
    let (_, events) = ask_streaming(&app, "¿Tienen taladro percutor?").await;
    assert!(events.len() > 3, "the extractive answer streams in pieces");
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response");
    assert_eq!(last["generator"], "extractive");
    let response = last["response"].as_str().unwrap();
    assert!(
        response.contains("Taladro Percutor 650W — $189.900 (12 disponibles) [1]. coincide con: taladro, percutor."),
        "{response}"
    );
    assert_eq!(last["price_check"]["ok"], true);
    assert_eq!(last["sources"][0]["sku"], "TAL-650");

    let nothing = ask(&app, "zzzz qqqq", None).await.expect(200);
    assert_eq!(nothing["generator"], "extractive");
}

/// The fake lists its models by name alone, as ollama-api.md allows: `/ready` says
/// Ollama serves, and asking it did not mark Ollama down for the next answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_takes_a_listing_of_model_names_as_ollama_up() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    let ready = app.get("/ready", &app.admin).await.expect(200);
    assert_eq!(ready["components"]["generator"]["status"], "ok");
    assert_eq!(
        ready["components"]["generator"]["detail"], "ollama (fake-chat)",
        "{ready}"
    );
    let answer = ask(&app, "licuadora de vidrio", None).await.expect(200);
    assert_eq!(answer["generator"], "ollama");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractive_generator_can_be_chosen() {
    let (app, fake) = with_fake(Backend::Sqlite, |s| {
        s.agent.generator = GeneratorChoice::Extractive;
    })
    .await
    .unwrap();
    let answer = ask(&app, "licuadora de vidrio", None).await.expect(200);
    assert_eq!(answer["generator"], "extractive");
    assert!(
        answer["response"]
            .as_str()
            .unwrap()
            .contains("Licuadora Oster 600W — $249.900 (8 disponibles)")
    );
    assert!(fake.requests().is_empty(), "Ollama was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_required_but_down_is_generator_unavailable() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.agent.generator = GeneratorChoice::Ollama
    })
    .await
    .unwrap();
    let reply = ask(&app, "hola", None).await;
    reply.expect_error(503, "generator_unavailable");
    assert!(reply.body["chat_id"].is_string());
    let ready = app.get("/ready", &app.admin).await.expect(200);
    assert_eq!(ready["components"]["generator"]["status"], "down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_failing_before_or_during_a_stream_or_stalling() {
    let (app, fake) = with_fake(Backend::Sqlite, |s| s.agent.first_token_timeout_secs = 1)
        .await
        .unwrap();

    // Before the stream: an HTTP error.
    fake.then(Reply::Status(500, "model crashed".to_owned()));
    let reply = ask(&app, "taladro", None).await;
    reply.expect_error(503, "generator_unavailable");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model crashed")
    );

    // In the middle: the pieces so far arrive, then an error event keeps them.
    fake.then(Reply::steps(vec![
        Step::Text("El taladro ".to_owned()),
        Step::Text("percutor ".to_owned()),
        Step::Error("out of memory".to_owned()),
    ]));
    let (_, events) = ask_streaming(&app, "taladro").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["response", "response", "error"]);
    let error = &events[2].1;
    assert_eq!(error["code"], "generator_unavailable");
    assert_eq!(error["parcial"], "El taladro percutor ");
    let chat_id = error["chat_id"].as_str().unwrap();
    let stored = app.conversation(chat_id).await;
    assert_eq!(stored["mensajes"][1]["estado"], "parcial");
    assert_eq!(stored["mensajes"][1]["contenido"], "El taladro percutor ");

    // Stalling after one piece: the silence limit ends it, the client is not hung.
    fake.then(Reply::steps(vec![
        Step::Text("Un momento".to_owned()),
        Step::Stall,
    ]));
    let (_, events) = ask_streaming(&app, "taladro").await;
    let (name, error) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(error["code"], "generator_unavailable");
    assert_eq!(error["parcial"], "Un momento");
    // The stalled upstream request was dropped, not left open.
    fake.wait_abandoned(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_stops_the_upstream_request() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::Echo {
        delay: Duration::from_millis(200),
    });
    let mut response = app
        .client
        .post(app.url("/api/query/text"))
        .header("accept", "text/event-stream")
        .json(&json!({"query": "cuéntame sobre todos los taladros que tienen en la tienda"}))
        .send()
        .await
        .unwrap();
    // The first piece arrives, then the client hangs up.
    let first = response.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("Respuesta"),
        "{first:?}"
    );
    drop(response);
    fake.wait_abandoned(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_validated_rate_limited_and_capped() {
    let (app, fake) = with_fake(Backend::Sqlite, |s| {
        s.limits.chat_rate_limit_per_minute = 1;
        s.limits.chat_rate_limit_burst = 5;
        s.agent.max_generations = 1;
        s.agent.generation_queue_ms = 200;
    })
    .await
    .unwrap();
    ask(&app, "   ", None)
        .await
        .expect_error(400, "validation_failed");
    let long = "x".repeat(2001);
    ask(&app, &long, None)
        .await
        .expect_error(400, "validation_failed");
    ask(&app, "hola", Some("no válido"))
        .await
        .expect_error(400, "validation_failed");

    // One generation at a time: while one stalls, the next is told the service is busy.
    fake.then(Reply::steps(vec![
        Step::Text("Pensando".to_owned()),
        Step::Stall,
    ]));
    let stalled = app
        .client
        .post(app.url("/api/query/text"))
        .header("accept", "text/event-stream")
        .json(&json!({"query": "taladro"}))
        .send()
        .await
        .unwrap();
    let mut stalled = stalled;
    stalled.chunk().await.unwrap().unwrap();
    let busy = ask(&app, "licuadora", None).await;
    busy.expect_error(503, "busy");
    assert_eq!(busy.headers["retry-after"], "5");
    drop(stalled);
    fake.wait_abandoned(1).await;

    // The sixth question within the minute is refused (the burst is five).
    let limited = ask(&app, "licuadora", None).await;
    limited.expect_error(429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
}
