//! The axum adapter over real HTTP, with tokens signed by a local test key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

#[path = "../../core/tests/support/mod.rs"]
mod support;

#[path = "../examples/axum-api.rs"]
#[allow(dead_code, reason = "only app() is used")]
mod example;

use gatehouse_axum::{Issuer, Verifier};
use support::{AUDIENCE, ISSUER, TestKey};

async fn serve(key: &TestKey) -> String {
    let verifier = Verifier::builder().issuer(Issuer::new(ISSUER, AUDIENCE).with_keys(key.set())).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, example::app(verifier)).await.unwrap() });
    base
}

#[tokio::test]
async fn valid_tokens_reach_handlers_and_bad_ones_get_rfc_6750_answers() {
    let key = TestKey::es256("k1");
    support::assert_rfc_6750_answers(&serve(&key).await, &key).await;
}

#[tokio::test]
async fn scopes_permissions_and_org_roles_are_enforced_with_403() {
    let key = TestKey::eddsa("k1");
    support::assert_requirements_enforced(&serve(&key).await, &key, "owner", "member").await;
}
