//! Socket.IO on the namespace `/`, on the same port as HTTP (socketioxide; the
//! official socket.io-client v4 connects unchanged).
//!
//! - Handshake: optional `auth: {token}` with a staff JWT; a bad token is refused
//!   (`connect_error`), no token means an anonymous customer. Staff sockets join the
//!   staff room, where each new order arrives as `pedido_nuevo` ([`staff`]).
//! - `query_text {query, chat_id?}` streams `response` pieces and the final
//!   `response`, or an `error {chat_id, code, message}`; the same pipeline as REST.
//! - `query_voice {audio, chat_id?}` (the recording as a binary attachment; or the
//!   metadata first and the recording as a second argument) emits `transcription`
//!   `{chat_id, text, language, …}`, then the answer exactly like `query_text`; a
//!   recording where nothing was understood gets an `error` `empty_transcription`.
//! - `history {chat_id}` answers `history {chat_id, messages}`; `product_click
//!   {respuesta_id, producto_id, posicion}` records a click on a product card of an
//!   answer and `feedback {respuesta_id, util, comentario?}` a rating of an answer,
//!   each checked against what the answer showed (the chat page's needs, in [`page`]).
//! - A socket that asks in a conversation or reads its `history` follows it: the
//!   other sockets following it (the customer's other tabs and devices) see each
//!   new question as `question {chat_id, query}` and its answer streaming, with
//!   the same `response` and `error` events as the socket that asked.
//! - `cancel {chat_id}` stops that conversation's answer, wherever it was asked
//!   from if this socket follows the conversation; `cancel {}` stops this socket's
//!   answers. Sent with an acknowledgement, it is answered `{chat_id, scope}`
//!   once applied (`scope`: `conversation` or `socket`). A disconnect stops the
//!   answers the socket asked for. The Ollama request in flight is dropped with
//!   them.
//! - With `TENDERO_REDIS_URL` ([`crate::cluster`], [`nodes`]), following and
//!   cancelling reach across every node sharing that Redis.
//! - Each socket has its own question budget (`chat_rate_limit_*`), and one for its
//!   clicks and ratings (`rate_limit_*`, the API's per-client limit).
//! - At shutdown ([`Sockets::close`]) new questions get `shutting_down`, the answers
//!   in flight get the grace period to finish, and then every connection is closed
//!   at the transport, so that clients reconnect (to the next server) on their own.

mod follow;
mod head;
mod nodes;
mod page;
mod session;
mod staff;

pub use head::own_head;
pub use session::Sockets;

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use socketioxide::adapter::{Adapter, Emitter, LocalAdapter};
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIoBuilder};
use socketioxide_redis::CustomRedisAdapter;
use tokio_util::sync::CancellationToken;

use crate::agent::memory::{new_chat_id, parse_chat_id};
use crate::agent::wire::{ChunkMessage, ErrorMessage, FinalMessage, TranscriptionMessage};
use crate::agent::{Agent, Channel, Event, Question, Started};
use crate::auth::Auth;
use crate::cluster::{Cluster, Link};
use crate::config::LimitSettings;
use crate::error::{Coded, FieldError, Refusal};
use crate::learning::Intake;
use crate::shop::Shop;
use crate::speech::{Speech, SpeechError};

use self::follow::{Followers, chat_room};
use self::session::{Answers, InFlight, Io, Session, rate_limited};

/// Socket.IO across nodes: its Redis adapter, over the node's link to Redis.
type ClusterAdapter = CustomRedisAdapter<Emitter, Link>;

/// Packets a socket may have waiting to be written before emits fail.
const SOCKET_BUFFER: usize = 1024;

/// What each WebSocket reads into at first (engine.io's default is 4 KiB). Customers'
/// messages are small; a larger frame (a recording) grows the buffer to its size, so
/// this only trims what every idle connection holds.
const WS_READ_BUFFER: usize = 1024;

/// Where engine.io answers.
const SOCKET_PATH: &str = "/socket.io";

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

/// `query_voice`'s first argument. The recording is its `audio` field or, when
/// that is absent, the event's second argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceMeta {
    chat_id: Option<String>,
    #[serde(default)]
    audio: Bytes,
}

