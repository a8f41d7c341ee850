//! Black-box tests of the management API: a real server on a random port, real HTTP,
//! on SQLite (+ in-process store) and on Postgres (+ Redis).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(
    tenants_can_be_created_read_updated_listed_and_deleted,
    a_secret_key_reaches_its_own_tenant_and_nothing_else,
    a_revoked_secret_key_gets_401,
    a_rotated_key_works_during_the_overlap_and_its_successor_at_once,
    pagination_walks_every_tenant_exactly_once,
    management_calls_write_audit_events,
    bad_input_gets_problem_json_and_changes_nothing,
    missing_or_wrong_credentials_get_401_and_repeated_failures_get_429,
    a_scoped_operator_token_reaches_only_its_tenants,
    operator_tokens_can_be_created_listed_and_revoked,
    cors_preflight_allows_only_the_tenants_origins,
    readiness_and_metrics_answer,
    users_are_managed_with_emails_unique_per_tenant_ignoring_case,
    weak_passwords_and_malformed_users_are_refused,
    profiles_and_metadata_round_trip_and_private_metadata_stays_private,
    imported_users_sign_in_with_their_old_password_hashes,
);

async fn tenants_can_be_created_read_updated_listed_and_deleted(backend: Backend) {
    let s = TestServer::start(backend).await;
    let created = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"slug": "acme-corp", "name": "Acme Ünïcode 🚀", "settings": {"mfa": "required"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let t = &created.body;
    let id = t["id"].as_str().unwrap();
    assert!(id.starts_with("tnt_"));
    assert_eq!(t["settings"]["mfa"], "required");
    assert_eq!(t["settings"]["signup"], "open");
    assert_eq!(t["settings"]["access_token_ttl_seconds"], 900);
    assert_eq!(t["settings"]["signing_alg"], "ES256");

    let read = s.get(&format!("/v1/tenants/{id}"), &s.admin).await;
    assert_eq!(read.status, 200);
    assert_eq!(&read.body, t);

    let patched = s
        .patch(&format!("/v1/tenants/{id}"), &s.admin, json!({"settings": {"branding": {"primary_color": "#123abc"}}}))
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["settings"]["branding"]["primary_color"], "#123abc");
    assert_eq!(patched.body["settings"]["mfa"], "required", "a merge patch keeps other settings");
    assert_eq!(patched.body["version"], 2);

    let duplicate = s.post("/v1/tenants", &s.admin, json!({"slug": "acme-corp", "name": "Again"})).await;
    duplicate.assert_problem(409, "conflict");

    assert_eq!(s.delete(&format!("/v1/tenants/{id}"), &s.admin).await.status, 204);
    s.get(&format!("/v1/tenants/{id}"), &s.admin).await.assert_problem(404, "not_found");
    s.delete(&format!("/v1/tenants/{id}"), &s.admin).await.assert_problem(404, "not_found");
    let reuse = s.post("/v1/tenants", &s.admin, json!({"slug": "acme-corp", "name": "Squatter"})).await;
    reuse.assert_problem(409, "conflict");
}

