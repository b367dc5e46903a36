//! Voice with a real Whisper model (multilingual base, q8_0, from the workplace's
//! shared data): Spanish questions spoken by espeak-ng are heard, corrected toward
//! the demo shop's words, and answered from the catalog exactly as the same
//! question typed would be, over REST (JSON and SSE) and Socket.IO; a question in
//! English is answered in English. The chat page's microphone is in `browser.rs`.
//! Answers come from the fake Ollama (the model is the one stand-in): what is checked
//! is what it was given, the catalog's products with their live prices, and the
//! sources sent to the customer.
//!
//! Assertions are on the words that matter, folded (no accents, lower case), since
//! the model's spelling of the rest may vary.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::fake_ollama::{FakeOllama, Reply};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::recordings::{save, spoken};
use crate::skip::skip;
use crate::socket_client::SocketClient;

/// The real model, or `None` (the test is then noted as not run).
pub fn real_model() -> Option<PathBuf> {
    let path = std::env::var("TENDERO_TEST_WHISPER_REAL_MODEL")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .map_or_else(
            || PathBuf::from("../shared/data/whisper/ggml-base-q8_0.bin"),
            PathBuf::from,
        );
    if path.is_file() {
        Some(path)
    } else {
        skip(
            "whisper",
            "the real Whisper model (shared/data/whisper/ggml-base-q8_0.bin)",
            "TENDERO_TEST_WHISPER_REAL_MODEL",
        );
        None
    }
}

/// A recording of the shared data (`taladros-es419.wav`, `martillos-es419.wav`).
pub fn shared_recording(name: &str) -> Vec<u8> {
    let model = real_model().expect("called after real_model()");
    let path = model.with_file_name(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

/// What the fake model answers every spoken (and typed) question with: the first
/// three sources it was given, cited.
pub const SAID: &str = "Claro, mira lo que tenemos en el catálogo [1] [2] [3].";

/// The demo shop, heard by the real model, answered through the fake Ollama.
pub async fn heard_app(
    tweak: impl FnOnce(&mut tendero::config::Settings),
) -> Option<(TestApp, FakeOllama)> {
    let model = real_model()?;
    let fake = FakeOllama::start().await;
    fake.always(Reply::say(SAID));
    let url = fake.url.clone();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.ollama.ollama_url = url;
        s.ollama.ollama_model = "fake-chat".to_owned();
        s.server.demo = true;
        s.speech.whisper_model = Some(model);
        // One thread: the same recording is heard the same way on every run.
        s.speech.whisper_threads = 1;
        s.limits.chat_rate_limit_per_minute = 100_000;
        s.limits.chat_rate_limit_burst = 100_000;
        tweak(s);
    })
    .await?;
    Some((app, fake))
}

/// The system prompt and the customer's message of the model's last request.
fn last_prompt(fake: &FakeOllama) -> (String, String) {
    let request = fake.requests().pop().expect("the model was asked");
    let messages = request["messages"].as_array().unwrap();
    let system = messages[0]["content"].as_str().unwrap().to_owned();
    let user = messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    (system, user)
}

/// Lower case without accents.
pub fn folded(text: &str) -> String {
    tendero::text::fold(text)
}

async fn post_voice(app: &TestApp, audio: &[u8], accept: Option<&str>) -> reqwest::Response {
    let (content_type, body) = crate::voice::form(&[("audio", Some("pregunta.wav"), audio)]);
    let mut request = app
        .client
        .post(app.url("/api/query/voice"))
        .header("content-type", content_type)
        .body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.expect("request sent")
}

/// The answer to `query` typed, in a new conversation.
async fn typed(app: &TestApp, query: &str) -> Value {
    app.call(
        reqwest::Method::POST,
        "/api/query/text",
        None,
        Some(json!({"query": query})),
    )
    .await
    .expect(200)
}

