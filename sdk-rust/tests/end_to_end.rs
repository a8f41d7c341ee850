//! End to end: a real Gatehouse, driven only through the SDK, issues tokens that the
//! axum and actix examples accept, through a key rotation, in both verification modes;
//! disabling the user is seen at once by introspection and only at expiry by JWT mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

#[path = "../../middleware/axum/examples/axum-api.rs"]
#[allow(dead_code, reason = "only app() is used")]
mod axum_example;

#[path = "../../middleware/actix/examples/actix-api.rs"]
#[allow(dead_code, reason = "only configure() is used")]
mod actix_example;

use base64::Engine as _;
use gatehouse_axum::{Issuer, Mode, Verifier};
use gatehouse_sdk::types::UserStatus;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const ADMIN: &str = "gh_admin_e2e_0123456789abcdefghijklmnopqrstuv";
const PASSWORD: &str = "violet kettle drums";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_axum(verifier: Verifier) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum_example::app(verifier)).await.unwrap() });
    base
}

fn start_actix(verifier: Verifier) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(actix_example::configure(verifier.clone()))
            });
            server.workers(1).listen(listener).unwrap().run().await.unwrap();
        });
    });
    base
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let reply = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap_or(Value::Null))
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_drives_gatehouse_and_both_frameworks_verify_its_tokens() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let db = std::env::temp_dir().join(format!("gatehouse-e2e-{}-{port}.db", std::process::id()));
    let vars: HashMap<String, String> = [
        ("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}")),
        ("GATEHOUSE_PUBLIC_URL", base.clone()),
        ("GATEHOUSE_DATABASE_URL", format!("sqlite://{}", db.display())),
        ("GATEHOUSE_ADMIN_TOKEN", ADMIN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server =
        gatehouse_server::startup::start(gatehouse_server::config::Config::from_vars(&vars).unwrap()).await.unwrap();

    // Everything on Gatehouse's side goes through the SDK.
    let admin = gatehouse_sdk::Client::with_token(&base, ADMIN).unwrap();
    let tenant =
        admin.create_tenant().body_map(|b| b.slug("e2e").name("End to end")).send().await.unwrap().into_inner();
    let user = admin
        .create_user()
        .tenant_id(tenant.id.clone())
        .body_map(|b| b.email("ada@example.com").password(Some(PASSWORD.to_owned())))
        .send()
        .await
        .unwrap()
        .into_inner();
    let secret = admin
        .create_secret_key()
        .tenant_id(tenant.id.clone())
        .body_map(|b| b.name(Some("api verifier".to_owned())))
        .send()
        .await
        .unwrap()
        .into_inner()
        .secret
        .expect("the secret is shown once, on creation");
    let users = gatehouse_sdk::collect_pages(10, |cursor| {
        let request = admin.list_users().tenant_id(tenant.id.clone()).limit(1);
        async move {
            let request = match cursor {
                Some(c) => request.cursor(c),
                None => request,
            };
            let page = request.send().await?.into_inner();
            Ok::<_, gatehouse_sdk::Error<gatehouse_sdk::types::Problem>>((page.data, page.next_cursor))
        }
    })
    .await
    .unwrap();
    assert_eq!(users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [user.id.as_str()]);

    let public = gatehouse_sdk::Client::new(&base);
    let login = || async {
        match public
            .create_login()
            .t("e2e")
            .body_map(|b| b.email("ada@example.com").password(PASSWORD))
            .send()
            .await
            .unwrap()
            .into_inner()
        {
            // No second factor on this account: the sign-in answers tokens.
            gatehouse_sdk::types::LoginResponse::TokenSetResponse(tokens) => tokens.access_token,
            other => panic!("expected tokens, got {other:?}"),
        }
    };
    let first = login().await;

    // Four services: axum and actix, each in JWT and in introspection mode.
    let issuer = format!("{base}/t/e2e");
    let jwt = || {
        Verifier::builder()
            .issuer(Issuer::new(&issuer, tenant.id.to_string()))
            .min_refetch_interval(Duration::from_millis(100))
            .build()
            .unwrap()
    };
    let introspecting = || {
        Verifier::builder()
            .mode(Mode::Introspect)
            .issuer(Issuer::new(&issuer, tenant.id.to_string()).with_introspection_secret(&secret))
            .build()
            .unwrap()
    };
    let jwt_services = [start_axum(jwt()).await, start_actix(jwt())];
    let live_services = [start_axum(introspecting()).await, start_actix(introspecting())];
    for service in jwt_services.iter().chain(&live_services) {
        let (status, body) = get(&format!("{service}/me"), &first).await;
        assert_eq!((status, body["sub"].as_str()), (200, Some(user.id.as_str())), "{service}");
        assert_eq!(get(&format!("{service}/profile"), &first).await.0, 200, "{service}");
        assert_eq!(get(&format!("{service}/admin"), &first).await.0, 403, "{service}");
    }

    // Rotate: new tokens carry the new key; old and new tokens both keep working.
    let rotated = admin.rotate_signing_keys().tenant_id(tenant.id.clone()).send().await.unwrap().into_inner();
    let second = login().await;
    assert_ne!(kid(&first), kid(&second));
    assert_eq!(kid(&second), rotated.kid.to_string());
    for service in jwt_services.iter().chain(&live_services) {
        for token in [&first, &second] {
            assert_eq!(get(&format!("{service}/me"), token).await.0, 200, "{service} after rotation");
        }
    }

    // Disable the user: introspection refuses at once; JWT mode accepts until expiry.
    admin
        .update_user()
        .tenant_id(tenant.id.clone())
        .user_id(user.id.clone())
        .body_map(|b| b.status(Some(UserStatus::Disabled)))
        .send()
        .await
        .unwrap();
    for service in &live_services {
        let (status, body) = get(&format!("{service}/me"), &second).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("invalid_token")), "{service}");
    }
    for service in &jwt_services {
        assert_eq!(get(&format!("{service}/me"), &second).await.0, 200, "{service}: JWTs live until exp");
    }
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_file(&db);
}