async fn a_secret_key_reaches_its_own_tenant_and_nothing_else(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mine = s.tenant("mine").await;
    let other = s.tenant("other").await;
    let (key, secret) = s.secret_key(mine["id"].as_str().unwrap()).await;
    assert!(secret.starts_with("sk_"));
    assert_eq!(key["status"], "active");
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));

    let own = s.get(&format!("/v1/tenants/{}", mine["id"].as_str().unwrap()), &secret).await;
    assert_eq!(own.status, 200);
    let foreign_id = other["id"].as_str().unwrap();
    s.get(&format!("/v1/tenants/{foreign_id}"), &secret).await.assert_problem(404, "not_found");
    s.patch(&format!("/v1/tenants/{foreign_id}"), &secret, json!({"name": "x"})).await.assert_problem(404, "not_found");
    s.get(&format!("/v1/tenants/{foreign_id}/secret-keys"), &secret).await.assert_problem(404, "not_found");
    s.post(&format!("/v1/tenants/{foreign_id}/secret-keys"), &secret, json!({})).await.assert_problem(404, "not_found");
    let listed = s.get("/v1/tenants", &secret).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["data"][0]["id"], mine["id"]);
    let events = s.get(&format!("/v1/audit-events?tenant_id={foreign_id}"), &secret).await;
    events.assert_problem(404, "not_found");
    let own_events = s.get("/v1/audit-events?limit=100", &secret).await;
    assert!(own_events.body["data"].as_array().unwrap().iter().all(|e| e["tenant_id"] == mine["id"]));

    s.post("/v1/tenants", &secret, json!({"slug": "nope-nope", "name": "x"})).await.assert_problem(403, "forbidden");
    s.get("/v1/admin-tokens", &secret).await.assert_problem(403, "forbidden");
    // Listing keys never reveals secrets.
    let keys = s.get(&format!("/v1/tenants/{}/secret-keys", mine["id"].as_str().unwrap()), &secret).await;
    assert!(keys.body["data"][0].get("secret").is_none());
}

async fn a_revoked_secret_key_gets_401(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("revoke").await;
    let tid = t["id"].as_str().unwrap();
    let (key, secret) = s.secret_key(tid).await;
    assert_eq!(s.get(&format!("/v1/tenants/{tid}"), &secret).await.status, 200);
    let kid = key["id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("/v1/tenants/{tid}/secret-keys/{kid}"), &s.admin).await.status, 204);
    s.get(&format!("/v1/tenants/{tid}"), &secret).await.assert_problem(401, "unauthorized");
    let listed = s.get(&format!("/v1/tenants/{tid}/secret-keys"), &s.admin).await;
    assert_eq!(listed.body["data"][0]["status"], "revoked");
    s.delete(&format!("/v1/tenants/{tid}/secret-keys/{kid}"), &s.admin).await.assert_problem(404, "not_found");

    // Deleting the tenant stops its other keys too.
    let (_, second) = s.secret_key(tid).await;
    assert_eq!(s.delete(&format!("/v1/tenants/{tid}"), &s.admin).await.status, 204);
    s.get("/v1/tenants", &second).await.assert_problem(401, "unauthorized");
}

async fn a_rotated_key_works_during_the_overlap_and_its_successor_at_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("rotate").await;
    let tid = t["id"].as_str().unwrap();
    let (key, old_secret) = s.secret_key(tid).await;
    let kid = key["id"].as_str().unwrap();
    let rotated = s.post(&format!("/v1/tenants/{tid}/secret-keys/{kid}/rotate"), &s.admin, json!({})).await;
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    assert_eq!(s.get(&format!("/v1/tenants/{tid}"), new_secret).await.status, 200);
    assert_eq!(s.get(&format!("/v1/tenants/{tid}"), &old_secret).await.status, 200, "old key works during overlap");
    let again = s.post(&format!("/v1/tenants/{tid}/secret-keys/{kid}/rotate"), &s.admin, json!({})).await;
    again.assert_problem(409, "conflict");

    // With no overlap the old key stops at once.
    let successor = rotated.body["id"].as_str().unwrap();
    let immediate = s
        .post(&format!("/v1/tenants/{tid}/secret-keys/{successor}/rotate"), &s.admin, json!({"overlap_seconds": 0}))
        .await;
    assert_eq!(immediate.status, 201);
    s.get(&format!("/v1/tenants/{tid}"), new_secret).await.assert_problem(401, "unauthorized");
    let bad = s
        .post(
            &format!("/v1/tenants/{tid}/secret-keys/{successor}/rotate"),
            &s.admin,
            json!({"overlap_seconds": 9999999}),
        )
        .await;
    assert_eq!(bad.status / 100, 4);
}

