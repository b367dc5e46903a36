//! What the chat page needs besides questions: a conversation's messages again
//! after a reload or a reconnect (`history`), the products customers click on
//! (`product_click`) and their ratings of answers (`feedback`), checked against what
//! the answer showed and recorded in the event log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Extension, SocketRef, State, TryData};

use crate::agent::memory::parse_chat_id;
use crate::agent::{Agent, AgentError};
use crate::error::{Coded, Refusal};
use crate::learning::{Click, Intake, Origin, Rating, Sender};

use super::session::{Session, events_rate_limited};
use super::{chat_room, emit_error};

/// `history`'s payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryRequest {
    chat_id: String,
}

/// One message as the page shows it.
#[derive(Debug, Serialize)]
struct PageMessage {
    /// The message's number: an answer's `respuesta_id`.
    id: i64,
    /// `usuario` (the customer) or `asistente`.
    role: String,
    content: String,
    /// `completo`, `parcial`, `cancelado` or `error`.
    state: String,
    sources: Option<serde_json::Value>,
}

/// `history {chat_id}` answers `history {chat_id, messages}` (none for a
/// conversation that does not exist yet), and the socket follows the conversation
/// from then on. The chat id is the key: the page keeps the random one it chose.
pub(super) async fn on_history<A: Adapter>(
    socket: SocketRef<A>,
    State(agent): State<Arc<Agent>>,
    TryData(data): TryData<HistoryRequest>,
) {
    let chat_id = match data {
        Ok(request) => parse_chat_id(&request.chat_id),
        Err(err) => {
            let refusal = Refusal::InvalidBody(format!("history espera {{chat_id}}: {err}"));
            return emit_error(&socket, None, &refusal);
        }
    };
    let chat_id = match chat_id {
        Ok(chat_id) => chat_id,
        Err(error) => return emit_error(&socket, None, &error),
    };
    // Following before reading: every event of the conversation from now on reaches
    // this socket, so an answer under way that the history misses still ends here
    // (the page then reads the history again).
    socket.join(chat_room(&chat_id));
    let messages = match agent.memory().conversation(&chat_id).await {
        Ok(conversation) => conversation
            .mensajes
            .into_iter()
            .filter(|m| !m.contenido.is_empty())
            .map(|m| PageMessage {
                id: m.id,
                role: m.rol,
                content: m.contenido,
                state: m.estado,
                sources: m.fuentes,
            })
            .collect(),
        Err(AgentError::NotFound(_)) => Vec::new(),
        Err(error) => return emit_error(&socket, Some(chat_id), &error as &dyn Coded),
    };
    let _ = socket.emit(
        "history",
        &json!({"chat_id": chat_id, "messages": messages}),
    );
}

/// `product_click`'s payload: the answer that showed the product, the product, and
/// its place among the answer's sources (from 1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProductClick {
    respuesta_id: i64,
    producto_id: i64,
    posicion: u32,
}

/// `feedback`'s payload: whether an answer was useful, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Feedback {
    respuesta_id: i64,
    util: bool,
    comentario: Option<String>,
}

/// Who a socket's events are counted as: its staff member, or the address it
/// connected from (its session id when that is unknown).
fn client_key<A: Adapter>(socket: &SocketRef<A>, session: &Session) -> String {
    if let Some(staff) = session.staff_id {
        return format!("user:{staff}");
    }
    socket
        .req_parts()
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| format!("ip:{}", addr.ip()))
        .unwrap_or_else(|| format!("socket:{}", socket.id))
}

/// A click's or a rating's payload, if the socket is within its budget and the payload
/// reads as `expected`; otherwise the `error` is sent and `None` returned.
fn admit<A: Adapter, T>(
    socket: &SocketRef<A>,
    session: &Session,
    data: Result<T, ParserError>,
    expected: &str,
) -> Option<T> {
    if let Err(refusal) = events_rate_limited(session) {
        emit_error(socket, None, &refusal);
        return None;
    }
    data.map_err(|err| {
        emit_error(
            socket,
            None,
            &Refusal::InvalidBody(format!("{expected}: {err}")),
        );
    })
    .ok()
}

/// `product_click {respuesta_id, producto_id, posicion}` records a click on a card
/// of an answer; nothing is sent back unless it is refused (`error`).
pub(super) async fn on_product_click<A: Adapter>(
    socket: SocketRef<A>,
    State(intake): State<Arc<Intake>>,
    Extension(session): Extension<Session>,
    TryData(data): TryData<ProductClick>,
) {
    let expected = "product_click espera {respuesta_id, producto_id, posicion}";
    let Some(click) = admit(&socket, &session, data, expected) else {
        return;
    };
    let click = Click {
        origin: Origin::Answer(click.respuesta_id),
        producto_id: click.producto_id,
        posicion: click.posicion,
    };
    let key = client_key(&socket, &session);
    if let Err(error) = intake.click(click, &from_socket(&key)).await {
        emit_error(&socket, None, &error);
    }
}

/// `feedback {respuesta_id, util, comentario?}` records a rating of an answer;
/// nothing is sent back unless it is refused (`error`).
pub(super) async fn on_feedback<A: Adapter>(
    socket: SocketRef<A>,
    State(intake): State<Arc<Intake>>,
    Extension(session): Extension<Session>,
    TryData(data): TryData<Feedback>,
) {
    let expected = "feedback espera {respuesta_id, util, comentario?}";
    let Some(feedback) = admit(&socket, &session, data, expected) else {
        return;
    };
    let rating = Rating {
        respuesta_id: feedback.respuesta_id,
        util: feedback.util,
        comentario: feedback.comentario,
    };
    let key = client_key(&socket, &session);
    if let Err(error) = intake.rate(rating, &from_socket(&key)).await {
        emit_error(&socket, None, &error);
    }
}

fn from_socket(key: &str) -> Sender<'_> {
    Sender {
        canal: "socket",
        key,
    }
}
