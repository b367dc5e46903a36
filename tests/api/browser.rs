//! The customer chat page in a real headless Chromium (Debian's `chromium`, driven by
//! playwright-core through `test_frontend/chat_page.mjs`): streamed answers and
//! product cards (with the fake Ollama and with the extractive generator), a click
//! recorded with its question, a reload that keeps the conversation, a server restart
//! the page reconnects through and continues, a second tab following the
//! conversation, cancel, and a question spoken into Chromium's fake microphone
//! reaching Whisper. Each test saves screenshots under `test_frontend/screenshots/`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tendero::db::entities::evento;
use tokio::sync::Notify;

use crate::agent::{stock_shop, with_fake};
use crate::chromium::{Driver, check_screenshot, frontend_dir, require_static};
use crate::fake_ollama::{FakeOllama, Reply, Step, words};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::recordings::{save, speech};

struct Browser {
    driver: Driver,
    _microphone: tempfile::TempDir,
}

impl Browser {
    /// Chromium on the page at `app`, its fake microphone playing `microphone` (WAV).
    async fn open(app: &TestApp, microphone: Option<&[u8]>) -> (Self, Value) {
        require_static("socket.io-client/dist/socket.io.min.js");
        let holder = tempfile::tempdir().unwrap();
        let silence = crate::recordings::wav(
            crate::recordings::Signal::Silence,
            1.0,
            16_000,
            1,
            crate::recordings::Sample::I16,
        );
        let microphone = save(
            holder.path(),
            "microfono.wav",
            microphone.unwrap_or(&silence),
        );
        let url = app.url("");
        let screenshots = frontend_dir().join("screenshots");
        let driver = Driver::start(
            "chat_page.mjs",
            &[
                std::ffi::OsStr::new(&url),
                microphone.as_os_str(),
                screenshots.as_os_str(),
            ],
        );
        let mut browser = Self {
            driver,
            _microphone: holder,
        };
        let opened = browser.run(json!({"cmd": "open"})).await;
        (browser, opened)
    }

    /// Runs one command; panics when the page did not get there.
    async fn run(&mut self, command: Value) -> Value {
        let reply = self.driver.send(&command).await;
        assert_eq!(reply["ok"], true, "{command} failed: {reply}");
        assert_eq!(reply["page_errors"], json!([]), "script errors on the page");
        reply
    }

    async fn ask(&mut self, text: &str) -> Value {
        self.run(json!({"cmd": "ask", "text": text})).await
    }

    async fn screenshot(&mut self, name: &str) {
        check_screenshot(&self.run(json!({"cmd": "screenshot", "name": name})).await);
    }
}

/// The first `click_producto` event, once the event log has written it.
async fn first_click(app: &TestApp) -> evento::Model {
    app.events("click_producto", 1).await.remove(0)
}

fn last_answer(page: &Value) -> &Value {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "agente")
        .expect("an answer on the page")
}

/// The page shows conversation `chat_id` as it was after the first question
/// ("quiero una licuadora", answered `answer` citing LIC-600), cards included.
fn shows_the_first_exchange(page: &Value, chat_id: &str, answer: &str) {
    assert_eq!(page["chat_id"], chat_id);
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["text"], "quiero una licuadora");
    assert_eq!(messages[1]["text"], answer);
    assert_eq!(messages[1]["cards"][0]["sku"], "LIC-600");
}

/// A follow-up continues conversation `chat_id`: the model (second request to the
/// fake) is given the earlier exchange.
async fn continues_with_the_history(page: &mut Browser, fake: &FakeOllama, chat_id: &str) {
    fake.then(Reply::say("Tiene cinco velocidades."));
    let again = page.ask("¿y cuántas velocidades tiene?").await;
    assert_eq!(last_answer(&again)["text"], "Tiene cinco velocidades.");
    assert_eq!(again["chat_id"], chat_id);
    let request = &fake.requests()[1];
    assert_eq!(
        request["messages"].as_array().unwrap().len(),
        4,
        "{request}"
    );
}

