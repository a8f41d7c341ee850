//! Cross-device sign-in by QR code with two clients (different user agents and
//! addresses), on SQLite and Postgres: approve, deny, expiry, reuse, long polling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::{Value, json};
use support::{Backend, Reply, TestServer};

on_both_backends!(
    a_signed_in_device_approves_and_the_other_gets_tokens_once,
    a_denied_request_yields_nothing,
    expired_and_foreign_requests_are_refused,
    long_polling_returns_as_soon_as_the_request_is_approved,
);

type Tenant = support::AuthTenant;

/// Device A: a kiosk behind a trusted proxy, so its address is the one it claims.
async fn device_a(s: &TestServer, t: &Tenant, route: &str, body: Value) -> Reply {
    s.send(
        s.client
            .post(s.url(&format!("/t/{}/auth/{route}", t.slug)))
            .header("user-agent", "KioskBrowser/1.0 (TV)")
            .header("x-forwarded-for", "198.51.100.7")
            .json(&body),
    )
    .await
}

/// Device B: the signed-in phone.
async fn device_b(s: &TestServer, t: &Tenant, route: &str, access: &str, body: Value) -> Reply {
    s.send(
        s.client
            .post(s.url(&format!("/t/{}/auth/{route}", t.slug)))
            .bearer_auth(access)
            .header("user-agent", "Phone/2.0")
            .json(&body),
    )
    .await
}

async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, &[("GATEHOUSE_TRUSTED_PROXIES", "127.0.0.1")]).await
}

async fn phone(s: &TestServer, t: &Tenant) -> String {
    let r = s.auth(t, "signup", json!({"email": "phone@example.com", "password": "violet kettle drums"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn a_signed_in_device_approves_and_the_other_gets_tokens_once(backend: Backend) {
    let s = server(backend).await;
    let t = s.auth_tenant("qr", Value::Null).await;
    let access = phone(&s, &t).await;
    let started = device_a(&s, &t, "qr/start", json!({})).await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let (poll, code) = (started.body["poll_token"].clone(), started.body["qr_code"].as_str().unwrap().to_owned());
    assert!(started.body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(started.body["qr_url"].as_str().unwrap().ends_with(&format!("/t/{}/qr?code={code}", t.slug)));
    // Pending until decided.
    let pending = device_a(&s, &t, "qr/poll", json!({"poll_token": poll})).await;
    assert_eq!((pending.status, pending.body["status"].clone()), (202, json!("pending")));
    // The phone sees where the request comes from; an anonymous caller sees nothing.
    s.auth(&t, "qr/inspect", json!({"code": code})).await.assert_problem(401, "invalid_token");
    let origin = device_b(&s, &t, "qr/inspect", &access, json!({"code": code})).await;
    assert_eq!(origin.status, 200, "{:?}", origin.body);
    assert_eq!(origin.body["user_agent"], "KioskBrowser/1.0 (TV)");
    assert_eq!(origin.body["ip"], "198.51.100.7");
    assert!(origin.body["requested_at"].is_string());
    assert_eq!(device_b(&s, &t, "qr/approve", &access, json!({"code": code})).await.status, 204);
    // Decided once: neither a second approval nor a denial changes it.
    device_b(&s, &t, "qr/approve", &access, json!({"code": code})).await.assert_problem(400, "invalid_code");
    device_b(&s, &t, "qr/deny", &access, json!({"code": code})).await.assert_problem(400, "invalid_code");
    let signed_in = device_a(&s, &t, "qr/poll", json!({"poll_token": poll})).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert_eq!(signed_in.body["user"]["email"], "phone@example.com");
    let kiosk = signed_in.body["access_token"].as_str().unwrap();
    assert_eq!(s.get(&format!("/t/{}/auth/me", t.slug), kiosk).await.body["email"], "phone@example.com");
    // The kiosk's session is its own, with its own device facts.
    let sessions = s.get(&format!("/t/{}/auth/sessions", t.slug), kiosk).await;
    let agents: Vec<&str> =
        sessions.body["data"].as_array().unwrap().iter().filter_map(|s| s["user_agent"].as_str()).collect();
    assert!(agents.contains(&"KioskBrowser/1.0 (TV)"), "{agents:?}");
    // Tokens are handed out once.
    device_a(&s, &t, "qr/poll", json!({"poll_token": poll})).await.assert_problem(400, "invalid_code");
}

async fn a_denied_request_yields_nothing(backend: Backend) {
    let s = server(backend).await;
    let t = s.auth_tenant("qr", Value::Null).await;
    let access = phone(&s, &t).await;
    let started = device_a(&s, &t, "qr/start", json!({})).await;
    let (poll, code) = (started.body["poll_token"].clone(), started.body["qr_code"].clone());
    assert_eq!(device_b(&s, &t, "qr/deny", &access, json!({"code": code})).await.status, 204);
    device_b(&s, &t, "qr/approve", &access, json!({"code": code})).await.assert_problem(400, "invalid_code");
    device_a(&s, &t, "qr/poll", json!({"poll_token": poll})).await.assert_problem(403, "forbidden");
    device_a(&s, &t, "qr/poll", json!({"poll_token": poll})).await.assert_problem(400, "invalid_code");
}

async fn expired_and_foreign_requests_are_refused(backend: Backend) {
    let s = server(backend).await;
    let t = s.auth_tenant("qr", Value::Null).await;
    let other = s.auth_tenant("qr-other", Value::Null).await;
    let access = phone(&s, &t).await;
    let started = device_a(&s, &t, "qr/start", json!({})).await;
    let (poll, code) = (started.body["poll_token"].clone(), started.body["qr_code"].clone());
    // Another tenant does not know the request, nor can its users approve it.
    device_a(&s, &other, "qr/poll", json!({"poll_token": poll})).await.assert_problem(400, "invalid_code");
    // Made-up tokens.
    device_a(&s, &t, "qr/poll", json!({"poll_token": "qrp_made-up"})).await.assert_problem(400, "invalid_code");
    device_b(&s, &t, "qr/approve", &access, json!({"code": "qrc_made-up"})).await.assert_problem(400, "invalid_code");
    s.sql(
        "UPDATE one_time_secrets SET expires_at = 0",
        "UPDATE one_time_secrets SET expires_at = now() - interval '1 second'",
    )
    .await;
    device_b(&s, &t, "qr/approve", &access, json!({"code": code})).await.assert_problem(400, "invalid_code");
    device_a(&s, &t, "qr/poll", json!({"poll_token": poll})).await.assert_problem(400, "invalid_code");
}

async fn long_polling_returns_as_soon_as_the_request_is_approved(backend: Backend) {
    let s = server(backend).await;
    let t = s.auth_tenant("qr", Value::Null).await;
    let access = phone(&s, &t).await;
    let started = device_a(&s, &t, "qr/start", json!({})).await;
    let (poll, code) = (started.body["poll_token"].clone(), started.body["qr_code"].clone());
    let waiting = device_a(&s, &t, "qr/poll", json!({"poll_token": poll, "wait_seconds": 20}));
    let approving = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        device_b(&s, &t, "qr/approve", &access, json!({"code": code})).await
    };
    let begun = std::time::Instant::now();
    let (signed_in, approved) = tokio::join!(waiting, approving);
    assert_eq!(approved.status, 204);
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert!(signed_in.body["access_token"].is_string());
    // Answered on approval, not at the end of the wait.
    assert!(begun.elapsed() < std::time::Duration::from_secs(10), "{:?}", begun.elapsed());
}