async fn pagination_walks_every_tenant_exactly_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(s.tenant(&format!("page{i}")).await["id"].clone());
    }
    let mut seen: Vec<Value> = Vec::new();
    let mut path = "/v1/tenants?limit=2".to_owned();
    for _ in 0..10 {
        let page = s.get(&path, &s.admin).await;
        assert_eq!(page.status, 200);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|t| t["id"].clone()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/tenants?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

async fn management_calls_write_audit_events(backend: Backend) {
    let s = TestServer::start(backend).await;
    let created = s
        .send(
            s.client
                .post(s.url("/v1/tenants"))
                .bearer_auth(&s.admin)
                .header("user-agent", "audit-test/1.0")
                .header("x-request-id", "trace-abc-123")
                .json(&json!({"slug": "audited", "name": "Audited"})),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("x-request-id"), Some("trace-abc-123"));
    let tid = created.body["id"].as_str().unwrap();
    s.get(&format!("/v1/tenants/{tid}"), &s.admin).await;

    let events = s.get(&format!("/v1/audit-events?tenant_id={tid}"), &s.admin).await;
    assert_eq!(events.status, 200, "{:?}", events.body);
    let data = events.body["data"].as_array().unwrap();
    let actions: Vec<&str> = data.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["tenant.create", "tenant.read"]);
    let create = &data[0];
    assert_eq!(create["actor_type"], "admin_token");
    assert!(create["actor_id"].as_str().unwrap().starts_with("tok_"));
    assert_eq!(create["target_type"], "tenant");
    assert_eq!(create["target_id"], tid);
    assert_eq!(create["ip"], "127.0.0.1");
    assert_eq!(create["user_agent"], "audit-test/1.0");
    assert_eq!(create["request_id"], "trace-abc-123");
    assert!(create["id"].as_str().unwrap().starts_with("evt_"));

    let filtered = s.get("/v1/audit-events?action=tenant.create&limit=100", &s.admin).await;
    assert!(filtered.body["data"].as_array().unwrap().iter().all(|e| e["action"] == "tenant.create"));
    let by_actor =
        s.get(&format!("/v1/audit-events?actor_id={}", create["actor_id"].as_str().unwrap()), &s.admin).await;
    assert!(!by_actor.body["data"].as_array().unwrap().is_empty());
}

