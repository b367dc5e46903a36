//! Socket.IO on the namespace `/`, on the same port as HTTP (socketioxide; the
//! official socket.io-client v4 connects unchanged).
//!
//! - Handshake: optional `auth: {token}` with a staff JWT; a bad token is refused
//!   (`connect_error`), no token means an anonymous customer.
//! - `query_text {query, chat_id?}` streams `response` pieces and the final
//!   `response`, or an `error {chat_id, code, message}`; the same pipeline as REST.
//! - `cancel {chat_id?}` stops that answer (or all of this socket's); a disconnect
//!   stops them all. The Ollama request in flight is dropped with them.
//! - Each socket has its own question budget (`chat_rate_limit_*`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use socketioxide::SocketIo;
use socketioxide::extract::{Extension, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio_util::sync::CancellationToken;

use crate::agent::wire::{ChunkMessage, ErrorMessage, FinalMessage};
use crate::agent::{self, Canal, Event, Question};
use crate::app::AppState;
use crate::config::Settings;
use crate::error::ApiError;

/// Packets a socket may have waiting to be written before emits fail.
const SOCKET_BUFFER: usize = 1024;

/// The handshake's `auth` payload.
#[derive(Debug, Deserialize)]
struct Handshake {
    token: Option<String>,
}

/// `query_text`'s payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryText {
    query: String,
    chat_id: Option<String>,
}

/// `cancel`'s payload.
#[derive(Debug, Default, Deserialize)]
struct Cancel {
    chat_id: Option<String>,
}

/// What a socket carries between its events.
#[derive(Clone)]
struct Session {
    staff_id: Option<i64>,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The answers running on this socket, by chat id, with a serial so that a
    /// finished answer never removes a newer one for the same chat.
    running: Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Session {
    fn new(staff_id: Option<i64>, settings: &Settings) -> Self {
        let per_minute =
            NonZeroU32::new(settings.chat_rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.chat_rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            staff_id,
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_minute(per_minute).allow_burst(burst),
            )),
            running: Arc::default(),
        }
    }

    fn cancel(&self, chat_id: Option<&str>) {
        let running = self.running.lock().expect("running lock");
        for (id, (_, token)) in running.iter() {
            if chat_id.is_none_or(|wanted| wanted == id) {
                token.cancel();
            }
        }
    }
}

/// The Socket.IO layer, to put in front of the HTTP router.
pub fn layer(app: AppState) -> SocketIoLayer {
    let max_payload = app.settings().max_body_bytes as u64;
    let (layer, io) = SocketIo::builder()
        .with_state(app)
        .max_payload(max_payload)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    layer
}

/// Why a handshake was refused (sent to the client as `connect_error`).
#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn authenticate(
    socket: SocketRef,
    State(app): State<AppState>,
    TryData(auth): TryData<Option<Handshake>>,
) -> Result<(), Refused> {
    let token = auth
        .ok()
        .flatten()
        .and_then(|h| h.token)
        .filter(|t| !t.trim().is_empty());
    let staff_id = match token {
        None => None,
        Some(token) => {
            let claims = app
                .jwt()
                .verify(token.trim())
                .map_err(|_| Refused("token inválido o vencido"))?;
            Some(claims.sub.parse().map_err(|_| Refused("token inválido"))?)
        }
    };
    socket
        .extensions
        .insert(Session::new(staff_id, app.settings()));
    Ok(())
}

async fn on_connect(socket: SocketRef) {
    socket.on("query_text", on_query_text);
    socket.on("cancel", on_cancel);
    socket.on_disconnect(async |Extension(session): Extension<Session>| {
        session.cancel(None);
    });
}

fn emit_error(socket: &SocketRef, chat_id: Option<String>, error: &ApiError) {
    let _ = socket.emit("error", &ErrorMessage::new(chat_id, error, None));
}

async fn on_query_text(
    socket: SocketRef,
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    TryData(data): TryData<QueryText>,
) {
    let request = match data {
        Ok(request) => request,
        Err(err) => {
            let error =
                ApiError::InvalidBody(format!("query_text espera {{query, chat_id?}}: {err}"));
            return emit_error(&socket, None, &error);
        }
    };
    if let Err(not_until) = session.limiter.check() {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let error = ApiError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        };
        return emit_error(&socket, request.chat_id, &error);
    }
    let question = Question {
        query: request.query,
        chat_id: request.chat_id,
        canal: Canal::Socket,
        usuario_id: session.staff_id,
    };
    if let Err(err) = agent::check(&question, app.settings()) {
        return emit_error(&socket, question.chat_id.clone(), &ApiError::from(err));
    }
    let started = agent::start(&app, question);
    let chat_id = started.chat_id.clone().unwrap_or_default();
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let earlier = session
        .running
        .lock()
        .expect("running lock")
        .insert(chat_id.clone(), (serial, started.cancel.clone()));
    // A new question in the same conversation replaces the one still answering.
    if let Some((_, token)) = earlier {
        token.cancel();
    }
    let mut events = started.events;
    while let Some(event) = events.recv().await {
        let sent = match &event {
            Event::Chunk(chunk) => socket.emit(
                "response",
                &ChunkMessage {
                    chat_id: &chat_id,
                    chunk,
                    complete: false,
                },
            ),
            Event::Done(answer) => socket.emit(
                "response",
                &FinalMessage {
                    answer,
                    complete: true,
                },
            ),
            Event::Failed(failure) => socket.emit("error", &ErrorMessage::from(failure)),
        };
        if let Err(err) = sent {
            tracing::debug!(error = %err, chat_id, "socket gone: stopping the answer");
            started.cancel.cancel();
        }
    }
    let mut running = session.running.lock().expect("running lock");
    if running.get(&chat_id).is_some_and(|(s, _)| *s == serial) {
        running.remove(&chat_id);
    }
}

async fn on_cancel(Extension(session): Extension<Session>, TryData(data): TryData<Cancel>) {
    let chat_id = data.ok().and_then(|c| c.chat_id);
    session.cancel(chat_id.as_deref());
}