/// A reply streamed a word every 40 ms, so that the page shows it growing.
fn slowly(text: &str) -> Reply {
    Reply::Stream {
        steps: words(text).into_iter().map(Step::Text).collect(),
        delay: Duration::from_millis(40),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_streams_answers_with_cards_records_clicks_and_keeps_the_conversation() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    let answer = "La Licuadora Oster 600W [1] cuesta $249.900 y quedan 8.";
    fake.then(slowly(answer));
    let (mut page, opened) = Browser::open(&app, None).await;
    assert_eq!(opened["messages"], json!([]));

    let asked = page.ask("quiero una licuadora").await;
    let shown = last_answer(&asked);
    assert_eq!(shown["text"], answer);
    // The answer grew piece by piece before it was complete.
    let steps = asked["shown"].as_array().unwrap();
    assert!(steps.len() >= 5, "seen only {steps:?}");
    assert!(answer.starts_with(steps[1].as_str().unwrap()));
    let card = &shown["cards"][0];
    assert_eq!(card["sku"], "LIC-600");
    let card_text = card["text"].as_str().unwrap();
    for part in ["Licuadora Oster 600W", "249.900", "8 disponibles", "cocina"] {
        assert!(card_text.contains(part), "{part} not in {card_text}");
    }
    page.screenshot("respuesta-con-tarjetas").await;

    // A click is recorded with the answer that showed the product and its place.
    let clicked = page.run(json!({"cmd": "click_card", "index": 0})).await;
    assert_eq!(last_answer(&clicked)["cards"][0]["pressed"], true);
    let chat_id = clicked["chat_id"].as_str().unwrap().to_owned();
    let event = first_click(&app).await;
    let licuadora = app.product_id("LIC-600").await;
    assert_eq!(event.producto_id, Some(licuadora));
    assert_eq!(event.datos["posicion"], 1);
    assert_eq!(event.datos["canal"], "socket");
    assert_eq!(event.chat_id.as_deref(), Some(chat_id.as_str()));
    let respuesta_id = event.datos["respuesta_id"]
        .as_i64()
        .expect("the answer's id");
    assert_eq!(event.ref_id, Some(respuesta_id.to_string()));
    let conversation = app.conversation(&chat_id).await;
    assert_eq!(conversation["mensajes"][1]["id"], respuesta_id);

    // A thumb rates the answer at once; a comment may follow.
    let rated = page
        .run(json!({"cmd": "rate", "util": false, "comentario": "Quería ver más modelos"}))
        .await;
    let rating = &last_answer(&rated)["rating"];
    assert_eq!(rating["pressed"], json!(["No me sirvió"]), "{rating}");
    page.screenshot("valoracion-con-comentario").await;
    let ratings = app.events("valoracion", 2).await;
    assert_eq!(ratings[0].datos["util"], false);
    assert!(ratings[0].datos["comentario"].is_null());
    assert_eq!(ratings[1].datos["comentario"], "Quería ver más modelos");
    assert_eq!(ratings[1].datos["respuesta_id"], respuesta_id);

    // A reload shows the same conversation, cards included, and continues it.
    let reloaded = page.run(json!({"cmd": "reload"})).await;
    shows_the_first_exchange(&reloaded, &chat_id, answer);
    page.screenshot("conversacion-tras-recargar").await;
    continues_with_the_history(&mut page, &fake, &chat_id).await;
}

/// The answer the fake gives [`after_a_first_question`].
const FIRST_ANSWER: &str = "La Licuadora Oster 600W [1] cuesta $249.900.";

/// A page that asked "quiero una licuadora" and got [`FIRST_ANSWER`]; its chat id.
async fn after_a_first_question() -> (TestApp, FakeOllama, Browser, String) {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::say(FIRST_ANSWER));
    let (mut page, _) = Browser::open(&app, None).await;
    let asked = page.ask("quiero una licuadora").await;
    let chat_id = asked["chat_id"].as_str().unwrap().to_owned();
    (app, fake, page, chat_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tab_follows_the_conversation_asked_in_the_first() {
    let (_app, fake, mut page, chat_id) = after_a_first_question().await;

    // The second tab shares the first one's storage: it opens on the same
    // conversation.
    page.run(json!({"cmd": "open_tab"})).await;
    let second = page
        .run(json!({"cmd": "wait_messages", "count": 2, "tab": 1}))
        .await;
    shows_the_first_exchange(&second, &chat_id, FIRST_ANSWER);

    // A question asked in the first tab shows up in the second with its answer,
    // without a reload.
    let follow_up = "Sí, tiene cinco velocidades y vaso de vidrio [1].";
    fake.then(slowly(follow_up));
    let first = page.ask("¿cuántas velocidades tiene?").await;
    assert_eq!(last_answer(&first)["text"], follow_up);
    let second = page
        .run(json!({"cmd": "wait_messages", "count": 4, "tab": 1}))
        .await;
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(messages[2]["role"], "cliente");
    assert_eq!(messages[2]["text"], "¿cuántas velocidades tiene?");
    assert_eq!(messages[3]["text"], follow_up);
    assert_eq!(messages[3]["cards"], last_answer(&first)["cards"]);
    assert_eq!(second["chat_id"], chat_id);
    page.run(json!({"cmd": "screenshot", "name": "segunda-pestana", "tab": 1}))
        .await;

    // A tab opened while an answer streams shows it whole once it is complete.
    let gate = Arc::new(Notify::new());
    fake.then(Reply::steps(vec![
        Step::Text("Claro, ".to_owned()),
        Step::Gate(gate.clone()),
        Step::Text("viene en negro.".to_owned()),
    ]));
    page.run(json!({"cmd": "send", "text": "¿y en negro?"}))
        .await;
    page.run(json!({"cmd": "open_tab"})).await;
    gate.notify_one();
    let third = page
        .run(json!({"cmd": "wait_messages", "count": 6, "tab": 2}))
        .await;
    let messages = third["messages"].as_array().unwrap();
    assert_eq!(messages[4]["text"], "¿y en negro?");
    assert_eq!(messages[5]["text"], "Claro, viene en negro.");
    let first = page.run(json!({"cmd": "wait_messages", "count": 6})).await;
    assert_eq!(last_answer(&first)["text"], "Claro, viene en negro.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_page_reconnects_and_continues_the_conversation() {
    let (app, fake, mut page, chat_id) = after_a_first_question().await;

    // The server goes away (as in a deploy): the page says it is retrying.
    let stopped = app.stop_for_restart().await;
    let offline = page.run(json!({"cmd": "wait_offline"})).await;
    let status = offline["status"].as_str().unwrap();
    assert!(status.contains("reintentando"), "{status}");
    page.screenshot("sin-conexion").await;

    // A new server on the same address: without a reload, the page reconnects and
    // renders the conversation again from the server, cards included.
    let _app = stopped.start().await;
    let back = page.run(json!({"cmd": "wait_online"})).await;
    assert_eq!(back["status"], "Conectado");
    shows_the_first_exchange(&back, &chat_id, FIRST_ANSWER);
    // The conversation goes on with the new server.
    continues_with_the_history(&mut page, &fake, &chat_id).await;
    page.screenshot("reconectada").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_extractive_generator_answer_with_cards() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    stock_shop(&app).await;
    let (mut page, _) = Browser::open(&app, None).await;
    let asked = page.ask("¿tienen un taladro inalámbrico?").await;
    let shown = last_answer(&asked);
    let text = shown["text"].as_str().unwrap();
    assert!(text.contains("Taladro Inalámbrico 20V Azul"), "{text}");
    assert!(text.contains("329.900"), "{text}");
    let skus: Vec<&str> = shown["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sku"].as_str().unwrap())
        .collect();
    assert!(skus.contains(&"TAL-20V"), "{skus:?}");
    page.screenshot("respuesta-extractiva").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_answer_on_the_page_and_upstream() {
    let (app, fake) = with_fake(Backend::Sqlite, |_| {}).await.unwrap();
    fake.then(Reply::steps(vec![
        Step::Text("Estoy buscando ".to_owned()),
        Step::Stall,
    ]));
    let (mut page, _) = Browser::open(&app, None).await;
    let stopped = page
        .run(json!({"cmd": "ask_and_cancel", "text": "quiero una licuadora"}))
        .await;
    let text = last_answer(&stopped)["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("Estoy buscando"), "{text}");
    assert!(text.contains("Respuesta detenida"), "{text}");
    fake.wait_abandoned(1).await;
    page.screenshot("respuesta-detenida").await;

    // The page is ready for the next question.
    fake.then(Reply::say("Claro."));
    let next = page.ask("hola").await;
    assert_eq!(last_answer(&next)["text"], "Claro.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_spoken_into_the_microphone_reaches_whisper() {
    let model = crate::voice::test_model();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.speech.whisper_model = Some(model);
        s.speech.whisper_threads = 1;
    })
    .await
    .unwrap();
    let voice = speech("¿Tienen licuadoras de vidrio?");
    let (mut page, _) = Browser::open(&app, Some(&voice)).await;
    let spoken = page.run(json!({"cmd": "speak", "ms": 1500})).await;
    // The weightless model hears nothing: the page says so in Spanish and keeps
    // nothing of the attempt in the conversation.
    let notice = spoken["notice"].as_str().unwrap();
    assert!(notice.contains("no se entendió"), "{spoken}");
    assert_eq!(spoken["messages"], json!([]), "{spoken}");
    page.screenshot("voz-sin-transcripcion").await;
}

/// With the real model, the customer's spoken words become their message on the
/// page, and the answer that follows shows the catalog's products.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_spoken_into_the_microphone_is_shown_and_answered() {
    let Some((app, _fake)) = crate::heard::heard_app(|_| {}).await else {
        return;
    };
    // "¿Tienen taladros inalámbricos de menos de doscientos mil pesos?", 5.4 s: the
    // fake microphone plays it from the start when recording begins.
    let voice = crate::heard::shared_recording("taladros-es419.wav");
    let (mut page, _) = Browser::open(&app, Some(&voice)).await;
    let spoken = page.run(json!({"cmd": "speak", "ms": 5600})).await;
    let messages = spoken["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{spoken}");
    assert_eq!(messages[0]["role"], "cliente");
    let said = crate::heard::folded(messages[0]["text"].as_str().unwrap());
    assert!(said.contains("taladro"), "{spoken}");
    let answer = last_answer(&spoken);
    let cards: Vec<&str> = answer["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sku"].as_str().unwrap())
        .collect();
    assert!(
        cards
            .iter()
            .any(|sku| *sku == "FER-0001" || *sku == "FER-0002"),
        "{spoken}"
    );
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("Claro, mira lo que tenemos"),
        "{spoken}"
    );
    assert_eq!(spoken["notice"], "", "{spoken}");
    page.screenshot("voz-transcrita").await;
}

/// An answer about a product shows what goes with it under "También te puede
/// interesar", and a click on such a card is recorded like any card's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_goes_with_a_product() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    crate::recommend::shop(&app).await;
    crate::recommend::train(&app).await;
    let (mut page, _) = Browser::open(&app, None).await;
    let asked = page.ask("¿tienen taladro percutor?").await;
    let shown = last_answer(&asked);
    assert!(
        shown["text"].as_str().unwrap().contains("Taladro percutor"),
        "{shown}"
    );
    assert_eq!(
        shown["suggestions_title"], "También te puede interesar",
        "{shown}"
    );
    assert_eq!(shown["suggested"], json!(["BRO-1"]), "{shown}");
    page.screenshot("tambien-te-puede-interesar").await;
    let index = shown["cards"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["sku"] == "BRO-1")
        .unwrap();
    page.run(json!({"cmd": "click_card", "index": index})).await;
    let event = first_click(&app).await;
    let brocas = app.product_id("BRO-1").await;
    assert_eq!(event.producto_id, Some(brocas));
    // Its place among the answer's sources: after the cards of the answer itself.
    assert_eq!(event.datos["posicion"], index as i64 + 1, "{}", event.datos);
}
