//! Ephemeral-store conformance. Keys carry a random suffix so runs never collide.

use crate::ephemeral::EphemeralStore;
use futures::StreamExt;
use std::time::Duration;

fn key(name: &str) -> String {
    format!("conformance:{name}:{}", crate::ids::EventId::generate())
}

/// Long enough that a loaded machine cannot expire it mid-test.
const LONG: Duration = Duration::from_secs(30);
/// Short TTL for expiry tests, and the wait that surely outlasts it.
const SHORT: Duration = Duration::from_millis(150);
const PAST_SHORT: Duration = Duration::from_millis(400);

/// Counts rise by one per hit within a window and start again after it.
pub async fn counters_count_within_a_window_and_reset_after(store: &dyn EphemeralStore) {
    let k = key("counter");
    for expected in 1..=3 {
        let count = store.increment(&k, SHORT).await.unwrap();
        assert_eq!(count.hits, expected);
        assert!(count.resets_in <= SHORT);
    }
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.increment(&k, SHORT).await.unwrap().hits, 1);
}

/// Reading a counter does not add to it; a counter that is gone reads as zero.
pub async fn counters_are_read_without_counting(store: &dyn EphemeralStore) {
    let k = key("hits");
    assert_eq!(store.hits(&k).await.unwrap(), 0);
    store.increment(&k, LONG).await.unwrap();
    store.increment(&k, LONG).await.unwrap();
    assert_eq!(store.hits(&k).await.unwrap(), 2);
    assert_eq!(store.hits(&k).await.unwrap(), 2);
    assert_eq!(store.increment(&k, LONG).await.unwrap().hits, 3);
    store.cache_delete(&k).await.unwrap();
    assert_eq!(store.hits(&k).await.unwrap(), 0);
    let short = key("hits-short");
    store.increment(&short, SHORT).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.hits(&short).await.unwrap(), 0);
}

/// A one-time value is returned once, then gone; an expired one is never returned.
pub async fn one_time_values_are_taken_once(store: &dyn EphemeralStore) {
    let k = key("once");
    assert!(store.put_once(&k, "wert ✓".as_bytes(), LONG).await.unwrap());
    assert_eq!(store.take(&k).await.unwrap().as_deref(), Some("wert ✓".as_bytes()));
    assert_eq!(store.take(&k).await.unwrap(), None);
    let short = key("once-short");
    assert!(store.put_once(&short, b"v", SHORT).await.unwrap());
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.take(&short).await.unwrap(), None);
}

/// Of 16 concurrent takers of one value, exactly one gets it.
pub async fn parallel_takes_have_exactly_one_winner(store: &dyn EphemeralStore) {
    let k = key("race");
    assert!(store.put_once(&k, b"prize", LONG).await.unwrap());
    let results = futures::future::join_all((0..16).map(|_| store.take(&k))).await;
    let winners = results.into_iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    assert_eq!(winners, 1);
}

/// A live key cannot be overwritten by `put_once`.
pub async fn put_once_refuses_a_taken_key(store: &dyn EphemeralStore) {
    let k = key("taken");
    assert!(store.put_once(&k, b"first", LONG).await.unwrap());
    assert!(!store.put_once(&k, b"second", LONG).await.unwrap());
    assert_eq!(store.take(&k).await.unwrap().as_deref(), Some(&b"first"[..]));
}

/// Cache entries are readable until their TTL, replaceable and deletable.
pub async fn cache_entries_expire_and_can_be_deleted(store: &dyn EphemeralStore) {
    let k = key("cache");
    assert_eq!(store.cache_get(&k).await.unwrap(), None);
    store.cache_set(&k, b"one", LONG).await.unwrap();
    store.cache_set(&k, b"two", LONG).await.unwrap();
    assert_eq!(store.cache_get(&k).await.unwrap().as_deref(), Some(&b"two"[..]));
    store.cache_delete(&k).await.unwrap();
    assert_eq!(store.cache_get(&k).await.unwrap(), None);
    let short = key("cache-short");
    store.cache_set(&short, b"x", SHORT).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.cache_get(&short).await.unwrap(), None);
    store.ping().await.unwrap();
}

/// Every subscriber receives every message published after it subscribed, in order.
pub async fn published_messages_reach_every_subscriber(store: &dyn EphemeralStore) {
    let channel = key("channel");
    let mut first = store.subscribe(&channel).await.unwrap();
    let mut second = store.subscribe(&channel).await.unwrap();
    // Redis confirms a subscription asynchronously: publish until the first message lands,
    // within a bounded number of tries.
    let mut got = None;
    for _ in 0..50 {
        store.publish(&channel, b"hello").await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), first.next()).await {
            got = Some(m);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    store.publish(&channel, b"second").await.unwrap();
    // `first` may have seen duplicate "hello"s from the retry loop; skip them.
    let mut message = next_message(&mut first).await;
    while message.as_deref() == Some(&b"hello"[..]) {
        message = next_message(&mut first).await;
    }
    assert_eq!(message.as_deref(), Some(&b"second"[..]));
    let mut seen = Vec::new();
    while let Some(m) = next_message(&mut second).await {
        let done = m == b"second";
        seen.push(m);
        if done {
            break;
        }
    }
    assert_eq!(seen.last().map(Vec::as_slice), Some(&b"second"[..]));
}

async fn next_message(stream: &mut futures::stream::BoxStream<'static, Vec<u8>>) -> Option<Vec<u8>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next()).await.ok().flatten()
}
