//! What each socket carries (its question budget, the answers it asked for) and
//! the answers running on this node: by conversation, for `cancel`, and counted,
//! so that a shutdown lets them finish before it closes every connection.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use socketioxide::SocketIo;
use socketioxide::adapter::LocalAdapter;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClusterAdapter;
use crate::config::LimitSettings;
use crate::error::Refusal;

/// How long a shutdown waits for connections to close once asked to.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What a socket carries between its events.
#[derive(Clone)]
pub(super) struct Session {
    pub(super) staff_id: Option<i64>,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The budget of its other events (clicks, ratings): the API's per-client limit.
    events_limiter: Arc<DefaultDirectRateLimiter>,
    /// The answers running on this socket, by chat id, with a serial so that a
    /// finished answer never removes a newer one for the same chat.
    running: Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>,
    pub(super) answers: Arc<Answers>,
}

/// The answers in flight on every socket of this node: counted, so that a
/// shutdown lets them finish, and by conversation, for `cancel`.
pub(super) struct Answers {
    running: watch::Sender<usize>,
    closing: AtomicBool,
    by_chat: Mutex<HashMap<String, Vec<(u64, CancellationToken)>>>,
}

/// One answer counted in [`Answers`]; dropping it counts it out.
pub(super) struct InFlight(Arc<Answers>);

impl Answers {
    pub(super) fn new() -> Self {
        Self {
            running: watch::channel(0).0,
            closing: AtomicBool::new(false),
            by_chat: Mutex::default(),
        }
    }

    /// Stops every answer of `chat_id` on this node.
    pub(super) fn cancel_chat(&self, chat_id: &str) {
        let by_chat = self.by_chat.lock().expect("by_chat lock");
        for (_, token) in by_chat.get(chat_id).into_iter().flatten() {
            token.cancel();
        }
    }

    /// Counts an answer in, unless the server is shutting down. Counting comes
    /// before the check, so that [`Sockets::close`] either sees this answer or
    /// this answer sees the shutdown.
    pub(super) fn enter(self: &Arc<Self>) -> Result<InFlight, Refusal> {
        self.running.send_modify(|n| *n += 1);
        let entered = InFlight(self.clone());
        if self.closing.load(Ordering::SeqCst) {
            return Err(Refusal::ShuttingDown);
        }
        Ok(entered)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.running.send_modify(|n| *n -= 1);
    }
}

/// The Socket.IO server, on one node or on several.
#[derive(Clone)]
pub(super) enum Io {
    Alone(SocketIo<LocalAdapter>),
    Cluster(SocketIo<ClusterAdapter>),
}

impl Io {
    async fn close(&self) {
        match self {
            Self::Alone(io) => io.close().await,
            Self::Cluster(io) => io.close().await,
        }
    }
}

/// The Socket.IO side of a running server, for its shutdown.
#[derive(Clone)]
pub struct Sockets {
    pub(super) io: Io,
    pub(super) answers: Arc<Answers>,
    /// Stops following the other nodes' cancels and watching the link to Redis.
    pub(super) stop: CancellationToken,
}

impl Sockets {
    /// From now on new questions are refused with `shutting_down`.
    pub fn stop_accepting(&self) {
        self.answers.closing.store(true, Ordering::SeqCst);
    }

    /// Refuses new questions, waits up to `grace` for the answers in flight, then
    /// closes every connection at the transport: clients see the transport close
    /// (not a server disconnect) and reconnect on their own.
    pub async fn close(&self, grace: Duration) {
        self.stop_accepting();
        let mut running = self.answers.running.subscribe();
        if tokio::time::timeout(grace, running.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                answers = *running.borrow(),
                "grace period over: closing Socket.IO connections with answers still running"
            );
        }
        if tokio::time::timeout(CLOSE_WAIT, self.io.close())
            .await
            .is_err()
        {
            tracing::warn!("Socket.IO connections still closing: leaving them to the exit");
        }
        self.stop.cancel();
    }
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Session {
    pub(super) fn new(
        staff_id: Option<i64>,
        settings: &LimitSettings,
        answers: Arc<Answers>,
    ) -> Self {
        let per_minute =
            NonZeroU32::new(settings.chat_rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.chat_rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        let events_per_second =
            NonZeroU32::new(settings.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let events_burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            staff_id,
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_minute(per_minute).allow_burst(burst),
            )),
            events_limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(events_per_second).allow_burst(events_burst),
            )),
            running: Arc::default(),
            answers,
        }
    }

    /// Notes a running answer; a newer one for the same chat on this socket
    /// replaces (and stops) it.
    pub(super) fn register(&self, chat_id: &str, token: CancellationToken) -> u64 {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        self.answers
            .by_chat
            .lock()
            .expect("by_chat lock")
            .entry(chat_id.to_owned())
            .or_default()
            .push((serial, token.clone()));
        let earlier = self
            .running
            .lock()
            .expect("running lock")
            .insert(chat_id.to_owned(), (serial, token));
        if let Some((_, token)) = earlier {
            token.cancel();
        }
        serial
    }

    pub(super) fn finished(&self, chat_id: &str, serial: u64) {
        {
            let mut running = self.running.lock().expect("running lock");
            if running.get(chat_id).is_some_and(|(s, _)| *s == serial) {
                running.remove(chat_id);
            }
        }
        let mut by_chat = self.answers.by_chat.lock().expect("by_chat lock");
        if let Some(answers) = by_chat.get_mut(chat_id) {
            answers.retain(|(s, _)| *s != serial);
            if answers.is_empty() {
                by_chat.remove(chat_id);
            }
        }
    }

    pub(super) fn cancel(&self, chat_id: Option<&str>) {
        let running = self.running.lock().expect("running lock");
        for (id, (_, token)) in running.iter() {
            if chat_id.is_none_or(|wanted| wanted == id) {
                token.cancel();
            }
        }
    }
}

pub(super) fn rate_limited(session: &Session) -> Result<(), Refusal> {
    over_budget(&session.limiter)
}

/// A click or a rating may be recorded: the socket is within its events' budget.
pub(super) fn events_rate_limited(session: &Session) -> Result<(), Refusal> {
    over_budget(&session.events_limiter)
}

fn over_budget(limiter: &DefaultDirectRateLimiter) -> Result<(), Refusal> {
    limiter.check().map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Refusal::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        }
    })
}
