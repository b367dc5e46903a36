//! Voice questions end to end: recordings the tests make (tones, silence and
//! espeak-ng speech; WAV of every sample width, MP3, OGG Vorbis, FLAC; several
//! rates and channel counts) sent to `POST /api/query/voice` and over Socket.IO
//! with the official client, decoded, resampled and transcribed by whisper.cpp with
//! the weightless test model, which runs the whole pipeline and hears nothing: so
//! every good recording ends as `empty_transcription`, with what was decoded
//! reported. Bad input, limits, a missing model and concurrency too.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, spawn_app_with};
use crate::recordings::{Sample, Signal, encode, save, speech, wav};
use crate::socket_client::SocketClient;

/// The weightless Whisper model (`make test` points at the shared test data).
pub fn test_model() -> PathBuf {
    let path = std::env::var("TENDERO_TEST_WHISPER_MODEL").map_or_else(
        |_| PathBuf::from("../shared/data/whisper/for-tests-ggml-tiny.bin"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the test Whisper model {} is missing: set TENDERO_TEST_WHISPER_MODEL (make test does)",
        path.display()
    );
    path
}

async fn voice_app(tweak: impl FnOnce(&mut tendero::config::Settings)) -> TestApp {
    let model = test_model();
    spawn_app_with(Backend::Sqlite, |s| {
        s.speech.whisper_model = Some(model);
        s.speech.whisper_threads = 1;
        s.limits.chat_rate_limit_per_minute = 100_000;
        s.limits.chat_rate_limit_burst = 100_000;
        tweak(s);
    })
    .await
    .unwrap()
}

/// A `multipart/form-data` body: (content type, bytes). A part with a file name is
/// sent as a file.
pub fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "tendero-prueba-7f3a9c";
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match file_name {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(app: &TestApp, parts: &[(&str, Option<&str>, &[u8])]) -> Reply {
    let (content_type, body) = form(parts);
    let response = app
        .client
        .post(app.url("/api/query/voice"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent");
    TestApp::read(response).await
}

async fn send_voice(app: &TestApp, audio: Vec<u8>, chat_id: Option<&str>) -> Reply {
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("audio", Some("pregunta"), &audio)];
    if let Some(chat_id) = chat_id {
        parts.push(("chat_id", None, chat_id.as_bytes()));
    }
    post_form(app, &parts).await
}

/// Asserts the pipeline ran to an empty transcript and returns the transcription.
#[track_caller]
fn heard_nothing(reply: &Reply) -> Value {
    reply.expect_error(422, "empty_transcription");
    assert!(
        reply.body["chat_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let transcription = reply.body["transcription"].clone();
    assert_eq!(transcription["text"], "", "{transcription}");
    transcription
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not {expected} ± {tolerance}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wav_width_rate_and_channel_count_reaches_whisper() {
    let app = voice_app(|_| {}).await;
    let cases = [
        (Sample::U8, 8_000, 1),
        (Sample::I16, 16_000, 1),
        (Sample::I16, 44_100, 2),
        (Sample::I24, 48_000, 2),
        (Sample::I32, 22_050, 1),
        (Sample::F32, 32_000, 2),
        (Sample::F32, 11_025, 1),
    ];
    for (sample, rate, channels) in cases {
        let audio = wav(Signal::Tone(440.0), 1.5, rate, channels, sample);
        let transcription = heard_nothing(&send_voice(&app, audio, None).await);
        assert_eq!(
            transcription["format"], "wav",
            "{sample:?} {rate} {channels}"
        );
        // Resampled to 16 kHz, the length is kept.
        assert_close(
            transcription["audio_ms"].as_f64().unwrap(),
            1500.0,
            2.0,
            &format!("{sample:?} at {rate} Hz, {channels} channels"),
        );
    }
    // Silence, and a recording shorter than Whisper's one-second window.
    let silence = wav(Signal::Silence, 2.0, 16_000, 1, Sample::I16);
    heard_nothing(&send_voice(&app, silence, None).await);
    let blip = wav(Signal::Tone(880.0), 0.2, 48_000, 1, Sample::I16);
    let transcription = heard_nothing(&send_voice(&app, blip, None).await);
    assert_close(
        transcription["audio_ms"].as_f64().unwrap(),
        200.0,
        2.0,
        "blip",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_ogg_vorbis_flac_and_spoken_spanish_reach_whisper() {
    let app = voice_app(|_| {}).await;
    let tone = wav(Signal::Tone(440.0), 2.0, 44_100, 2, Sample::I16);
    for (extension, format) in [("mp3", "mp3"), ("ogg", "ogg"), ("flac", "flac")] {
        let encoded = encode(&tone, extension);
        let transcription = heard_nothing(&send_voice(&app, encoded, None).await);
        assert_eq!(transcription["format"], format);
        // Encoders may pad a frame at either end.
        assert_close(
            transcription["audio_ms"].as_f64().unwrap(),
            2000.0,
            60.0,
            extension,
        );
    }
    let spoken = speech("¿Tienen taladros inalámbricos por menos de trescientos mil pesos?");
    let transcription = heard_nothing(&send_voice(&app, spoken.clone(), None).await);
    assert!(transcription["audio_ms"].as_f64().unwrap() > 1000.0);
    let flac = encode(&spoken, "flac");
    heard_nothing(&send_voice(&app, flac, None).await);

    // Nothing was stored: an unheard question never reaches the agent.
    let conversations = app.get("/api/conversaciones", &app.admin).await.expect(200);
    assert_eq!(conversations["total"], 0, "{conversations}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_truncated_huge_and_too_long_recordings_get_clear_errors() {
    let app = voice_app(|s| {
        s.speech.voice_max_bytes = 512 * 1024;
        s.speech.voice_max_secs = 5;
    })
    .await;
    let tone = wav(Signal::Tone(440.0), 2.0, 16_000, 1, Sample::I16);

    let not_audio = send_voice(&app, b"esto es texto, no audio".repeat(50), None).await;
    not_audio.expect_error(415, "unsupported_audio");
    let noise: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let reply = send_voice(&app, noise, None).await;
    assert!(
        matches!(reply.code(), "unsupported_audio" | "invalid_audio"),
        "{}",
        reply.text
    );
    send_voice(&app, Vec::new(), None)
        .await
        .expect_error(422, "invalid_audio");

    // Cut short: the header promises more than the file has.
    let mut cut = tone.clone();
    cut.truncate(tone.len() / 2);
    send_voice(&app, cut, None)
        .await
        .expect_error(422, "invalid_audio");
    for extension in ["flac", "ogg"] {
        let mut encoded = encode(&tone, extension);
        encoded.truncate(encoded.len() / 2);
        send_voice(&app, encoded, None)
            .await
            .expect_error(422, "invalid_audio");
    }
    // A damaged FLAC stream: its frames' checksums fail.
    let mut damaged = encode(&tone, "flac");
    let start = damaged.len() / 3;
    for byte in &mut damaged[start..start + 2_000] {
        *byte ^= 0x5a;
    }
    let reply = send_voice(&app, damaged, None).await;
    assert_eq!(reply.status.as_u16(), 422, "{}", reply.text);

    // Over the size limit (refused while reading) and over the duration limit.
    let huge = wav(Signal::Tone(440.0), 4.0, 48_000, 2, Sample::I16);
    assert!(huge.len() > 512 * 1024);
    send_voice(&app, huge, None)
        .await
        .expect_error(413, "payload_too_large");
    let long = wav(Signal::Tone(440.0), 6.0, 8_000, 1, Sample::U8);
    send_voice(&app, long, None)
        .await
        .expect_error(413, "audio_too_long");
    let long_mp3 = encode(&wav(Signal::Tone(440.0), 8.0, 8_000, 1, Sample::I16), "mp3");
    send_voice(&app, long_mp3, None)
        .await
        .expect_error(413, "audio_too_long");

    // Not a multipart form, no audio field, an unknown field, a bad chat id.
    let json_body = app
        .call(
            reqwest::Method::POST,
            "/api/query/voice",
            None,
            Some(json!({"audio": "x"})),
        )
        .await;
    json_body.expect_error(415, "unsupported_media_type");
    let reply = post_form(&app, &[("chat_id", None, b"abc")]).await;
    reply.expect_error(400, "validation_failed");
    assert_eq!(reply.body["error"]["field"], "audio");
    let reply = post_form(
        &app,
        &[("audio", Some("a.wav"), &tone), ("idioma", None, b"es")],
    )
    .await;
    reply.expect_error(422, "invalid_body");
    send_voice(&app, tone.clone(), Some("no es un id válido!"))
        .await
        .expect_error(400, "validation_failed");

    // The server is unharmed.
    heard_nothing(&send_voice(&app, tone, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_voice_answers_503_and_ready_says_why() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let tone = wav(Signal::Tone(440.0), 1.0, 16_000, 1, Sample::I16);
    let reply = send_voice(&app, tone, None).await;
    reply.expect_error(503, "speech_unavailable");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TENDERO_WHISPER_MODEL")
    );
    let ready = app.call(reqwest::Method::GET, "/ready", None, None).await;
    // Voice is optional: the rest of the server is ready.
    assert_eq!(ready.status.as_u16(), 200, "{}", ready.text);
    assert_eq!(ready.body["components"]["whisper"]["status"], "unavailable");
    assert!(
        ready.body["components"]["whisper"]["detail"]
            .as_str()
            .unwrap()
            .contains("TENDERO_WHISPER_MODEL")
    );

    // A model file that is not a model: the server starts, voice is off and says so.
    let dir = tempfile::tempdir().unwrap();
    let bogus = save(dir.path(), "modelo.bin", b"no es un modelo ggml");
    let broken = spawn_app_with(Backend::Sqlite, |s| s.speech.whisper_model = Some(bogus))
        .await
        .unwrap();
    let tone = wav(Signal::Tone(440.0), 1.0, 16_000, 1, Sample::I16);
    let reply = send_voice(&broken, tone, None).await;
    reply.expect_error(503, "speech_unavailable");
    let ready = broken
        .call(reqwest::Method::GET, "/ready", None, None)
        .await;
    assert!(
        ready.body["components"]["whisper"]["detail"]
            .as_str()
            .unwrap()
            .contains("no se pudo cargar")
    );

    let working = voice_app(|_| {}).await;
    let ready = working
        .call(reqwest::Method::GET, "/ready", None, None)
        .await;
    assert_eq!(
        ready.body["components"]["whisper"]["status"], "ok",
        "{}",
        ready.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_voice_questions_all_get_their_own_answer() {
    let app = voice_app(|s| {
        s.speech.max_transcriptions = 1;
        s.speech.transcription_queue_ms = 120_000;
    })
    .await;
    let requests = (0..6u32).map(|i| {
        // Each a different length, so that each reply can be told apart.
        let seconds = 1.0 + i as f32 * 0.25;
        let audio = wav(
            Signal::Tone(300.0 + i as f32 * 50.0),
            seconds,
            16_000,
            1,
            Sample::I16,
        );
        let app = &app;
        async move { (seconds, send_voice(app, audio, None).await) }
    });
    let replies = futures::future::join_all(requests).await;
    let mut chat_ids = std::collections::HashSet::new();
    for (seconds, reply) in replies {
        let transcription = heard_nothing(&reply);
        assert_close(
            transcription["audio_ms"].as_f64().unwrap(),
            f64::from(seconds) * 1000.0,
            2.0,
            "each reply is its own recording's",
        );
        chat_ids.insert(reply.body["chat_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(chat_ids.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_beyond_the_transcription_queue_are_told_busy() {
    let app = voice_app(|s| {
        s.speech.max_transcriptions = 1;
        s.speech.transcription_queue_ms = 1;
    })
    .await;
    let audio = wav(Signal::Tone(440.0), 3.0, 16_000, 1, Sample::I16);
    let replies =
        futures::future::join_all((0..4).map(|_| send_voice(&app, audio.clone(), None))).await;
    let busy = replies.iter().filter(|r| r.code() == "busy").count();
    let heard = replies
        .iter()
        .filter(|r| r.code() == "empty_transcription")
        .count();
    assert_eq!(busy + heard, 4, "{replies:?}");
    assert!(heard >= 1 && busy >= 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.code() == "busy") {
        reply.expect_error(503, "busy");
        assert_eq!(reply.headers["retry-after"], "5");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_sends_recordings_as_binary_over_socket_io() {
    let app = voice_app(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let tone = wav(Signal::Tone(440.0), 1.5, 48_000, 2, Sample::I16);
    let wav_path = save(dir.path(), "tono.wav", &tone);
    let ogg_path = save(dir.path(), "tono.ogg", &encode(&tone, "ogg"));
    let text_path = save(dir.path(), "nota.txt", b"no es audio");

    let mut client = SocketClient::connect(&app.url(""), None).await;
    // The recording as the `audio` field, in a conversation the client names.
    let chat_id = "voz-socket-1";
    client
        .emit_binary("query_voice", json!({"chat_id": chat_id}), &wav_path, false)
        .await;
    let (event, data) = client.next_event().await;
    assert_eq!(event, "error", "{data}");
    assert_eq!(data["code"], "empty_transcription");
    assert_eq!(data["chat_id"], chat_id);
    assert!(data["message"].as_str().unwrap().contains("repetir"));

    // The recording as a second argument, without a conversation: one is made.
    client
        .emit_binary("query_voice", json!({}), &ogg_path, true)
        .await;
    let (event, data) = client.next_event().await;
    assert_eq!(event, "error", "{data}");
    assert_eq!(data["code"], "empty_transcription");
    assert!(data["chat_id"].as_str().is_some_and(|id| !id.is_empty()));

    // Not audio, and no recording at all.
    client
        .emit_binary("query_voice", json!({}), &text_path, false)
        .await;
    let (_, data) = client.next_event().await;
    assert_eq!(data["code"], "unsupported_audio", "{data}");
    client
        .emit("query_voice", json!({"chat_id": chat_id}))
        .await;
    let (_, data) = client.next_event().await;
    assert_eq!(data["code"], "validation_failed", "{data}");

    // The socket still answers typed questions afterwards.
    client.ask("hola", None).await;
    let streamed = client.until_end().await;
    assert_eq!(streamed.last_event, "response", "{:?}", streamed.last);
    assert_eq!(streamed.last["generator"], "extractive");
}

/// What `/ready` says of Whisper.
async fn whisper_detail(app: &TestApp) -> String {
    let ready = app.call(reqwest::Method::GET, "/ready", None, None).await;
    ready.body["components"]["whisper"]["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Whisper is given the shop's words, and new ones once the catalog changes; with
/// `whisper_vocabulary` off, none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_hears_with_the_shops_words_as_the_catalog_changes() {
    let app = voice_app(|s| s.speech.vocabulary_poll_secs = 1).await;
    assert!(
        whisper_detail(&app).await.contains("sin vocabulario"),
        "an empty shop has no words"
    );
    for (sku, nombre, categoria) in [
        ("T-1", "Taladro percutor inalámbrico 20 V", "ferretería"),
        ("T-2", "Taladro percutor alámbrico DeWalt", "ferretería"),
        ("M-1", "Martillo de uña", "ferretería"),
    ] {
        app.post(
            "/api/productos",
            &app.admin,
            json!({"sku": sku, "nombre": nombre, "precio": "100000", "stock": 3, "categoria": categoria}),
        )
        .await
        .expect(201);
    }
    // taladro, martillo; ferretería; percutor, alámbrico, DeWalt, inalámbrico.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let detail = whisper_detail(&app).await;
        if detail.contains("vocabulario de la tienda: 7 palabras") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{detail}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let deaf = voice_app(|s| {
        s.speech.vocabulary_poll_secs = 1;
        s.speech.whisper_vocabulary = false;
        s.server.demo = true;
    })
    .await;
    assert!(whisper_detail(&deaf).await.contains("sin vocabulario"));
}