/// `query_voice`'s arguments.
#[derive(Debug, Deserialize)]
struct QueryVoice(VoiceMeta, #[serde(default)] Bytes);

/// `cancel`'s payload.
#[derive(Debug, Default, Deserialize)]
struct Cancel {
    chat_id: Option<String>,
}

/// What a `cancel` sent with an acknowledgement is answered, once it was applied:
/// its conversation, and whether it stopped the whole conversation on every node
/// (`conversation`: the socket follows it) or only the socket's own answers
/// (`socket`).
#[derive(Debug, Serialize)]
struct CancelAck {
    chat_id: Option<String>,
    scope: &'static str,
}

impl Default for CancelAck {
    fn default() -> Self {
        Self {
            chat_id: None,
            scope: "socket",
        }
    }
}

/// What the Socket.IO handlers use.
pub struct SocketServices {
    pub agent: Arc<Agent>,
    pub speech: Arc<Speech>,
    pub auth: Arc<Auth>,
    pub intake: Arc<Intake>,
    /// Its new orders go to the staff room.
    pub shop: Arc<Shop>,
    /// The other nodes, when several share a Redis.
    pub cluster: Option<Arc<Cluster>>,
}

/// What Socket.IO is built with besides its services.
pub struct SocketSettings {
    /// Each socket's question budget.
    pub limits: LimitSettings,
    /// Largest message other than a recording.
    pub max_body_bytes: usize,
}

/// Room for a recording's framing: the same as the HTTP route allows.
const VOICE_OVERHEAD: usize = 64 * 1024;

/// Puts Socket.IO in front of `router` (on one node, or across the nodes sharing
/// a Redis) and returns its handle for the shutdown.
pub async fn attach<S>(
    router: axum::Router<S>,
    services: SocketServices,
    settings: SocketSettings,
) -> anyhow::Result<(axum::Router<S>, Sockets)>
where
    S: Clone + Send + Sync + 'static,
{
    // A recording travels as a binary attachment: base64 (a third larger) while
    // the client is still on HTTP long-polling. Attachments beyond twice the
    // recording limit close the connection; smaller ones get a clear error.
    let voice_bytes = services.speech.max_bytes() + VOICE_OVERHEAD;
    let max_payload = settings.max_body_bytes.max(voice_bytes / 3 * 4) as u64;
    let parser = ParserConfig::common().max_incoming_binary_buf_size(2 * voice_bytes);
    let answers = Arc::new(Answers::new());
    let stop = CancellationToken::new();
    let cluster = services.cluster.clone();
    let builder = SocketIoBuilder::new()
        .with_state(services.agent)
        .with_state(services.speech)
        .with_state(services.auth)
        .with_state(services.intake)
        .with_state(services.cluster)
        .with_state(Arc::new(settings.limits))
        .with_state(answers.clone())
        .req_path(SOCKET_PATH)
        .max_payload(max_payload)
        .max_buffer_size(SOCKET_BUFFER)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .with_parser(parser);
    // Everything happens in the middleware (see [`authenticate`]): the connect
    // handler, run after the `connect` packet has left, has nothing left to do.
    let (router, io) = match cluster {
        None => {
            let (layer, io) = builder.build_layer();
            io.ns("/", (async || {}).with(authenticate::<LocalAdapter>));
            staff::forward_orders(io.clone(), services.shop.new_orders(), stop.clone());
            (router.layer(layer), Io::Alone(io))
        }
        Some(cluster) => {
            let adapter = nodes::adapter(&cluster);
            let (layer, io) = builder
                .with_adapter::<ClusterAdapter>(adapter)
                .build_layer();
            io.ns("/", (async || {}).with(authenticate::<ClusterAdapter>))
                .await
                .map_err(|err| anyhow::anyhow!("starting the Socket.IO Redis adapter: {err}"))?;
            staff::forward_orders(io.clone(), services.shop.new_orders(), stop.clone());
            let local = answers.clone();
            cluster
                .follow_cancels(move |chat_id| local.cancel_chat(chat_id), stop.clone())
                .await?;
            (router.layer(layer), Io::Cluster(io))
        }
    };
    Ok((router, Sockets { io, answers, stop }))
}

/// Why a handshake was refused (sent to the client as `connect_error`).
#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    State(keys): State<Arc<Auth>>,
    State(limits): State<Arc<LimitSettings>>,
    State(answers): State<Arc<Answers>>,
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
            let staff = keys
                .verify(token.trim())
                .map_err(|_| Refused("token inválido o vencido"))?;
            Some(staff.id)
        }
    };
    if staff_id.is_some() {
        socket.join(staff::STAFF_ROOM);
    }
    socket
        .extensions
        .insert(Session::new(staff_id, &limits, answers));
    listen(&socket);
    Ok(())
}

