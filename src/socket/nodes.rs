//! Several Tendero nodes behind one load balancer, joined by Redis
//! (`TENDERO_REDIS_URL`): Socket.IO's Redis adapter carries room broadcasts to the
//! clients of every node, and a channel of Tendero's own carries `cancel`s to the
//! node that writes the answer.
//!
//! Channels are prefixed with `TENDERO_REDIS_PREFIX`, so that several shops can
//! share one Redis: `{prefix}-socket.io-…` for the adapter, `{prefix}-cancel` for
//! cancels (the message is the sending node's id and the chat id; a node skips
//! its own, already applied).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{AsyncCommands, IntoConnectionInfo, PushInfo, PushKind, RedisError, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Answers;

/// How long `/ready` waits for Redis.
const PING_WAIT: Duration = Duration::from_secs(1);

/// How often a node checks its link to Redis. A check on a lost link starts
/// reconnecting it, so a node finds Redis again at most this long after it is back
/// (besides the reconnections the link tries by itself as soon as it is lost).
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Retries of a connection right after losing Redis (a first attempt and these
/// three, 0.1, 0.2 and 0.4 s apart plus up to as much again at random: over within
/// about 1.5 s when Redis refuses them); the watch above takes over once they are
/// spent. They also bound how long a node tries to reach Redis at start.
const RECONNECT_RETRIES: usize = 3;
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(400);

/// How long written data may go unacknowledged before the connection is given up
/// (Linux): a Redis host that vanished without closing it is left this long after
/// the watch's next ping, not until the kernel's own timeout many minutes later.
#[cfg(target_os = "linux")]
const LOST_AFTER: Duration = Duration::from_secs(5);

/// Messages from the other nodes' cancels waiting to be applied.
const CANCEL_BUFFER: usize = 256;

/// A node's link to the others.
pub struct Nodes {
    /// This node, in the cancels it sends.
    id: String,
    link: Link,
    prefix: String,
}

impl Nodes {
    /// Connects to Redis and checks that it answers. The adapter needs RESP3
    /// (Redis 6 or later): it is asked for unless the URL says otherwise.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let info = with_resp3(url)?
            .into_connection_info()?
            .set_tcp_settings(tcp_settings());
        let client = redis::Client::open(info)?;
        let link = Link::open(client).await?;
        link.ping().await?;
        Ok(Self {
            id: format!("{:016x}", rand::random::<u64>()),
            link,
            prefix: prefix.to_owned(),
        })
    }

    /// Whether Redis answers, within a second.
    pub async fn ping(&self) -> anyhow::Result<()> {
        tokio::time::timeout(PING_WAIT, self.link.ping())
            .await
            .context("Redis did not answer within a second")??;
        Ok(())
    }

    /// What Socket.IO's Redis adapter is built from (one per server). It shares the
    /// node's link, and with it the link's reconnections.
    pub(super) fn adapter(&self) -> RedisAdapterCtr<Link> {
        let config = RedisAdapterConfig::new().with_prefix(format!("{}-socket.io", self.prefix));
        RedisAdapterCtr::new_with_driver(self.link.clone(), config)
    }

    fn cancel_channel(&self) -> String {
        format!("{}-cancel", self.prefix)
    }

    /// Asks the other nodes to stop the answers of `chat_id`.
    pub(super) async fn cancel(&self, chat_id: &str) {
        let sent = self
            .link
            .publish(
                self.cancel_channel(),
                format!("{} {chat_id}", self.id).into_bytes(),
            )
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, chat_id, "could not send a cancel to the other nodes");
        }
    }

    /// Subscribes to the other nodes' cancels (before returning, so that none sent
    /// from now on is missed) and applies them to this node's answers until `stop`;
    /// meanwhile watches the link, so that a lost one is found again.
    pub(super) async fn follow_cancels(
        self: &Arc<Self>,
        answers: Arc<Answers>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut cancels = self
            .link
            .subscribe(self.cancel_channel(), CANCEL_BUFFER)
            .await
            .context("subscribing to the other nodes' cancels")?;
        let nodes = Arc::clone(self);
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let (_, payload) = tokio::select! {
                    () = stopped.cancelled() => return,
                    message = futures::StreamExt::next(&mut cancels) => match message {
                        Some(message) => message,
                        None => return,
                    },
                };
                match std::str::from_utf8(&payload).map(|cancel| cancel.split_once(' ')) {
                    Ok(Some((from, _))) if from == nodes.id => {}
                    Ok(Some((_, chat_id))) => answers.cancel_chat(chat_id),
                    _ => tracing::debug!(?payload, "unreadable cancel"),
                }
            }
        });
        let nodes = Arc::clone(self);
        tokio::spawn(async move {
            let mut reached = true;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(WATCH_EVERY) => {}
                }
                let now = nodes.ping().await;
                match (&now, reached) {
                    (Err(err), true) => tracing::warn!(
                        error = %format!("{err:#}"),
                        "lost Redis: other nodes and tabs hear nothing from this node until it is back"
                    ),
                    (Ok(()), false) => {
                        tracing::info!(
                            "Redis is back: conversations are followed across nodes again"
                        );
                    }
                    _ => {}
                }
                reached = now.is_ok();
            }
        });
        Ok(())
    }
}

