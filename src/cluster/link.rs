//! A node's one connection to Redis, shared by its commands, its publishes and its
//! subscriptions, made again (with every subscription) when Redis comes back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{AsyncCommands, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;

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

/// A message from a subscribed channel: (channel, payload).
pub type ChannelMessage = (String, Vec<u8>);

/// Where each subscribed channel's messages go.
type Routes = RwLock<HashMap<String, mpsc::Sender<ChannelMessage>>>;

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
    pub(super) async fn open(client: redis::Client) -> RedisResult<Self> {
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

    pub(super) async fn ping(&self) -> RedisResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
    }

    /// Publishes `message` on `channel`.
    pub async fn publish(&self, channel: String, message: Vec<u8>) -> RedisResult<()> {
        self.conn
            .clone()
            .publish::<_, _, Value>(channel, message)
            .await?;
        Ok(())
    }

    /// Subscribes to `channel`; its messages arrive on the receiver (`size` may
    /// wait; more are dropped with a warning).
    pub async fn subscribe(
        &self,
        channel: String,
        size: usize,
    ) -> RedisResult<mpsc::Receiver<ChannelMessage>> {
        // Routed before subscribing, so that the first message finds its way.
        let (sender, receiver) = mpsc::channel(size);
        self.channels
            .write()
            .expect("channels lock")
            .insert(channel.clone(), sender);
        if let Err(err) = self.conn.clone().subscribe(&channel).await {
            self.channels
                .write()
                .expect("channels lock")
                .remove(&channel);
            return Err(err);
        }
        Ok(receiver)
    }

    pub async fn unsubscribe(&self, channel: String) -> RedisResult<()> {
        self.channels
            .write()
            .expect("channels lock")
            .remove(&channel);
        self.conn.clone().unsubscribe(channel).await
    }

    /// How many connections (nodes) subscribe to `channel`.
    pub async fn subscribers(&self, channel: &str) -> RedisResult<u16> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}

/// Messages to Redis leave at once (followers' pieces are small and many), and on
/// Linux a connection that stopped being acknowledged is dropped, so that the link
/// reconnects.
pub(super) fn tcp_settings() -> TcpSettings {
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