/// Registers the socket's event handlers. They must be in place before the
/// `connect` packet leaves, that is in the middleware: socketioxide sends that
/// packet and only then spawns the connect handler, and an event that arrives
/// before a handler exists is dropped unheard. The chat page emits `history` the
/// moment it is connected (after a reload or a reconnect), and on a busy server
/// that event used to beat a connect handler still waiting for a thread.
fn listen<A: Adapter>(socket: &SocketRef<A>) {
    socket.on("query_text", on_query_text::<A>);
    socket.on("query_voice", on_query_voice::<A>);
    socket.on("history", page::on_history::<A>);
    socket.on("product_click", page::on_product_click::<A>);
    socket.on("feedback", page::on_feedback::<A>);
    socket.on("cancel", on_cancel::<A>);
    socket.on_disconnect(async |Extension(session): Extension<Session>| {
        session.cancel(None);
    });
}

fn emit_error<A: Adapter>(socket: &SocketRef<A>, chat_id: Option<String>, error: &dyn Coded) {
    let _ = socket.emit("error", &ErrorMessage::new(chat_id, error, None));
}

fn boxed<E: Coded>(err: E) -> Box<dyn Coded> {
    Box::new(err)
}

async fn on_query_text<A: Adapter>(
    socket: SocketRef<A>,
    State(agent): State<Arc<Agent>>,
    Extension(session): Extension<Session>,
    TryData(data): TryData<QueryText>,
) {
    let request = match data {
        Ok(request) => request,
        Err(err) => {
            let error =
                Refusal::InvalidBody(format!("query_text espera {{query, chat_id?}}: {err}"));
            return emit_error(&socket, None, &error);
        }
    };
    let _in_flight = match rate_limited(&session).and_then(|()| session.answers.enter()) {
        Ok(in_flight) => in_flight,
        Err(error) => return emit_error(&socket, request.chat_id, &error),
    };
    let question = Question {
        query: request.query,
        chat_id: request.chat_id,
        channel: Channel::Socket,
        staff_id: session.staff_id,
    };
    if let Err(err) = agent.check(&question) {
        return emit_error(&socket, question.chat_id.clone(), &err);
    }
    let query = question.query.clone();
    let started = agent.start(question);
    let chat_id = started.chat_id.clone().unwrap_or_default();
    let serial = session.register(&chat_id, started.cancel.clone());
    let followers = (!chat_id.is_empty()).then(|| Followers::start(&socket, &chat_id, &query));
    relay(&socket, &chat_id, started, followers).await;
    session.finished(&chat_id, serial);
}

/// Sends an answer's pieces and its end to the socket, then to the conversation's
/// other followers; stops the answer if the socket is gone.
async fn relay<A: Adapter>(
    socket: &SocketRef<A>,
    chat_id: &str,
    started: Started,
    followers: Option<Followers>,
) {
    fn send<A: Adapter, T: Serialize + ?Sized>(
        socket: &SocketRef<A>,
        followers: Option<&Followers>,
        event: &'static str,
        data: &T,
    ) -> Result<(), socketioxide::SendError> {
        let sent = socket.emit(event, data);
        if let Some(followers) = followers {
            followers.send(event, data);
        }
        sent
    }
    let followers = followers.as_ref();
    let mut events = started.events;
    while let Some(event) = events.recv().await {
        let sent = match &event {
            Event::Chunk(chunk) => {
                let piece = ChunkMessage {
                    chat_id,
                    chunk,
                    complete: false,
                };
                send(socket, followers, "response", &piece)
            }
            Event::Done(answer) => {
                let done = FinalMessage {
                    answer,
                    complete: true,
                };
                send(socket, followers, "response", &done)
            }
            Event::Failed(failure) => {
                send(socket, followers, "error", &ErrorMessage::from(failure))
            }
        };
        if let Err(err) = sent {
            tracing::debug!(error = %err, chat_id, "socket gone: stopping the answer");
            started.cancel.cancel();
        }
    }
}

