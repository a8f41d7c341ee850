//! The axum adapter over real HTTP, with tokens signed by a local test key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

#[path = "../../core/tests/support/mod.rs"]
mod support;

#[path = "../examples/axum-api.rs"]
#[allow(dead_code, reason = "only app() is used")]
mod example;

use gatehouse_axum::{Issuer, Verifier};
use serde_json::json;
use support::{AUDIENCE, ISSUER, TestKey, call, claims};

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
    let base = serve(&key).await;
    let mut c = claims();
    c["scope"] = json!("openid profile");
    let token = key.sign(&c);
    let (status, _, body) = call("GET", &format!("{base}/me"), Some(&token)).await;
    assert_eq!((status, body["sub"].as_str()), (200, Some("usr_1")));
    let (status, _, body) = call("GET", &format!("{base}/profile"), Some(&token)).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("openid profile")));
    assert_eq!(call("GET", &format!("{base}/health"), None).await.0, 200);

    let (status, www, _) = call("GET", &format!("{base}/me"), None).await;
    assert_eq!((status, www.as_deref()), (401, Some("Bearer")));
    let mut expired = claims();
    expired["exp"] = json!(support::now() - 3600);
    for bad in [key.sign(&expired), TestKey::es256("k1").sign(&claims()), "garbage".to_owned()] {
        let (status, www, body) = call("GET", &format!("{base}/me"), Some(&bad)).await;
        assert_eq!(status, 401);
        assert!(www.unwrap().starts_with("Bearer error=\"invalid_token\""));
        assert_eq!(body["code"], "invalid_token");
    }
}

#[tokio::test]
async fn scopes_permissions_and_org_roles_are_enforced_with_403() {
    let key = TestKey::eddsa("k1");
    let base = serve(&key).await;
    let plain = key.sign(&claims());
    let (status, www, body) = call("GET", &format!("{base}/admin"), Some(&plain)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")));
    assert_eq!(www.as_deref(), Some("Bearer error=\"insufficient_scope\", scope=\"admin\""));
    assert_eq!(call("POST", &format!("{base}/docs"), Some(&plain)).await.0, 403);
    assert_eq!(call("GET", &format!("{base}/org/settings"), Some(&plain)).await.0, 403);

    let mut org = claims();
    org["scope"] = json!("openid admin");
    org["org_id"] = json!("org_1");
    org["org_role"] = json!("owner");
    org["permissions"] = json!(["docs:write"]);
    let strong = key.sign(&org);
    assert_eq!(call("GET", &format!("{base}/admin"), Some(&strong)).await.0, 200);
    assert_eq!(call("POST", &format!("{base}/docs"), Some(&strong)).await.2["written_by"], "usr_1");
    assert_eq!(call("GET", &format!("{base}/org/settings"), Some(&strong)).await.2["role"], "owner");
    org["org_role"] = json!("member");
    assert_eq!(call("GET", &format!("{base}/org/settings"), Some(&key.sign(&org))).await.0, 403);
}
