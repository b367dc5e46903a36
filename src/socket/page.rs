//! What the chat page needs besides questions: a conversation's messages again
//! after a reload or a reconnect (`history`), and the products customers click on
//! (`product_click`, recorded in the event log with the question that led there).

use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

use std::sync::Arc;

use crate::agent::memory::parse_chat_id;
use crate::agent::{Agent, AgentError};
use crate::error::{Coded, Refusal};
use crate::events::EventLog;

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

/// `product_click`'s payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProductClick {
    chat_id: Option<String>,
    producto_id: i64,
    sku: Option<String>,
    /// The question whose answer showed the product.
    #[serde(default)]
    query: String,
}

/// Longest question kept with a click.
const MAX_CLICK_QUERY_CHARS: usize = 2000;

/// `product_click {chat_id?, producto_id, sku?, query}` records a `click_producto`
/// event; nothing is sent back unless the payload is malformed.
pub(super) async fn on_product_click<A: Adapter>(
    socket: SocketRef<A>,
    State(events): State<EventLog>,
    TryData(data): TryData<ProductClick>,
) {
    let click = match data {
        Ok(click) => click,
        Err(err) => {
            let error = Refusal::InvalidBody(format!(
                "product_click espera {{producto_id, sku?, query, chat_id?}}: {err}"
            ));
            return emit_error(&socket, None, &error);
        }
    };
    let chat_id = match click.chat_id.as_deref().map(parse_chat_id).transpose() {
        Ok(chat_id) => chat_id,
        Err(err) => return emit_error(&socket, click.chat_id, &err),
    };
    let query: String = click
        .query
        .trim()
        .chars()
        .take(MAX_CLICK_QUERY_CHARS)
        .collect();
    events.record(
        crate::events::CLICK,
        json!({
            "chat_id": chat_id,
            "producto_id": click.producto_id,
            "sku": click.sku,
            "query": query,
        }),
    );
}