/// A recording may be answered: the socket is within its budget, there is a
/// model, the recording is there and within the size limit, and the server is
/// not shutting down.
fn admit_recording(
    session: &Session,
    speech: &Speech,
    audio: &Bytes,
) -> Result<InFlight, Box<dyn Coded>> {
    rate_limited(session).map_err(boxed)?;
    speech.check().map_err(boxed)?;
    if audio.is_empty() {
        return Err(boxed(FieldError::new(
            "audio",
            "envía la grabación como binario en `audio`",
        )));
    }
    speech.check_size(audio.len()).map_err(boxed)?;
    session.answers.enter().map_err(boxed)
}

async fn on_query_voice<A: Adapter>(
    socket: SocketRef<A>,
    State(agent): State<Arc<Agent>>,
    State(speech): State<Arc<Speech>>,
    Extension(session): Extension<Session>,
    TryData(data): TryData<QueryVoice>,
) {
    let QueryVoice(meta, attachment) = match data {
        Ok(request) => request,
        Err(err) => {
            let error = Refusal::InvalidBody(format!(
                "query_voice espera {{audio, chat_id?}} con el audio como binario: {err}"
            ));
            return emit_error(&socket, None, &error);
        }
    };
    let chat_id = match meta.chat_id.as_deref().map(parse_chat_id) {
        None => new_chat_id(),
        Some(Ok(id)) => id,
        Some(Err(err)) => return emit_error(&socket, meta.chat_id, &err),
    };
    let audio = if meta.audio.is_empty() {
        attachment
    } else {
        meta.audio
    };
    let _in_flight = match admit_recording(&session, &speech, &audio) {
        Ok(in_flight) => in_flight,
        Err(error) => return emit_error(&socket, Some(chat_id), error.as_ref()),
    };
    // One token for the transcription and the answer: `cancel` or a disconnect
    // stops whichever is running.
    let cancel = CancellationToken::new();
    let serial = session.register(&chat_id, cancel.clone());
    let transcription = match speech.transcribe(audio, &cancel).await {
        Ok(transcription) if transcription.text.is_empty() => Err(SpeechError::Empty),
        Ok(transcription) => Ok(agent.hear(transcription)),
        Err(err) => Err(err),
    };
    match transcription {
        Err(error) => emit_error(&socket, Some(chat_id.clone()), &error),
        Ok(transcription) => {
            let sent = socket.emit(
                "transcription",
                &TranscriptionMessage {
                    chat_id: &chat_id,
                    transcription: &transcription,
                },
            );
            let question = Question {
                query: transcription.text,
                chat_id: Some(chat_id.clone()),
                channel: Channel::Socket,
                staff_id: session.staff_id,
            };
            match agent.check(&question) {
                Err(err) => emit_error(&socket, Some(chat_id.clone()), &err),
                Ok(()) if sent.is_ok() => {
                    let followers = Followers::start(&socket, &chat_id, &question.query);
                    let started = agent.start_with(question, cancel);
                    relay(&socket, &chat_id, started, Some(followers)).await;
                }
                Ok(()) => cancel.cancel(),
            }
        }
    }
    session.finished(&chat_id, serial);
}

/// `cancel {chat_id}` stops the conversation's answer on every node when this
/// socket follows the conversation, and this socket's own answer in it in any
/// case; `cancel {}` stops every answer this socket asked for.
async fn on_cancel<A: Adapter>(
    socket: SocketRef<A>,
    State(cluster): State<Option<Arc<Cluster>>>,
    Extension(session): Extension<Session>,
    TryData(data): TryData<Cancel>,
    ack: AckSender<A>,
) {
    let chat_id = match data
        .ok()
        .and_then(|c| c.chat_id)
        .as_deref()
        .map(parse_chat_id)
    {
        None => None,
        Some(Ok(chat_id)) => Some(chat_id),
        // No answer runs under an invalid id.
        Some(Err(_)) => {
            let _ = ack.send(&CancelAck::default());
            return;
        }
    };
    session.cancel(chat_id.as_deref());
    let follows = chat_id
        .as_deref()
        .is_some_and(|id| socket.rooms().iter().any(|joined| *joined == chat_room(id)));
    if let (Some(chat_id), true) = (&chat_id, follows) {
        session.answers.cancel_chat(chat_id);
        if let Some(cluster) = cluster {
            cluster.cancel(chat_id).await;
        }
    }
    let scope = if follows { "conversation" } else { "socket" };
    let _ = ack.send(&CancelAck { chat_id, scope });
}
