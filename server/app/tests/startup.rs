//! Start-up behaviour: the bootstrap token, break-glass access, restart durability.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::json;
use support::{Backend, TestServer};

#[tokio::test]
async fn the_bootstrap_token_is_issued_once_and_survives_restarts() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    assert!(s.admin.starts_with("gh_admin_"));
    let t = s.tenant("persist").await;
    let again = s.restart().await;
    assert_eq!(again, None, "a second start must not mint another bootstrap token");
    let read = s.get(&format!("/v1/tenants/{}", t["id"].as_str().unwrap()), &s.admin).await;
    assert_eq!(read.status, 200);
}

#[tokio::test]
async fn the_break_glass_token_works_is_audited_and_suppresses_the_bootstrap_token() {
    let token = format!("gh_admin_{}", "Zq9".repeat(12));
    let s = TestServer::start_with(Backend::Sqlite, &[("GATEHOUSE_ADMIN_TOKEN", &token)]).await;
    assert!(s.server.as_ref().unwrap().bootstrap_token.is_none());
    let created = s.post("/v1/tenants", &token, json!({"slug": "glass", "name": "Glass"})).await;
    assert_eq!(created.status, 201);
    let events = s.get("/v1/audit-events?action=tenant.create", &token).await;
    assert_eq!(events.body["data"][0]["actor_type"], "break_glass");
    let near_miss = format!("{}x", &token[..token.len() - 1]);
    s.get("/v1/tenants", &near_miss).await.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn postgres_refuses_to_start_on_an_unmigrated_database() {
    let schema = gatehouse_store_postgres::testing::TestSchema::create().await.unwrap();
    // A schema that exists but has no tables.
    let empty = schema.url.replace(&schema.schema, "gh_no_such_schema");
    let vars = [
        ("GATEHOUSE_DATABASE_URL", empty.as_str()),
        ("GATEHOUSE_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("GATEHOUSE_LISTEN", "127.0.0.1:0"),
    ];
    let config = gatehouse_server::config::Config::from_vars(
        &vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    )
    .unwrap();
    let error = gatehouse_server::startup::start(config).await.unwrap_err();
    assert!(format!("{error:#}").contains("gatehouse migrate"), "{error:#}");
}

#[tokio::test]
async fn a_spent_refresh_token_stays_rejected_after_a_restart() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    let t = s.tenant("restart").await;
    let slug = t["slug"].as_str().unwrap().to_owned();
    let tid = t["id"].as_str().unwrap();
    let no_grace = json!({"settings": {"refresh_token_reuse_grace_seconds": 0}});
    assert_eq!(s.patch(&format!("/v1/tenants/{tid}"), &s.admin, no_grace).await.status, 200);
    let body = json!({"email": "r@example.com", "password": "violet kettle drums"});
    let set = s.send(s.client.post(s.url(&format!("/t/{slug}/auth/signup"))).json(&body)).await;
    let first = set.body["refresh_token"].clone();
    let refresh = |s: &TestServer, token: serde_json::Value| {
        s.client.post(s.url(&format!("/t/{slug}/auth/refresh"))).json(&json!({"refresh_token": token}))
    };
    let second = s.send(refresh(&s, first.clone())).await;
    assert_eq!(second.status, 200);
    s.restart().await;
    s.send(refresh(&s, first)).await.assert_problem(401, "invalid_token");
    s.send(refresh(&s, second.body["refresh_token"].clone())).await.assert_problem(401, "invalid_token");
}

#[tokio::test]
async fn keys_can_be_rotated_from_the_command_line() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.tenant("cli-keys").await;
    let slug = t["slug"].as_str().unwrap().to_owned();
    let jwks = || s.client.get(s.url(&format!("/t/{slug}/.well-known/jwks.json")));
    assert_eq!(s.send(jwks()).await.body["keys"].as_array().unwrap().len(), 2);
    let db = s.database_url();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["keys", "rotate", "--tenant", &slug])
        .env("GATEHOUSE_DATABASE_URL", &db)
        .env("GATEHOUSE_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let kid = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(kid.starts_with("key_"), "{kid}");
    // Another process rotated: the management listing reads the database directly (the
    // JWKS may be served from a replica's few-second cache, which is safe by design).
    let listed = s.get(&format!("/v1/tenants/{}/signing-keys", t["id"].as_str().unwrap()), &s.admin).await;
    let statuses: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["retired", "active", "next"]);
    let active = listed.body["data"].as_array().unwrap().iter().find(|k| k["status"] == "active").unwrap();
    assert_eq!(active["id"], kid.as_str());
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["keys", "rotate", "--tenant", "no-such-tenant"])
        .env("GATEHOUSE_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!missing.status.success());
}
