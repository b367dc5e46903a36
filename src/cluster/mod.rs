//! Several Tendero nodes behind one load balancer, joined by Redis
//! (`TENDERO_REDIS_URL`): each node keeps one [`Link`] to Redis, over which
//! Socket.IO's Redis adapter carries room broadcasts to the clients of every node
//! (see the Socket.IO transport) and a channel of Tendero's own carries `cancel`s
//! to the node that writes the answer.
//!
//! Channels are prefixed with `TENDERO_REDIS_PREFIX`, so that several shops can
//! share one Redis: `{prefix}-socket.io-…` for the adapter, `{prefix}-cancel` for
//! cancels (the message is the sending node's id and the chat id; a node skips
//! its own, already applied).

mod link;

pub use link::{ChannelMessage, Link};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::IntoConnectionInfo;
use tokio_util::sync::CancellationToken;

use crate::config::RedisSettings;
use link::tcp_settings;

/// How long `/ready` waits for Redis.
const PING_WAIT: Duration = Duration::from_secs(1);

/// How often a node checks its link to Redis. A check on a lost link starts
/// reconnecting it, so a node finds Redis again at most this long after it is back
/// (besides the reconnections the link tries by itself as soon as it is lost).
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Messages from the other nodes' cancels waiting to be applied.
const CANCEL_BUFFER: usize = 256;

/// A node's link to the others.
pub struct Cluster {
    /// This node, in the cancels it sends.
    id: String,
    link: Link,
    prefix: String,
}

impl Cluster {
    /// Connects to Redis and checks that it answers. The adapter needs RESP3
    /// (Redis 6 or later): it is asked for unless the URL says otherwise.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let url = settings
            .redis_url
            .as_deref()
            .context("no Redis configured (TENDERO_REDIS_URL)")?;
        let info = with_resp3(url)?
            .into_connection_info()?
            .set_tcp_settings(tcp_settings());
        let client = redis::Client::open(info)?;
        let link = Link::open(client).await?;
        link.ping().await?;
        Ok(Self {
            id: format!("{:016x}", rand::random::<u64>()),
            link,
            prefix: settings.redis_prefix.clone(),
        })
    }

    /// Whether Redis answers, within a second.
    pub async fn ping(&self) -> anyhow::Result<()> {
        tokio::time::timeout(PING_WAIT, self.link.ping())
            .await
            .context("Redis did not answer within a second")??;
        Ok(())
    }

    /// The node's link, which Socket.IO's Redis adapter shares (and with it the
    /// link's reconnections).
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// What this shop's channels start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn cancel_channel(&self) -> String {
        format!("{}-cancel", self.prefix)
    }

    /// Asks the other nodes to stop the answers of `chat_id`.
    pub async fn cancel(&self, chat_id: &str) {
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
    /// from now on is missed) and hands each chat id to `apply` until `stop`;
    /// meanwhile watches the link, so that a lost one is found again.
    pub async fn follow_cancels(
        self: &Arc<Self>,
        apply: impl Fn(&str) + Send + 'static,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut cancels = self
            .link
            .subscribe(self.cancel_channel(), CANCEL_BUFFER)
            .await
            .context("subscribing to the other nodes' cancels")?;
        let cluster = Arc::clone(self);
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let (_, payload) = tokio::select! {
                    () = stopped.cancelled() => return,
                    message = cancels.recv() => match message {
                        Some(message) => message,
                        None => return,
                    },
                };
                match std::str::from_utf8(&payload).map(|cancel| cancel.split_once(' ')) {
                    Ok(Some((from, _))) if from == cluster.id => {}
                    Ok(Some((_, chat_id))) => apply(chat_id),
                    _ => tracing::debug!(?payload, "unreadable cancel"),
                }
            }
        });
        let cluster = Arc::clone(self);
        tokio::spawn(async move {
            let mut reached = true;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(WATCH_EVERY) => {}
                }
                let now = cluster.ping().await;
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
