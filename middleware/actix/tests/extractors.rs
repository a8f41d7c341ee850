//! The actix adapter over real HTTP, with tokens signed by a local test key: the same
//! expectations as the axum adapter's tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

#[path = "../../core/tests/support/mod.rs"]
mod support;

#[path = "../examples/actix-api.rs"]
#[allow(dead_code, reason = "only configure() is used")]
mod example;

use gatehouse_actix::{Issuer, Verifier};
use support::{AUDIENCE, ISSUER, TestKey};

/// Starts the example on its own thread and actix system; returns its base URL.
fn serve(key: &TestKey) -> String {
    let verifier = Verifier::builder().issuer(Issuer::new(ISSUER, AUDIENCE).with_keys(key.set())).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || actix_web::App::new().configure(example::configure(verifier.clone())))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
        });
    });
    base
}

#[tokio::test]
async fn valid_tokens_reach_handlers_and_bad_ones_get_rfc_6750_answers() {
    let key = TestKey::es256("k1");
    support::assert_rfc_6750_answers(&serve(&key), &key).await;
}

#[tokio::test]
async fn scopes_permissions_and_org_roles_are_enforced_with_403() {
    let key = TestKey::rs256("k1");
    support::assert_requirements_enforced(&serve(&key), &key, "admin", "viewer").await;
}
