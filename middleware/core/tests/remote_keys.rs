//! The verifier against a local issuer that speaks discovery and JWKS over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

mod support;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use gatehouse_verify::{Issuer, Verifier, VerifyError};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{AUDIENCE, TestKey, claims};

/// A fake issuer: its published keys can change, it counts JWKS fetches, and it can go
/// down (answers 503) without closing its port.
#[derive(Clone, Default)]
struct FakeIssuer {
    jwks: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    max_age: Arc<AtomicUsize>,
    issuer: Arc<Mutex<String>>,
}

impl FakeIssuer {
    async fn start() -> (Self, String) {
        let fake = Self::default();
        fake.max_age.store(300, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/t/acme", listener.local_addr().unwrap());
        *fake.issuer.lock().unwrap() = base.clone();
        let app = axum::Router::new()
            .route("/t/acme/.well-known/openid-configuration", get(discovery))
            .route("/t/acme/.well-known/jwks.json", get(jwks))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, base)
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn discovery(State(fake): State<FakeIssuer>) -> impl IntoResponse {
    if fake.down.load(Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({}))).into_response();
    }
    let issuer = fake.issuer.lock().unwrap().clone();
    Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/.well-known/jwks.json")})).into_response()
}

async fn jwks(State(fake): State<FakeIssuer>) -> impl IntoResponse {
    if fake.down.load(Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({}))).into_response();
    }
    fake.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = fake.jwks.lock().unwrap().clone();
    let cache = format!("public, max-age={}", fake.max_age.load(Ordering::SeqCst));
    ([(axum::http::header::CACHE_CONTROL, cache)], Json(json!({ "keys": keys }))).into_response()
}

fn claims_for(issuer: &str) -> Value {
    let mut c = claims();
    c["iss"] = json!(issuer);
    c
}

fn verifier(issuer: &str, refetch: Duration) -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(issuer, AUDIENCE))
        .min_refetch_interval(refetch)
        .leeway(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn keys_are_discovered_cached_and_rotation_is_picked_up_without_restart() {
    let (fake, issuer) = FakeIssuer::start().await;
    let (old, new) = (TestKey::es256("old"), TestKey::eddsa("new"));
    fake.publish(&[&old]);
    let v = verifier(&issuer, Duration::from_millis(200));
    let c = claims_for(&issuer);
    assert_eq!(v.verify(&old.sign(&c)).await.unwrap().sub, "usr_1");
    let mut other = claims_for(&issuer);
    other["jti"] = json!("tok_2");
    v.verify(&old.sign(&other)).await.unwrap();
    assert_eq!(fake.fetches(), 1, "the second token must use the cached keys");

    // Rotation: the issuer publishes the next key; a token it signs is accepted at once
    // (unknown kid → one refetch), and the old key keeps working.
    fake.publish(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(v.verify(&new.sign(&c)).await.unwrap().sub, "usr_1");
    assert_eq!(fake.fetches(), 2);
    v.verify(&old.sign(&other)).await.unwrap();
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval_and_fail_closed() {
    let (fake, issuer) = FakeIssuer::start().await;
    let key = TestKey::es256("k1");
    fake.publish(&[&key]);
    let v = verifier(&issuer, Duration::from_secs(60));
    let c = claims_for(&issuer);
    v.verify(&key.sign(&c)).await.unwrap();
    let before = fake.fetches();
    for n in 0..20 {
        let token = key.sign_with(&c, |h| h.kid = Some(format!("garbage-{n}")));
        assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::UnknownKey);
    }
    assert!(fake.fetches() <= before + 1, "{} fetches for 20 unknown kids", fake.fetches() - before);
}

#[tokio::test]
async fn an_unreachable_issuer_keeps_known_keys_working_and_unknown_keys_failing() {
    let (fake, issuer) = FakeIssuer::start().await;
    let (known, unknown) = (TestKey::es256("known"), TestKey::es256("unknown"));
    fake.publish(&[&known]);
    let v = Verifier::builder()
        .issuer(Issuer::new(&issuer, AUDIENCE))
        .min_refetch_interval(Duration::from_millis(50))
        .cache_capacity(0)
        .build()
        .unwrap();
    let c = claims_for(&issuer);
    v.verify(&known.sign(&c)).await.unwrap();
    fake.down.store(true, Ordering::SeqCst);
    fake.max_age.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        assert_eq!(v.verify(&known.sign(&c)).await.unwrap().sub, "usr_1");
        assert_eq!(v.verify(&unknown.sign(&c)).await.unwrap_err(), VerifyError::UnknownKey);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

#[tokio::test]
async fn an_issuer_never_reached_fails_closed_with_unavailable() {
    let (fake, issuer) = FakeIssuer::start().await;
    let key = TestKey::es256("k1");
    fake.publish(&[&key]);
    fake.down.store(true, Ordering::SeqCst);
    let v = verifier(&issuer, Duration::from_secs(30));
    let err = v.verify(&key.sign(&claims_for(&issuer))).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    // The issuer comes back: the verifier recovers within about a second.
    fake.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    v.verify(&key.sign(&claims_for(&issuer))).await.unwrap();
}

#[tokio::test]
async fn stale_keys_are_refreshed_in_the_background_per_cache_control() {
    let (fake, issuer) = FakeIssuer::start().await;
    let key = TestKey::es256("k1");
    fake.publish(&[&key]);
    fake.max_age.store(1, Ordering::SeqCst);
    let v = Verifier::builder()
        .issuer(Issuer::new(&issuer, AUDIENCE))
        .min_refetch_interval(Duration::from_millis(100))
        .cache_capacity(0)
        .build()
        .unwrap();
    let c = claims_for(&issuer);
    v.verify(&key.sign(&c)).await.unwrap();
    v.verify(&key.sign(&c)).await.unwrap();
    assert_eq!(fake.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    v.verify(&key.sign(&c)).await.unwrap(); // served from the stale keys, refresh spawned
    for _ in 0..50 {
        if fake.fetches() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.fetches(), 2);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_not_trusted() {
    let (fake, issuer) = FakeIssuer::start().await;
    let key = TestKey::es256("k1");
    fake.publish(&[&key]);
    *fake.issuer.lock().unwrap() = "https://evil.example/t/acme".into();
    let v = verifier(&issuer, Duration::from_secs(30));
    assert!(v.verify(&key.sign(&claims_for(&issuer))).await.unwrap_err().is_unavailable());
}

#[tokio::test]
async fn tokens_of_untrusted_issuers_are_refused_without_any_fetch() {
    let (fake, issuer) = FakeIssuer::start().await;
    let key = TestKey::es256("k1");
    fake.publish(&[&key]);
    let v = verifier(&issuer, Duration::from_secs(30));
    let mut c = claims_for(&issuer);
    c["iss"] = json!("http://127.0.0.1:9/t/evil");
    assert_eq!(v.verify(&key.sign(&c)).await.unwrap_err(), VerifyError::WrongIssuer);
    assert_eq!(fake.fetches(), 0);
}

#[tokio::test]
async fn verified_tokens_are_cached_until_they_expire() {
    let key = TestKey::es256("k1");
    let v = Verifier::builder()
        .issuer(Issuer::new(support::ISSUER, AUDIENCE).with_keys(key.set()))
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let mut c = claims();
    c["exp"] = json!(support::now() + 1);
    let token = key.sign(&c);
    let first = v.verify(&token).await.unwrap();
    let second = v.verify(&token).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the second verify should be a cache hit");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::Expired);
}