async fn bad_input_gets_problem_json_and_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("valid").await;
    let tid = t["id"].as_str().unwrap();
    let raw = |body: &'static str| {
        s.client.post(s.url("/v1/tenants")).bearer_auth(&s.admin).header("content-type", "application/json").body(body)
    };

    s.send(raw("{\"slug\": ")).await.assert_problem(400, "malformed_json");
    s.send(raw("{\"slug\": \"a\",, }")).await.assert_problem(400, "malformed_json");
    s.send(raw("{\"slug\": 42, \"name\": \"x\"}")).await.assert_problem(422, "validation_failed");
    s.send(raw("{\"slug\": \"ok-slug\", \"name\": \"x\", \"admin\": true}"))
        .await
        .assert_problem(422, "validation_failed");
    s.send(raw("{\"name\": \"no slug\"}")).await.assert_problem(422, "validation_failed");
    s.send(raw("null")).await.assert_problem(422, "validation_failed");
    let no_type = s.client.post(s.url("/v1/tenants")).bearer_auth(&s.admin).body("{}");
    s.send(no_type).await.assert_problem(415, "unsupported_media_type");
    // The server answers 413 without reading the rest of the body and closes; a client
    // still sending may see the reset before the answer. Whenever an answer arrives
    // (bounded tries), it must be the 413 problem.
    let huge = format!("{{\"slug\": \"big-one\", \"name\": \"{}\"}}", "x".repeat(200_000));
    let mut answered = false;
    for _ in 0..10 {
        // Its own client: the server closes this connection, which must not go back to
        // the pool shared by the requests below.
        let oversized = reqwest::Client::new()
            .post(s.url("/v1/tenants"))
            .bearer_auth(&s.admin)
            .header("content-type", "application/json")
            .body(huge.clone());
        if let Ok(response) = oversized.send().await {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!((status, body["code"].as_str()), (413, Some("payload_too_large")));
            answered = true;
            break;
        }
    }
    assert!(answered, "the oversized request never got an answer");

    for slug in ["ab", "UPPER", "admin", "-lead", "a_b", "spa ce", "ünï"] {
        let r = s.post("/v1/tenants", &s.admin, json!({"slug": slug, "name": "x"})).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "slug");
    }
    let bad_settings = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"slug": "bad-settings", "name": "x", "settings": {"access_token_ttl_seconds": -5}}),
        )
        .await;
    bad_settings.assert_problem(422, "validation_failed");
    let bad_origin = s
        .patch(
            &format!("/v1/tenants/{tid}"),
            &s.admin,
            json!({"settings": {"allowed_origins": ["javascript:alert(1)"]}}),
        )
        .await;
    bad_origin.assert_problem(422, "validation_failed");
    assert_eq!(bad_origin.body["errors"][0]["field"], "settings.allowed_origins[0]");
    s.patch(&format!("/v1/tenants/{tid}"), &s.admin, json!({"name": "   "}))
        .await
        .assert_problem(422, "validation_failed");

    s.get("/v1/tenants?cursor=not-a-cursor", &s.admin).await.assert_problem(400, "invalid_cursor");
    s.get("/v1/tenants?cursor=djE6Jz4iOyBEUk9QIFRBQkxFIHRlbmFudHM7LS0", &s.admin)
        .await
        .assert_problem(400, "invalid_cursor");
    s.get("/v1/tenants?limit=0", &s.admin).await.assert_problem(422, "validation_failed");
    s.get("/v1/tenants?limit=abc", &s.admin).await.assert_problem(400, "invalid_query");
    s.get("/v1/tenants?limit=99999999999", &s.admin).await.assert_problem(400, "invalid_query");
    s.get("/v1/tenants?sort=evil", &s.admin).await.assert_problem(400, "invalid_query");
    s.get("/v1/tenants/not-an-id", &s.admin).await.assert_problem(400, "invalid_path");
    s.get("/v1/tenants/skey_01jq3v6m8k2r7x0a9b4c5d6e7f", &s.admin).await.assert_problem(400, "invalid_path");
    s.get("/v1/tenants/tnt_01jq3v6m8k2r7x0a9b4c5d6e7f", &s.admin).await.assert_problem(404, "not_found");
    s.get("/v1/audit-events?tenant_id=%27%20OR%201%3D1", &s.admin).await.assert_problem(400, "invalid_query");
    s.get("/v1/nothing-here", &s.admin).await.assert_problem(404, "not_found");
    let put = s.client.put(s.url("/v1/tenants")).bearer_auth(&s.admin);
    s.send(put).await.assert_problem(405, "method_not_allowed");

    // Nothing above changed any state: one tenant, unchanged.
    let list = s.get("/v1/tenants?limit=100", &s.admin).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0], t);
}