/// Where each subscribed channel's messages go.
type Routes = RwLock<HashMap<String, mpsc::Sender<ChanItem>>>;

/// A node's one connection to Redis, for its commands and its subscriptions (the
/// Socket.IO adapter's channels and the cancels). When Redis goes away the
/// connection is made again and every channel subscribed again; messages
/// published meanwhile are lost, as Redis pub/sub keeps none.
#[derive(Clone)]
pub struct Link {
    conn: ConnectionManager,
    channels: Arc<Routes>,
}

impl Link {
    async fn open(client: redis::Client) -> redis::RedisResult<Self> {
        let channels: Arc<Routes> = Arc::default();
        let routes = Arc::clone(&channels);
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                deliver(&routes, push);
                Ok::<(), Infallible>(())
            })
            .set_automatic_resubscription()
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(Self { conn, channels })
    }

    async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
    }
}

/// Messages to Redis leave at once (followers' pieces are small and many), and on
/// Linux a connection that stopped being acknowledged is dropped, so that the link
/// reconnects.
fn tcp_settings() -> TcpSettings {
    let settings = TcpSettings::default().set_nodelay(true);
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(LOST_AFTER);
    settings
}

/// Hands a message from Redis to its channel's subscriber, without waiting: a
/// subscriber that has fallen that far behind loses it.
fn deliver(channels: &Routes, push: PushInfo) {
    match push.kind {
        PushKind::Message => {}
        PushKind::Disconnection => {
            tracing::warn!("the connection to Redis closed: reconnecting");
            return;
        }
        _ => return,
    }
    let mut data = push.data.into_iter();
    let (Some(Value::BulkString(channel)), Some(Value::BulkString(message))) =
        (data.next(), data.next())
    else {
        return;
    };
    let Ok(channel) = String::from_utf8(channel) else {
        return;
    };
    let channels = channels.read().expect("channels lock");
    if let Some(subscriber) = channels.get(&channel)
        && let Err(err) = subscriber.try_send((channel.clone(), message))
    {
        tracing::warn!(channel, error = %err, "a Redis message was dropped");
    }
}

impl Driver for Link {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, Value>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        // Routed before subscribing, so that the first message finds its way.
        let (sender, receiver) = mpsc::channel(size);
        self.channels
            .write()
            .expect("channels lock")
            .insert(chan.clone(), sender);
        if let Err(err) = self.conn.clone().subscribe(&chan).await {
            self.channels.write().expect("channels lock").remove(&chan);
            return Err(err);
        }
        Ok(MessageStream::new(receiver))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.channels.write().expect("channels lock").remove(&chan);
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}

/// The URL with `protocol=resp3` unless it names a protocol; RESP2 is refused.
fn with_resp3(url: &str) -> anyhow::Result<String> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let protocol = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("protocol="));
    match protocol {
        None if query.is_empty() && url.contains('?') => Ok(format!("{url}protocol=resp3")),
        None if url.contains('?') => Ok(format!("{url}&protocol=resp3")),
        None => Ok(format!("{url}?protocol=resp3")),
        Some(p) if p.eq_ignore_ascii_case("resp3") || p == "3" => Ok(url.to_owned()),
        Some(p) => anyhow::bail!(
            "TENDERO_REDIS_URL asks for protocol={p}: the Socket.IO Redis adapter needs RESP3 \
             (leave `protocol` out, or set protocol=resp3)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::with_resp3;

    #[test]
    fn redis_urls_ask_for_resp3() {
        assert_eq!(
            with_resp3("redis://127.0.0.1:6379").unwrap(),
            "redis://127.0.0.1:6379?protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h:6379/2?").unwrap(),
            "redis://h:6379/2?protocol=resp3"
        );
        assert_eq!(
            with_resp3("rediss://h/0?insecure=true").unwrap(),
            "rediss://h/0?insecure=true&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h?protocol=resp3").unwrap(),
            "redis://h?protocol=resp3"
        );
        let refused = with_resp3("redis://h?protocol=resp2").unwrap_err();
        assert!(refused.to_string().contains("RESP3"), "{refused}");
    }
}
