//! Conversations followed by several sockets: a socket that asks in a
//! conversation or reads its history joins the conversation's room, and the other
//! sockets in it (on every node, with Redis) get its questions and answers too.

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use tokio::sync::mpsc;

use crate::agent::wire::QuestionMessage;

/// The room of the sockets following a conversation.
pub(super) fn chat_room(chat_id: &str) -> String {
    format!("chat:{chat_id}")
}

/// A conversation's other followers, for one question and its answer. Their events
/// leave in order from a task of their own, so that the socket that asked never
/// waits for them (nor, with several nodes, for Redis); if they fall
/// [`FOLLOWER_BUFFER`] events behind, the excess is dropped for them.
pub(super) struct Followers {
    sender: mpsc::Sender<(&'static str, serde_json::Value)>,
}

/// Events a conversation's followers may be behind the socket that asked.
const FOLLOWER_BUFFER: usize = 256;

impl Followers {
    /// Makes the socket follow the conversation and tells the others about the
    /// question.
    pub(super) fn start<A: Adapter>(socket: &SocketRef<A>, chat_id: &str, query: &str) -> Self {
        socket.join(chat_room(chat_id));
        let (sender, mut events) = mpsc::channel(FOLLOWER_BUFFER);
        let to = socket.to(chat_room(chat_id));
        let chat = chat_id.to_owned();
        tokio::spawn(async move {
            while let Some((event, data)) = events.recv().await {
                if let Err(err) = to.clone().emit(event, &data).await {
                    tracing::debug!(error = %err, chat_id = chat, event, "could not reach the conversation's followers");
                }
            }
        });
        let followers = Self { sender };
        followers.send("question", &QuestionMessage { chat_id, query });
        followers
    }

    pub(super) fn send<T: Serialize + ?Sized>(&self, event: &'static str, data: &T) {
        let data = match serde_json::to_value(data) {
            Ok(data) => data,
            Err(err) => return tracing::warn!(error = %err, event, "unserialisable event"),
        };
        if self.sender.try_send((event, data)).is_err() {
            tracing::debug!(
                event,
                "the conversation's followers fell behind: event dropped for them"
            );
        }
    }
}
