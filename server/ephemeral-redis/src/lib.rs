//! Gatehouse's ephemeral store on Redis: standalone (one URL) or Redis Cluster (several
//! comma-separated URLs). Every key is put under a configurable prefix.
//!
//! This crate must not depend on HTTP or on the database stores.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use gatehouse_core::ephemeral::{Count, EphemeralError, EphemeralStore};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::time::Duration;

/// Starts a fixed window on the first hit and reports the hits and time left.
const INCREMENT_SCRIPT: &str = r"
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {hits, ttl}
";

/// The longest a first connection may take before start-up reports Redis unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to one node or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// An [`EphemeralStore`] on Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// A client for pub/sub connections. In a cluster, published messages reach every
    /// node, so subscribing through the first node sees them all.
    pubsub_client: redis::Client,
    prefix: String,
    increment: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.conn {
            Conn::Single(_) => "single",
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore").field("mode", &mode).field("prefix", &self.prefix).finish()
    }
}

fn unavailable(e: redis::RedisError) -> EphemeralError {
    EphemeralError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects to `urls` (comma-separated: several mean a cluster); keys get `prefix`.
    pub async fn connect(urls: &str, prefix: &str) -> Result<Self, EphemeralError> {
        let urls: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let first = urls.first().ok_or_else(|| EphemeralError::Unavailable("no Redis URL".into()))?;
        let pubsub_client = redis::Client::open(*first).map_err(unavailable)?;
        let timeouts = Duration::from_secs(2);
        let conn = if urls.len() == 1 {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(timeouts)
                .set_response_timeout(timeouts)
                .set_number_of_retries(1)
                .set_factor(50)
                .set_max_delay(500);
            let connect = ConnectionManager::new_with_config(pubsub_client.clone(), config);
            let manager = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| EphemeralError::Unavailable("timed out connecting to Redis".into()))?
                .map_err(unavailable)?;
            Conn::Single(manager)
        } else {
            let client = redis::cluster::ClusterClientBuilder::new(urls)
                .connection_timeout(timeouts)
                .response_timeout(timeouts)
                .build()
                .map_err(unavailable)?;
            let connect = client.get_async_connection();
            let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| EphemeralError::Unavailable("timed out connecting to Redis Cluster".into()))?
                .map_err(unavailable)?;
            Conn::Cluster(conn)
        };
        Ok(Self { conn, pubsub_client, prefix: prefix.to_owned(), increment: redis::Script::new(INCREMENT_SCRIPT) })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, EphemeralError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(unavailable)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn increment(&self, key: &str, window: Duration) -> Result<Count, EphemeralError> {
        let mut conn = self.conn.clone();
        let (hits, ttl): (u64, i64) =
            self.increment.key(self.key(key)).arg(millis(window)).invoke_async(&mut conn).await.map_err(unavailable)?;
        let resets_in = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
        Ok(Count { hits, resets_in })
    }

    async fn hits(&self, key: &str) -> Result<u64, EphemeralError> {
        let hits: Option<u64> = self.run(redis::cmd("GET").arg(self.key(key))).await?;
        Ok(hits.unwrap_or(0))
    }

    async fn put_once(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let reply: Option<String> =
            self.run(redis::cmd("SET").arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(millis(ttl))).await?;
        Ok(reply.is_some())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        self.run(redis::cmd("GETDEL").arg(self.key(key))).await
    }

    async fn cache_set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        self.run(redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl))).await
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        self.run(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn cache_delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.run::<i64>(redis::cmd("DEL").arg(self.key(key))).await.map(|_| ())
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), EphemeralError> {
        self.run::<i64>(redis::cmd("PUBLISH").arg(self.key(channel)).arg(message)).await.map(|_| ())
    }

    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EphemeralError> {
        let mut pubsub = self.pubsub_client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(self.key(channel)).await.map_err(unavailable)?;
        let stream = pubsub.into_on_message().map(|msg| msg.get_payload_bytes().to_vec());
        Ok(stream.boxed())
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