fn skus(sources: &Value) -> Vec<String> {
    sources
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["sku"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_question_is_heard_and_answered_like_the_typed_one_over_rest() {
    let Some((app, fake)) = heard_app(|_| {}).await else {
        return;
    };
    // "¿Tienen taladros inalámbricos de menos de doscientos mil pesos?"
    let reply = post_voice(&app, &shared_recording("taladros-es419.wav"), None).await;
    let status = reply.status();
    let answer: Value = reply.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let heard = &answer["transcription"];
    let text = heard["text"].as_str().unwrap();
    // The product; "inalámbricos" this model hears as "y alámbricos" or worse.
    assert!(folded(text).contains("taladro"), "{heard}");
    assert_eq!(heard["language"], "es");
    assert!(heard["transcribe_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(answer["response"], SAID);
    // Grounded in the catalog: the model was given the drills with the database's
    // prices, and the customer's words as heard.
    let cards = skus(&answer["sources"]);
    assert!(
        cards
            .iter()
            .any(|sku| sku == "FER-0001" || sku == "FER-0002"),
        "{answer}"
    );
    let (system, user) = last_prompt(&fake);
    assert_eq!(user, text);
    assert!(system.contains("Taladro percutor"), "{system}");
    assert!(
        system.contains("489.900") || system.contains("229.900"),
        "a drill's price from the catalog: {system}"
    );
    // As the same words typed are.
    let same_typed = typed(&app, text).await;
    assert_eq!(
        cards,
        skus(&same_typed["sources"]),
        "{answer}\n{same_typed}"
    );
    assert_eq!(last_prompt(&fake).0, system);
    // The conversation keeps the transcript as the customer's words.
    let chat_id = answer["chat_id"].as_str().unwrap();
    let conversation = app.conversation(chat_id).await;
    assert_eq!(
        conversation["mensajes"][0]["contenido"], text,
        "{conversation}"
    );

    // With `Accept: text/event-stream`: the transcript first, then the answer.
    // "Quiero comprar dos martillos y una caja de tornillos"
    let reply = post_voice(
        &app,
        &shared_recording("martillos-es419.wav"),
        Some("text/event-stream"),
    )
    .await;
    assert_eq!(reply.status(), 200);
    let events = crate::agent::sse_events(&reply.text().await.unwrap());
    let (first, heard) = &events[0];
    assert_eq!(first, "transcription", "{events:?}");
    // "tornillos" this model hears as "metonillos" or "me tornillos", depending
    // on the threads; "martillos" as "martíos" (then corrected) or right.
    let text = folded(heard["text"].as_str().unwrap());
    assert!(text.contains("martillo"), "{heard}");
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "response");
    assert_eq!(done["complete"], true);
    assert_eq!(done["response"], SAID);
    let cards = skus(&done["sources"]);
    assert!(cards.contains(&"FER-0007".to_owned()), "the hammer: {done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_question_over_socket_io_gets_its_transcript_then_its_answer() {
    let Some((app, fake)) = heard_app(|_| {}).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let recording = save(
        dir.path(),
        "martillos.wav",
        &shared_recording("martillos-es419.wav"),
    );
    let mut client = SocketClient::connect(&app.url(""), None).await;
    client
        .emit_binary(
            "query_voice",
            json!({"chat_id": "voz-real-1"}),
            &recording,
            false,
        )
        .await;
    let (event, heard) = client.next_event().await;
    assert_eq!(event, "transcription", "{heard}");
    assert_eq!(heard["chat_id"], "voz-real-1");
    let text = heard["text"].as_str().unwrap().to_owned();
    assert!(folded(&text).contains("martillo"), "{heard}");
    let streamed = client.until_end().await;
    assert_eq!(streamed.last_event, "response", "{:?}", streamed.last);
    assert_eq!(streamed.last["chat_id"], "voz-real-1");
    assert_eq!(streamed.last["response"], SAID);
    let cards = skus(&streamed.last["sources"]);
    assert!(
        cards.contains(&"FER-0007".to_owned()),
        "{:?}",
        streamed.last
    );
    let (system, user) = last_prompt(&fake);
    assert_eq!(user, text);
    assert!(system.contains("Martillo de uña"), "{system}");
    // The same answer as the question typed.
    client.ask(&text, None).await;
    let typed = client.until_end().await;
    assert_eq!(cards, skus(&typed.last["sources"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_heard_is_the_language_answered() {
    let Some((app, fake)) = heard_app(|s| s.speech.whisper_language = "auto".to_owned()).await
    else {
        return;
    };
    let english = spoken("en-us", 150, "Do you have a Samsung Galaxy phone?");
    let reply = post_voice(&app, &english, None).await;
    let answer: Value = reply.json().await.unwrap();
    let heard = &answer["transcription"];
    assert_eq!(heard["language"], "en", "{answer}");
    assert!(
        folded(heard["text"].as_str().unwrap()).contains("samsung"),
        "{heard}"
    );
    // Heard in English, so not corrected toward the Spanish catalog's sounds.
    assert!(heard.get("heard").is_none(), "{heard}");
    let (system, _) = last_prompt(&fake);
    assert!(
        system.contains("answer in English"),
        "the model is told to answer in English: {system}"
    );
    assert!(
        answer["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["titulo"].as_str().unwrap().contains("Galaxy")),
        "a Samsung Galaxy: {answer}"
    );
    // Without a model, the extractive answer is in English too.
    let extractive = spawn_app_with(Backend::Sqlite, |s| {
        s.server.demo = true;
        s.agent.generator = tendero::config::GeneratorChoice::Extractive;
    })
    .await
    .unwrap();
    let typed = typed(&extractive, heard["text"].as_str().unwrap()).await;
    let response = typed["response"].as_str().unwrap();
    assert!(response.starts_with("This is what I found"), "{response}");

    let spanish = shared_recording("taladros-es419.wav");
    let answer: Value = post_voice(&app, &spanish, None).await.json().await.unwrap();
    assert_eq!(answer["transcription"]["language"], "es", "{answer}");
    let (system, _) = last_prompt(&fake);
    assert!(!system.contains("answer in English"), "{system}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_and_noise_are_not_heard_as_the_shops_words() {
    use crate::recordings::{Sample, Signal, wav};
    let Some((app, _fake)) = heard_app(|_| {}).await else {
        return;
    };
    // The shop's words are Whisper's prompt: with nothing said, none may be written.
    for audio in [
        wav(Signal::Silence, 3.0, 16_000, 1, Sample::I16),
        wav(Signal::Tone(440.0), 2.0, 44_100, 2, Sample::I16),
    ] {
        let reply = post_voice(&app, &audio, None).await;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap();
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "empty_transcription", "{body}");
    }
}