async fn missing_or_wrong_credentials_get_401_and_repeated_failures_get_429(backend: Backend) {
    let s = TestServer::start(backend).await;
    let anonymous = s.send(s.client.get(s.url("/v1/tenants"))).await;
    anonymous.assert_problem(401, "unauthorized");
    assert!(anonymous.header("www-authenticate").unwrap().starts_with("Bearer"));
    s.send(s.client.get(s.url("/v1/tenants")).header("authorization", "Basic Zm9vOmJhcg=="))
        .await
        .assert_problem(401, "unauthorized");
    // A guessed key, an admin-token lookalike, an absurdly long value: all the same answer.
    let lookalike = format!("gh_admin_{}", "A".repeat(43));
    for bad in ["sk_guess", lookalike.as_str(), &"x".repeat(5000)] {
        let r = s.get("/v1/tenants", bad).await;
        r.assert_problem(401, "unauthorized");
        assert_eq!(r.body["detail"], anonymous.body["detail"]);
    }
    let mut limited = None;
    for _ in 0..30 {
        let r = s.get("/v1/tenants", "sk_wrong").await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("failures were never rate limited");
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    // While blocked, even a valid credential from that address is refused.
    s.get("/v1/tenants", &s.admin).await.assert_problem(429, "rate_limited");
}

async fn a_scoped_operator_token_reaches_only_its_tenants(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.tenant("scoped-a").await;
    let b = s.tenant("scoped-b").await;
    let created = s.post("/v1/admin-tokens", &s.admin, json!({"name": "support", "tenant_ids": [a["id"]]})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let token = created.body["secret"].as_str().unwrap();
    assert!(token.starts_with("gh_admin_"));
    assert_eq!(s.get(&format!("/v1/tenants/{}", a["id"].as_str().unwrap()), token).await.status, 200);
    s.get(&format!("/v1/tenants/{}", b["id"].as_str().unwrap()), token).await.assert_problem(404, "not_found");
    let listed = s.get("/v1/tenants", token).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    s.post("/v1/tenants", token, json!({"slug": "scoped-new", "name": "x"})).await.assert_problem(403, "forbidden");
    s.post("/v1/admin-tokens", token, json!({})).await.assert_problem(403, "forbidden");
    let unknown = s.post("/v1/admin-tokens", &s.admin, json!({"tenant_ids": ["tnt_01jq3v6m8k2r7x0a9b4c5d6e7f"]})).await;
    unknown.assert_problem(422, "validation_failed");
}

async fn operator_tokens_can_be_created_listed_and_revoked(backend: Backend) {
    let s = TestServer::start(backend).await;
    let created = s.post("/v1/admin-tokens", &s.admin, json!({"name": "terraform"})).await;
    assert_eq!(created.status, 201);
    let token = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/v1/tenants", &token).await.status, 200);
    let listed = s.get("/v1/admin-tokens", &token).await;
    let names: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bootstrap", "terraform"]);
    assert!(listed.body["data"].as_array().unwrap().iter().all(|t| t.get("secret").is_none()));
    assert_eq!(s.delete(&format!("/v1/admin-tokens/{id}"), &s.admin).await.status, 204);
    s.get("/v1/tenants", &token).await.assert_problem(401, "unauthorized");
}

async fn cors_preflight_allows_only_the_tenants_origins(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("cors").await;
    let tid = t["id"].as_str().unwrap();
    let slug = t["slug"].as_str().unwrap();
    let patched = s
        .patch(
            &format!("/v1/tenants/{tid}"),
            &s.admin,
            json!({"settings": {"allowed_origins": ["https://app.example.com"]}}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let preflight = |origin: &str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url(&format!("/t/{slug}/auth/login")))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
    };
    let ok = s.send(preflight("https://app.example.com")).await;
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    let evil = s.send(preflight("https://evil.example.com")).await;
    evil.assert_problem(403, "forbidden");
    assert!(evil.header("access-control-allow-origin").is_none());
    // The management API never answers cross-origin.
    let mgmt = s
        .send(s.client.get(s.url("/v1/tenants")).bearer_auth(&s.admin).header("origin", "https://app.example.com"))
        .await;
    assert!(mgmt.header("access-control-allow-origin").is_none());
}

async fn readiness_and_metrics_answer(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ready = s.send(s.client.get(s.url("/readyz"))).await;
    assert_eq!(ready.status, 200);
    assert_eq!(s.send(s.client.get(s.url("/healthz"))).await.body["status"], "ok");
    s.get("/v1/tenants", &s.admin).await;
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("gatehouse_http_requests_total{method=\"GET\",route=\"/v1/tenants\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("gatehouse_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("gatehouse_db_pool_connections"));
    let headers = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!(headers.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(headers.header("x-frame-options"), Some("DENY"));
    assert!(headers.header("x-request-id").unwrap().starts_with("req_"));
    for hostile in ["a b<script>".to_owned(), "x".repeat(300)] {
        let reply = s.send(s.client.get(s.url("/healthz")).header("x-request-id", hostile)).await;
        assert!(reply.header("x-request-id").unwrap().starts_with("req_"));
    }
}

async fn users_are_managed_with_emails_unique_per_tenant_ignoring_case(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("people").await;
    let other = s.tenant("people-other").await;
    let tid = t["id"].as_str().unwrap();
    let users = format!("/v1/tenants/{tid}/users");
    let created = s
        .post(
            &users,
            &s.admin,
            json!({"email": "Jürgen@Bücher.de", "password": "violet kettle drums", "name": "Jürgen"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let u = &created.body;
    let uid = u["id"].as_str().unwrap();
    assert!(uid.starts_with("usr_"));
    assert_eq!(u["email"], "Jürgen@Bücher.de");
    assert_eq!(u["has_password"], true);
    assert_eq!(u["status"], "active");
    assert!(u.get("password_hash").is_none() && !u.to_string().contains("argon2"), "the hash never leaves");

    let twin = s.post(&users, &s.admin, json!({"email": "JÜRGEN@BÜCHER.DE"})).await;
    twin.assert_problem(409, "conflict");
    let other_users = format!("/v1/tenants/{}/users", other["id"].as_str().unwrap());
    assert_eq!(s.post(&other_users, &s.admin, json!({"email": "jürgen@bücher.de"})).await.status, 201);

    for email in ["anna@example.com", "ann@example.com", "bob@example.com"] {
        assert_eq!(s.post(&users, &s.admin, json!({"email": email})).await.status, 201);
    }
    let filtered = s.get(&format!("{users}?email_prefix=ANN"), &s.admin).await;
    let emails: Vec<&str> =
        filtered.body["data"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["anna@example.com", "ann@example.com"]);
    let page = s.get(&format!("{users}?limit=2"), &s.admin).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2);
    assert!(page.body["next_cursor"].is_string());

    let disabled = s.patch(&format!("{users}/{uid}"), &s.admin, json!({"status": "disabled", "name": ""})).await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    assert_eq!(disabled.body["status"], "disabled");
    assert!(disabled.body["name"].is_null());
    let only_disabled = s.get(&format!("{users}?status=disabled"), &s.admin).await;
    assert_eq!(only_disabled.body["data"].as_array().unwrap().len(), 1);
    let moved = s.patch(&format!("{users}/{uid}"), &s.admin, json!({"email": "BOB@example.com"})).await;
    moved.assert_problem(409, "conflict");

    // A secret key of the other tenant cannot see or touch these users.
    let (_, foreign_key) = s.secret_key(other["id"].as_str().unwrap()).await;
    s.get(&format!("{users}/{uid}"), &foreign_key).await.assert_problem(404, "not_found");
    s.get(&users, &foreign_key).await.assert_problem(404, "not_found");
    s.delete(&format!("{users}/{uid}"), &foreign_key).await.assert_problem(404, "not_found");
    // The tenant's own key can.
    let (_, own_key) = s.secret_key(tid).await;
    assert_eq!(s.get(&format!("{users}/{uid}"), &own_key).await.status, 200);

    assert_eq!(s.delete(&format!("{users}/{uid}"), &s.admin).await.status, 204);
    s.get(&format!("{users}/{uid}"), &s.admin).await.assert_problem(404, "not_found");
    let events = s.get(&format!("/v1/audit-events?tenant_id={tid}&action=user.delete"), &s.admin).await;
    assert_eq!(events.body["data"][0]["target_id"], uid);
}

async fn weak_passwords_and_malformed_users_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("policy").await;
    let users = format!("/v1/tenants/{}/users", t["id"].as_str().unwrap());
    let field = |r: &support::Reply| r.body["errors"][0]["field"].as_str().unwrap_or_default().to_owned();
    for (body, expected) in [
        (json!({"email": "a@example.com", "password": "short"}), "password"),
        (json!({"email": "a@example.com", "password": "password123"}), "password"),
        (json!({"email": "maximilian@example.com", "password": "Maximilian-2026!"}), "password"),
        (json!({"email": "not-an-email", "password": "violet kettle drums"}), "email"),
        (json!({"email": "a@example.com\r\nBcc: x@evil.test"}), "email"),
        (json!({"email": "a@example.com", "name": "x".repeat(201)}), "name"),
    ] {
        let r = s.post(&users, &s.admin, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(field(&r), expected, "{body}");
    }
    let r = s.post(&users, &s.admin, json!({"email": "a@example.com", "password": "x".repeat(2000)})).await;
    r.assert_problem(422, "validation_failed");
    s.post(&users, &s.admin, json!({"email": "a@example.com", "role": "admin"}))
        .await
        .assert_problem(422, "validation_failed");
    s.post(&users, &s.admin, json!({"email": 7})).await.assert_problem(422, "validation_failed");
    s.get(&format!("{users}?status=banned"), &s.admin).await.assert_problem(400, "invalid_query");
    s.get(&format!("{users}/tnt_01jq3v6m8k2r7x0a9b4c5d6e7f"), &s.admin).await.assert_problem(400, "invalid_path");
    // The tenant's policy applies: raise the minimum and a formerly fine password fails.
    let tid = t["id"].as_str().unwrap();
    let raised = s
        .patch(&format!("/v1/tenants/{tid}"), &s.admin, json!({"settings": {"password_policy": {"min_length": 24}}}))
        .await;
    assert_eq!(raised.status, 200);
    let r = s.post(&users, &s.admin, json!({"email": "b@example.com", "password": "violet kettle drums"})).await;
    r.assert_problem(422, "validation_failed");
    assert!(r.body["detail"].as_str().unwrap().contains("24"));
    // Nothing was created by any of the refused requests.
    let list = s.get(&users, &s.admin).await;
    assert!(list.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let s = TestServer::start_with(Backend::Sqlite, &[("GATEHOUSE_TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let from = |ip: &str, token: &str| {
        s.client.get(s.url("/v1/tenants")).bearer_auth(token).header("x-forwarded-for", format!("198.51.100.1, {ip}"))
    };
    let mut limited = false;
    for _ in 0..30 {
        if s.send(from("203.0.113.1", "sk_wrong")).await.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the forwarded client was never limited");
    // Another client behind the same proxy is not affected, and is audited by its own address.
    let created = s
        .send(
            s.client
                .post(s.url("/v1/tenants"))
                .bearer_auth(&s.admin)
                .header("x-forwarded-for", "203.0.113.2")
                .json(&json!({"slug": "behind-proxy", "name": "x"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let events = s.get("/v1/audit-events?action=tenant.create", &s.admin).await;
    assert_eq!(events.body["data"][0]["ip"], "203.0.113.2");
}

async fn profiles_and_metadata_round_trip_and_private_metadata_stays_private(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("profiles").await;
    let tid = t["id"].as_str().unwrap();
    let users = format!("/v1/tenants/{tid}/users");
    let body = json!({
        "email": "meta@example.com", "password": "violet kettle drums", "username": "meta.user",
        "phone": "+4930123456", "picture": "https://cdn.example.com/m.png", "locale": "de-CH",
        "public_metadata": {"plan": "pro"}, "private_metadata": {"stripe_customer": "cus_123"}
    });
    let created = s.post(&users, &s.admin, body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    for (field, value) in
        [("username", json!("meta.user")), ("phone", json!("+4930123456")), ("locale", json!("de-CH"))]
    {
        assert_eq!(created.body[field], value);
    }
    assert_eq!(created.body["private_metadata"], json!({"stripe_customer": "cus_123"}));
    s.post(&users, &s.admin, json!({"email": "other@example.com", "username": "meta.user"}))
        .await
        .assert_problem(409, "conflict");
    for (field, value) in [
        ("phone", json!("12345")),
        ("username", json!("No Spaces")),
        ("picture", json!("http://x.example.com/p.png")),
        ("locale", json!("not a locale")),
        ("public_metadata", json!([1, 2])),
        ("private_metadata", json!({"x": "y".repeat(9000)})),
    ] {
        let mut bad = json!({"email": "bad@example.com"});
        bad[field] = value;
        let r = s.post(&users, &s.admin, bad).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let slug = t["slug"].as_str().unwrap();
    let login = s
        .send(
            s.client
                .post(s.url(&format!("/t/{slug}/auth/login")))
                .json(&json!({"email": "meta@example.com", "password": "violet kettle drums"})),
        )
        .await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["user"]["public_metadata"], json!({"plan": "pro"}));
    assert!(login.body["user"].get("private_metadata").is_none(), "the user never sees private metadata");
    let me = s.get(&format!("/t/{slug}/auth/me"), login.body["access_token"].as_str().unwrap()).await;
    assert!(me.body.get("private_metadata").is_none());
    assert!(!me.body.to_string().contains("cus_123"));
    let recent = s
        .get(&format!("{users}?created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z"), &s.admin)
        .await;
    assert_eq!(recent.body["data"].as_array().unwrap().len(), 1);
    let none = s.get(&format!("{users}?created_before=2000-01-01T00:00:00Z"), &s.admin).await;
    assert!(none.body["data"].as_array().unwrap().is_empty());
    s.get(&format!("{users}?created_after=yesterday"), &s.admin).await.assert_problem(400, "invalid_query");
}

async fn imported_users_sign_in_with_their_old_password_hashes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("import").await;
    let tid = t["id"].as_str().unwrap();
    let slug = t["slug"].as_str().unwrap().to_owned();
    let import = format!("/v1/tenants/{tid}/users/import");
    let old = bcrypt::hash("old system password", 4).unwrap();
    let bad = s
        .post(&import, &s.admin, json!({"users": [{"email": "a@example.com", "password_hash": old}, {"email": "b@example.com", "password_hash": "md5:abc"}]}))
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "users[1].password_hash");
    let dup =
        s.post(&import, &s.admin, json!({"users": [{"email": "a@example.com"}, {"email": "A@example.com"}]})).await;
    dup.assert_problem(422, "validation_failed");
    assert!(
        s.get(&format!("/v1/tenants/{tid}/users"), &s.admin).await.body["data"].as_array().unwrap().is_empty(),
        "nothing imported"
    );

    let ok = s
        .post(
            &import,
            &s.admin,
            json!({"users": [
                {"email": "a@example.com", "password_hash": old, "email_verified": true, "username": "alpha"},
                {"email": "b@example.com"}
            ]}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    assert_eq!(ok.body["imported"], 2);
    let login = |password: &str| {
        s.client
            .post(s.url(&format!("/t/{slug}/auth/login")))
            .json(&json!({"email": "a@example.com", "password": password}))
    };
    s.send(login("wrong password")).await.assert_problem(401, "invalid_credentials");
    let first = s.send(login("old system password")).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let events = s.get(&format!("/v1/audit-events?tenant_id={tid}&action=login.success"), &s.admin).await;
    assert_eq!(events.body["data"][0]["data"]["password_rehashed"], true, "upgraded to Argon2id at first sign-in");
    assert_eq!(s.send(login("old system password")).await.status, 200, "and still works after the upgrade");
    let again = s.post(&import, &s.admin, json!({"users": [{"email": "A@EXAMPLE.com"}]})).await;
    again.assert_problem(409, "conflict");
}
