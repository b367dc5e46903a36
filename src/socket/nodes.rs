//! Several Tendero nodes behind one load balancer, joined by Redis
//! (`TENDERO_REDIS_URL`): Socket.IO's Redis adapter carries room broadcasts to the
//! clients of every node, and a channel of Tendero's own carries `cancel`s to the
//! node that writes the answer.
//!
//! Channels are prefixed with `TENDERO_REDIS_PREFIX`, so that several shops can
//! share one Redis: `{prefix}-socket.io-…` for the adapter, `{prefix}-cancel` for
//! cancels (the message is the sending node's id and the chat id; a node skips
//! its own, already applied).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use socketioxide_redis::drivers::redis::RedisDriver;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use tokio_util::sync::CancellationToken;

use super::Answers;

/// How long `/ready` waits for Redis.
const PING_WAIT: Duration = Duration::from_secs(1);

/// How long a node waits before subscribing again after losing Redis.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// A node's link to the others.
pub struct Nodes {
    /// This node, in the cancels it sends.
    id: String,
    client: redis::Client,
    publisher: MultiplexedConnection,
    prefix: String,
}

impl Nodes {
    /// Connects to Redis and checks that it answers. The adapter needs RESP3
    /// (Redis 6 or later): it is asked for unless the URL says otherwise.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(with_resp3(url)?)?;
        let mut publisher = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut publisher)
            .await?;
        Ok(Self {
            id: format!("{:016x}", rand::random::<u64>()),
            client,
            publisher,
            prefix: prefix.to_owned(),
        })
    }

    /// Whether Redis answers, within a second.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut publisher = self.publisher.clone();
        let ping = redis::cmd("PING");
        tokio::time::timeout(PING_WAIT, ping.query_async::<String>(&mut publisher))
            .await
            .context("Redis did not answer within a second")??;
        Ok(())
    }

    /// What Socket.IO's Redis adapter is built from (one per server).
    pub(super) async fn adapter(&self) -> anyhow::Result<RedisAdapterCtr<RedisDriver>> {
        let config = RedisAdapterConfig::new().with_prefix(format!("{}-socket.io", self.prefix));
        RedisAdapterCtr::new_with_redis_config(&self.client, config)
            .await
            .context("starting the Socket.IO Redis adapter")
    }

    fn cancel_channel(&self) -> String {
        format!("{}-cancel", self.prefix)
    }

    /// Asks the other nodes to stop the answers of `chat_id`.
    pub(super) async fn cancel(&self, chat_id: &str) {
        let mut publisher = self.publisher.clone();
        let sent = redis::cmd("PUBLISH")
            .arg(self.cancel_channel())
            .arg(format!("{} {chat_id}", self.id))
            .query_async::<i64>(&mut publisher)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, chat_id, "could not send a cancel to the other nodes");
        }
    }

    /// Subscribes to the other nodes' cancels (before returning, so that none sent
    /// from now on is missed), then applies them to this node's answers until
    /// `stop`. A lost subscription is renewed.
    pub(super) async fn follow_cancels(
        self: &Arc<Self>,
        answers: Arc<Answers>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let first = self
            .subscribe()
            .await
            .context("subscribing to the other nodes' cancels")?;
        let nodes = Arc::clone(self);
        tokio::spawn(async move {
            let mut pubsub = Some(first);
            loop {
                if let Some(subscribed) = pubsub.take() {
                    let mut messages = subscribed.into_on_message();
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            message = messages.next() => match message {
                                Some(message) => match message.get_payload::<String>() {
                                    Ok(cancel) => match cancel.split_once(' ') {
                                        Some((from, _)) if from == nodes.id => {}
                                        Some((_, chat_id)) => answers.cancel_chat(chat_id),
                                        None => tracing::debug!(cancel, "unreadable cancel"),
                                    },
                                    Err(err) => tracing::debug!(error = %err, "unreadable cancel"),
                                },
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("lost the Redis subscription to cancels: subscribing again");
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
                }
                match nodes.subscribe().await {
                    Ok(subscribed) => pubsub = Some(subscribed),
                    Err(err) => tracing::warn!(error = %err, "Redis still unreachable"),
                }
            }
        });
        Ok(())
    }

    async fn subscribe(&self) -> redis::RedisResult<PubSub> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.cancel_channel()).await?;
        Ok(pubsub)
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
