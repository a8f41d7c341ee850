//! In-process ephemeral store for single-node deployments and tests.

use super::{Count, EphemeralError, EphemeralStore};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Sweep expired entries after this many writes, so memory stays bounded by live keys.
const SWEEP_EVERY: u64 = 1024;

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    hits: u64,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    writes: u64,
    channels: HashMap<String, broadcast::Sender<Vec<u8>>>,
}

impl Inner {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| e.expires_at <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn wrote(&mut self, now: Instant) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.entries.retain(|_, e| e.expires_at > now);
            self.channels.retain(|_, tx| tx.receiver_count() > 0);
        }
    }
}

/// An ephemeral store held in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner, Instant) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut inner, Instant::now())
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn increment(&self, key: &str, window: Duration) -> Result<Count, EphemeralError> {
        Ok(self.with(|inner, now| {
            let count = match inner.live(key, now) {
                Some(entry) => {
                    entry.hits += 1;
                    Count { hits: entry.hits, resets_in: entry.expires_at - now }
                }
                None => {
                    let entry = Entry { value: Vec::new(), hits: 1, expires_at: now + window };
                    inner.entries.insert(key.to_owned(), entry);
                    Count { hits: 1, resets_in: window }
                }
            };
            inner.wrote(now);
            count
        }))
    }

    async fn hits(&self, key: &str) -> Result<u64, EphemeralError> {
        Ok(self.with(|inner, now| inner.live(key, now).map_or(0, |e| e.hits)))
    }

    async fn put_once(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        Ok(self.with(|inner, now| {
            if inner.live(key, now).is_some() {
                return false;
            }
            let entry = Entry { value: value.to_vec(), hits: 0, expires_at: now + ttl };
            inner.entries.insert(key.to_owned(), entry);
            inner.wrote(now);
            true
        }))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        Ok(self.with(|inner, now| {
            inner.live(key, now)?;
            inner.entries.remove(key).map(|e| e.value)
        }))
    }

    async fn cache_set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        self.with(|inner, now| {
            let entry = Entry { value: value.to_vec(), hits: 0, expires_at: now + ttl };
            inner.entries.insert(key.to_owned(), entry);
            inner.wrote(now);
        });
        Ok(())
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        Ok(self.with(|inner, now| inner.live(key, now).map(|e| e.value.clone())))
    }

    async fn cache_delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.with(|inner, _| inner.entries.remove(key));
        Ok(())
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), EphemeralError> {
        self.with(|inner, _| {
            if let Some(tx) = inner.channels.get(channel) {
                // No receivers is not an error: nobody is listening.
                let _ = tx.send(message.to_vec());
            }
        });
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EphemeralError> {
        let rx = self.with(|inner, _| {
            inner.channels.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(256).0).subscribe()
        });
        let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|m| async move { m.ok() });
        Ok(stream.boxed())
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        Ok(())
    }
}
