//! Sends what the outbox holds. Each replica's worker claims due messages with a lease
//! (so replicas never send one message at the same time), hands each to its channel's
//! transport, and records the outcome: sent, retry later with exponential back-off, or
//! failed for good. A message is marked sent in the same step that ends its lease, so a
//! restart resends only a message whose sending was cut off mid-way (ADR 10).

use super::messenger::Messenger;
use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::messaging::{Channel, DeliveryOutcome, OutboxMessage, OutboxRecord, RenderedMessage};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;
use time::Duration;

/// Attempts before a message fails for good.
pub const MAX_ATTEMPTS: u32 = 8;
/// How long a claim lasts before another worker may take the message over.
const LEASE: Duration = Duration::seconds(60);
/// Messages claimed per round.
const BATCH: u32 = 16;

/// Why a transport could not hand a message over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Worth retrying (connection refused, timeout, 4xx SMTP reply, HTTP 429/5xx).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (5xx SMTP reply, a refused recipient, HTTP 4xx).
    #[error("{0}")]
    Permanent(String),
}

/// Hands a message to the outside world (an SMTP relay, an SMS provider, the log).
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends one message; `Ok` once the relay or provider accepted it.
    async fn send(&self, message: &OutboxMessage, content: &RenderedMessage) -> Result<(), TransportError>;

    /// Whether a message it sent must stay readable (only the development transport,
    /// whose messages the dev outbox shows). Otherwise a sent message's content — live
    /// links and codes — is erased as it is marked sent.
    fn keeps_content(&self) -> bool {
        false
    }
}

/// The delivery worker's logic.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    messenger: Messenger,
    email: Arc<dyn Transport>,
    sms: Arc<dyn Transport>,
}

/// The wait before attempt `attempts + 1`: 2, 4, 8 … seconds, at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    Duration::seconds(1i64 << attempts.clamp(1, 12)).min(Duration::hours(1))
}

impl Delivery {
    /// Wires the worker.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        messenger: Messenger,
        email: Arc<dyn Transport>,
        sms: Arc<dyn Transport>,
    ) -> Self {
        Self { store, clock, messenger, email, sms }
    }

    /// Claims and sends due messages until none is left; returns how many were tried.
    pub async fn run_once(&self) -> Result<usize, ServiceError> {
        let mut tried = 0;
        loop {
            let now = self.clock.now();
            let claimed = self.store.claim_due_messages(now, now + LEASE, BATCH).await?;
            if claimed.is_empty() {
                return Ok(tried);
            }
            tried += claimed.len();
            for record in claimed {
                self.deliver(record).await?;
            }
        }
    }

    async fn deliver(&self, record: OutboxRecord) -> Result<(), ServiceError> {
        let message = &record.message;
        let transport = match message.channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
        };
        let result = match self.messenger.open(message) {
            Ok(content) => transport.send(message, &content).await,
            Err(e) => Err(TransportError::Permanent(format!("cannot open the sealed message: {e}"))),
        };
        let now = self.clock.now();
        let (outcome, action, data) = match result {
            Ok(()) => {
                let sent = DeliveryOutcome::Sent { at: now, keep_content: transport.keeps_content() };
                (sent, "message.sent", serde_json::json!({}))
            }
            Err(TransportError::Transient(error)) if record.attempts < MAX_ATTEMPTS => {
                let next_attempt_at = now + backoff(record.attempts);
                let data = serde_json::json!({ "error": error, "attempt": record.attempts });
                (DeliveryOutcome::Retry { next_attempt_at, error }, "message.retry", data)
            }
            Err(TransportError::Transient(error) | TransportError::Permanent(error)) => {
                let data = serde_json::json!({ "error": error, "attempt": record.attempts });
                (DeliveryOutcome::Failed { error }, "message.failed", data)
            }
        };
        let mut data = data;
        data["channel"] = serde_json::Value::String(message.channel.as_str().into());
        data["kind"] = serde_json::Value::String(message.kind.as_str().into());
        let event = AuditEvent::by_system(now, action, &message.tenant_id, ("message", message.id.as_str()), data);
        match self.store.finish_delivery(&message.tenant_id, &message.id, &outcome, &event).await {
            // Another worker took the message over after our lease ran out.
            Err(crate::store::StoreError::NotFound) => Ok(()),
            other => Ok(other?),
        }
    }
}
