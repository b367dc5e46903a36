//! Socket.IO across nodes: its Redis adapter runs over the node's [`Link`] to
//! Redis (see [`crate::cluster`]), so that room broadcasts reach the clients of
//! every node, with the link's reconnections.

use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

use crate::cluster::{Cluster, Link};

/// What Socket.IO's Redis adapter is built from (one per server).
pub(super) fn adapter(cluster: &Cluster) -> RedisAdapterCtr<Link> {
    let config = RedisAdapterConfig::new().with_prefix(format!("{}-socket.io", cluster.prefix()));
    RedisAdapterCtr::new_with_driver(cluster.link().clone(), config)
}

impl Driver for Link {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        Link::publish(self, chan, val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        Ok(MessageStream::new(Link::subscribe(self, chan, size).await?))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        Link::unsubscribe(self, chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        self.subscribers(chan).await
    }
}
