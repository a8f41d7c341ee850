//! Retention: what ended is deleted a while later (ADR 23). Sessions that ended —
//! expired, or were revoked — go with their refresh tokens, and one-time secrets that
//! expired, a week on; the delivery records of sent or failed messages a month after
//! they were queued (ADR 25); in short transactions of a bounded number of rows, in
//! every tenant. Every replica may run it: a batch deletes what is there.

use crate::clock::Clock;
use crate::error::ServiceError;
use crate::store::{Store, StoreError};
use std::sync::Arc;

/// How long an ended (expired or revoked) session and its refresh tokens, and an expired
/// one-time secret, are kept before the sweep deletes them: long enough to answer "why
/// was I signed out" from the session list, short enough that spent tokens do not pile
/// up. (The audit log keeps the events for good.)
pub const RETENTION: time::Duration = time::Duration::days(7);
/// How long the delivery record of a message that was sent or given up is kept, from
/// when it was queued (ADR 25): the admin API's message list answers "did my user get
/// the email" for a month; the audit log keeps the `message.sent` and `message.failed`
/// events for good.
pub const DELIVERY_HISTORY: time::Duration = time::Duration::days(30);
/// Rows deleted per transaction of a sweep.
const SWEEP_BATCH: u32 = 1_000;
/// Transactions per sweep at most; what is left waits for the next one.
const SWEEP_BATCHES: u32 = 100;

/// The sweeps, over the store, at the clock's time.
#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Retention {
    /// The sweeps over `store`, cutting off at `clock`'s time less [`RETENTION`] (or
    /// [`DELIVERY_HISTORY`]).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Deletes the sessions that ended more than [`RETENTION`] ago, with their refresh
    /// tokens; how many rows went.
    pub async fn sweep_ended_sessions(&self) -> Result<u64, ServiceError> {
        let ended_before = self.clock.now() - RETENTION;
        in_batches(|| self.store.sweep_ended_sessions(ended_before, SWEEP_BATCH)).await
    }

    /// Deletes the one-time secrets (links, codes, challenges) that expired more than
    /// [`RETENTION`] ago, consumed or not; how many went. A link or code of a deleted
    /// secret is unknown, which is answered as an expired one is.
    pub async fn sweep_expired_one_time_secrets(&self) -> Result<u64, ServiceError> {
        let expired_before = self.clock.now() - RETENTION;
        in_batches(|| self.store.sweep_expired_one_time(expired_before, SWEEP_BATCH)).await
    }

    /// Deletes the outbox messages queued more than [`DELIVERY_HISTORY`] ago that were
    /// sent or given up; how many went. A message still waiting for an attempt stays.
    pub async fn sweep_finished_messages(&self) -> Result<u64, ServiceError> {
        let queued_before = self.clock.now() - DELIVERY_HISTORY;
        in_batches(|| self.store.sweep_finished_messages(queued_before, SWEEP_BATCH)).await
    }
}

/// Runs one batch of a sweep after another until a batch deletes fewer than
/// [`SWEEP_BATCH`] rows (nothing is left), at most [`SWEEP_BATCHES`] times; the rows
/// deleted in all.
async fn in_batches<F, B>(mut batch: F) -> Result<u64, ServiceError>
where
    F: FnMut() -> B,
    B: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut swept = 0;
    for _ in 0..SWEEP_BATCHES {
        let deleted = batch().await?;
        swept += deleted;
        if deleted < u64::from(SWEEP_BATCH) {
            break;
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches run until one comes back short, and never more than the cap per sweep.
    #[tokio::test]
    async fn a_sweep_stops_at_a_short_batch_or_the_cap() {
        let mut left = [1_000, 1_000, 250].into_iter();
        let swept = in_batches(|| std::future::ready(Ok(left.next().unwrap_or(0)))).await.unwrap();
        assert_eq!(swept, 2_250);
        let mut calls = 0;
        let swept = in_batches(|| {
            calls += 1;
            std::future::ready(Ok(u64::from(SWEEP_BATCH)))
        })
        .await
        .unwrap();
        assert_eq!((calls, swept), (SWEEP_BATCHES, u64::from(SWEEP_BATCH * SWEEP_BATCHES)));
        let failed = in_batches(|| std::future::ready(Err(StoreError::Backend("down".into())))).await;
        assert!(failed.is_err());
    }
}
