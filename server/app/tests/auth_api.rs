//! Black-box tests of the end-user auth API (`/t/{t}/auth/…`) and the tenant's JWKS, on
//! SQLite (+ in-process store) and Postgres (+ Redis), including the attacks each
//! mechanism exists to stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::{Backend, Reply, TestServer};

on_both_backends!(
    signup_login_refresh_logout_and_me_work_end_to_end,
    access_tokens_verify_independently_against_the_published_jwks,
    login_answers_alike_for_unknown_accounts_wrong_passwords_and_disabled_users,
    replaying_a_spent_refresh_token_revokes_the_session,
    parallel_refreshes_of_one_token_yield_at_most_one_successor,
    a_disabled_user_gets_no_token_through_any_path,
    a_token_of_one_tenant_is_rejected_by_another,
    rotating_keys_mid_flight_breaks_no_outstanding_token,
    repeated_failures_back_off_the_account_even_for_the_right_password,
    a_successful_sign_in_ends_a_run_of_failures,
    each_password_hash_is_timed_in_the_metrics,
    signup_respects_the_tenant_settings_and_refuses_bad_input,
    changing_the_password_needs_the_current_one_and_signs_out_other_sessions,
    users_see_and_end_their_own_sessions_only,
    browsers_can_keep_the_refresh_token_in_a_csrf_protected_cookie,
    signups_per_ip_are_capped_and_the_excess_is_audited_once,
    each_signing_algorithm_issues_tokens_that_work,
    introspection_sees_revocation_at_once_and_only_for_the_tenants_own_keys,
    tenant_changes_and_deletion_take_effect_at_once_despite_the_tenant_cache,
);

struct Tenant {
    id: String,
    slug: String,
}

async fn tenant(s: &TestServer, settings: Value) -> Tenant {
    let t = s.tenant("auth").await;
    let id = t["id"].as_str().unwrap().to_owned();
    if !settings.is_null() {
        let r = s.patch(&format!("/v1/tenants/{id}"), &s.admin, json!({ "settings": settings })).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    Tenant { id, slug: t["slug"].as_str().unwrap().to_owned() }
}

async fn auth(s: &TestServer, t: &Tenant, route: &str, body: Value) -> Reply {
    s.send(s.client.post(s.url(&format!("/t/{}/auth/{route}", t.slug))).json(&body)).await
}

async fn me(s: &TestServer, t: &Tenant, access: &str) -> Reply {
    s.get(&format!("/t/{}/auth/me", t.slug), access).await
}

async fn signed_up(s: &TestServer, t: &Tenant, email: &str) -> Value {
    let r = auth(s, t, "signup", json!({"email": email, "password": "violet kettle drums"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn signup_login_refresh_logout_and_me_work_end_to_end(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let set = signed_up(&s, &t, "Ann@Example.com").await;
    assert_eq!(set["token_type"], "Bearer");
    assert_eq!(set["expires_in"], 900);
    assert!(set["refresh_token"].as_str().unwrap().starts_with("rt_"));
    assert_eq!(set["user"]["email"], "Ann@Example.com");
    let c = claims(set["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], format!("http://127.0.0.1:8080/t/{}", t.slug));
    assert_eq!(c["sub"], set["user"]["id"]);
    assert_eq!(c["tid"], t.id);
    assert_eq!(c["aud"], t.id);
    assert!(c["sid"].as_str().unwrap().starts_with("ses_"));
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    for claim in ["nbf", "jti", "scope", "auth_time"] {
        assert!(!c[claim].is_null(), "{claim} missing");
    }

    let login = auth(&s, &t, "login", json!({"email": "ann@EXAMPLE.com", "password": "violet kettle drums"})).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let access = login.body["access_token"].as_str().unwrap();
    assert_ne!(claims(access)["sid"], c["sid"], "each sign-in is its own session");
    let who = me(&s, &t, access).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.body["email"], "Ann@Example.com");
    assert!(who.body["last_login_at"].is_string());

    let refreshed = auth(&s, &t, "refresh", json!({"refresh_token": login.body["refresh_token"]})).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_ne!(refreshed.body["refresh_token"], login.body["refresh_token"]);
    assert_eq!(claims(refreshed.body["access_token"].as_str().unwrap())["sid"], claims(access)["sid"]);

    let out = auth(&s, &t, "logout", json!({"refresh_token": refreshed.body["refresh_token"]})).await;
    assert_eq!(out.status, 204);
    auth(&s, &t, "refresh", json!({"refresh_token": refreshed.body["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_token");
    me(&s, &t, access).await.assert_problem(401, "invalid_token");
    // Signing out with an unknown token is not an error, and reveals nothing.
    assert_eq!(auth(&s, &t, "logout", json!({"refresh_token": "rt_unknown"})).await.status, 204);
    // The other session is untouched.
    assert_eq!(me(&s, &t, set["access_token"].as_str().unwrap()).await.status, 200);

    let events = s.get(&format!("/v1/audit-events?tenant_id={}&limit=100", t.id), &s.admin).await;
    let actions: Vec<&str> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["user.signup", "login.success", "refresh_token.rotated", "user.logout"] {
        assert!(actions.contains(&expected), "{expected} not audited: {actions:?}");
    }
}

async fn access_tokens_verify_independently_against_the_published_jwks(backend: Backend) {
    use p256::ecdsa::signature::Verifier;
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let set = signed_up(&s, &t, "jwks@example.com").await;
    let token = set["access_token"].as_str().unwrap();
    let jwks = s.send(s.client.get(s.url(&format!("/t/{}/.well-known/jwks.json", t.slug)))).await;
    assert_eq!(jwks.status, 200);
    assert!(jwks.header("cache-control").unwrap().contains("max-age"));
    let keys = jwks.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the active key and the next one are published");
    assert!(keys.iter().all(|k| k.get("d").is_none()), "no private part is published");

    let mut parts = token.split('.');
    let (h, p, sig) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwk = keys.iter().find(|k| k["kid"] == header["kid"]).expect("the signing key is published");
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    key.verify(format!("{h}.{p}").as_bytes(), &signature).expect("signature verifies with an independent library");
    let mut tampered = URL_SAFE_NO_PAD.decode(p).unwrap();
    tampered[10] ^= 1;
    assert!(key.verify(format!("{h}.{}", URL_SAFE_NO_PAD.encode(&tampered)).as_bytes(), &signature).is_err());

    let discovery = s.send(s.client.get(s.url(&format!("/t/{}/.well-known/openid-configuration", t.slug)))).await;
    assert_eq!(discovery.body["issuer"], claims(token)["iss"]);
    assert_eq!(discovery.body["jwks_uri"], format!("{}/.well-known/jwks.json", claims(token)["iss"].as_str().unwrap()));
    s.send(s.client.get(s.url("/t/no-such-tenant/.well-known/jwks.json"))).await.assert_problem(404, "not_found");
}

async fn login_answers_alike_for_unknown_accounts_wrong_passwords_and_disabled_users(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let known = signed_up(&s, &t, "known@example.com").await;
    signed_up(&s, &t, "disabled@example.com").await;
    let users = s.get(&format!("/v1/tenants/{}/users?email_prefix=disabled", t.id), &s.admin).await;
    let disabled_id = users.body["data"][0]["id"].as_str().unwrap().to_owned();
    s.patch(&format!("/v1/tenants/{}/users/{disabled_id}", t.id), &s.admin, json!({"status": "disabled"})).await;

    let answers = [
        auth(&s, &t, "login", json!({"email": "nobody@example.com", "password": "violet kettle drums"})).await,
        auth(&s, &t, "login", json!({"email": "known@example.com", "password": "wrong password here"})).await,
        auth(&s, &t, "login", json!({"email": "disabled@example.com", "password": "violet kettle drums"})).await,
        auth(&s, &t, "login", json!({"email": "not an email", "password": "violet kettle drums"})).await,
    ];
    for a in &answers {
        a.assert_problem(401, "invalid_credentials");
        assert_eq!(a.body, answers[0].body, "answers differ");
    }
    let failures = s.get(&format!("/v1/audit-events?tenant_id={}&action=login.failure", t.id), &s.admin).await;
    assert_eq!(failures.body["data"].as_array().unwrap().len(), 4);
    assert!(known["user"]["id"].is_string());
}

async fn replaying_a_spent_refresh_token_revokes_the_session(backend: Backend) {
    let s = TestServer::start(backend).await;
    // No grace window: the replay below comes at once, as an attacker's may.
    let t = tenant(&s, json!({"refresh_token_reuse_grace_seconds": 0})).await;
    let set = signed_up(&s, &t, "replay@example.com").await;
    let first = set["refresh_token"].clone();
    let second = auth(&s, &t, "refresh", json!({"refresh_token": first})).await;
    assert_eq!(second.status, 200);
    // The attacker replays the stolen, already used token.
    auth(&s, &t, "refresh", json!({"refresh_token": first})).await.assert_problem(401, "invalid_token");
    // The whole family is gone: the legitimate successor no longer works either.
    auth(&s, &t, "refresh", json!({"refresh_token": second.body["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_token");
    me(&s, &t, second.body["access_token"].as_str().unwrap()).await.assert_problem(401, "invalid_token");
    let reuse =
        s.get(&format!("/v1/audit-events?tenant_id={}&action=refresh_token.reuse_detected", t.id), &s.admin).await;
    assert_eq!(reuse.body["data"].as_array().unwrap().len(), 1);
    for junk in ["", "rt_", "not-a-token", &"rt_x".repeat(100)] {
        auth(&s, &t, "refresh", json!({"refresh_token": junk})).await.assert_problem(401, "invalid_token");
    }
}

async fn parallel_refreshes_of_one_token_yield_at_most_one_successor(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let set = signed_up(&s, &t, "race@example.com").await;
    let token = set["refresh_token"].clone();
    // Twenty tabs refresh the same token at once: within the grace window each gets the
    // one successor, so there is one family and one session, and nobody is signed out.
    let attempts = (0..20).map(|_| auth(&s, &t, "refresh", json!({"refresh_token": token})));
    let replies = futures::future::join_all(attempts).await;
    assert!(replies.iter().all(|r| r.status == 200 || r.body["code"] == "invalid_token"), "{replies:?}");
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert!(!ok.is_empty());
    let successors: std::collections::HashSet<&str> =
        ok.iter().map(|r| r.body["refresh_token"].as_str().unwrap()).collect();
    assert_eq!(successors.len(), 1, "one family of successors");
    let sids: std::collections::HashSet<String> = ok
        .iter()
        .map(|r| claims(r.body["access_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sids.len(), 1, "no second session");
    let successor = successors.into_iter().next().unwrap();
    let next = auth(&s, &t, "refresh", json!({"refresh_token": successor})).await;
    assert_eq!(next.status, 200, "the session survived the race");
    // Every exchange is audited: the one rotation of the race, each racing duplicate
    // that got its successor, and the next rotation.
    let path = format!("/v1/audit-events?tenant_id={}&action=refresh_token.rotated&limit=100", t.id);
    let events = s.get(&path, &s.admin).await;
    let raced: Vec<bool> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["data"]["raced"].as_bool().unwrap()).collect();
    assert_eq!(raced.len(), ok.len() + 1, "{raced:?}");
    assert_eq!(raced.iter().filter(|r| !**r).count(), 2, "{raced:?}");
}

async fn a_disabled_user_gets_no_token_through_any_path(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let set = signed_up(&s, &t, "soon-disabled@example.com").await;
    let uid = set["user"]["id"].as_str().unwrap();
    let r = s.patch(&format!("/v1/tenants/{}/users/{uid}", t.id), &s.admin, json!({"status": "disabled"})).await;
    assert_eq!(r.status, 200);
    auth(&s, &t, "refresh", json!({"refresh_token": set["refresh_token"]})).await.assert_problem(401, "invalid_token");
    me(&s, &t, set["access_token"].as_str().unwrap()).await.assert_problem(401, "invalid_token");
    auth(&s, &t, "login", json!({"email": "soon-disabled@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(401, "invalid_credentials");
}

async fn a_token_of_one_tenant_is_rejected_by_another(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = tenant(&s, Value::Null).await;
    let b = tenant(&s, Value::Null).await;
    let set = signed_up(&s, &a, "cross@example.com").await;
    signed_up(&s, &b, "cross@example.com").await;
    me(&s, &b, set["access_token"].as_str().unwrap()).await.assert_problem(401, "invalid_token");
    auth(&s, &b, "refresh", json!({"refresh_token": set["refresh_token"]})).await.assert_problem(401, "invalid_token");
    assert_eq!(me(&s, &a, set["access_token"].as_str().unwrap()).await.status, 200);
    // A token without a bearer prefix, or forged with alg none, is refused.
    let forged = {
        let token = set["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#))
    };
    me(&s, &a, &forged).await.assert_problem(401, "invalid_token");
    let bare = s.send(s.client.get(s.url(&format!("/t/{}/auth/me", a.slug)))).await;
    bare.assert_problem(401, "invalid_token");
    assert!(bare.header("www-authenticate").unwrap().contains("invalid_token"));
}

async fn rotating_keys_mid_flight_breaks_no_outstanding_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let before = signed_up(&s, &t, "rotate@example.com").await;
    let old_kid = {
        let h = before["access_token"].as_str().unwrap().split('.').next().unwrap();
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()["kid"].clone()
    };
    let keys = s.get(&format!("/v1/tenants/{}/signing-keys", t.id), &s.admin).await;
    let next = keys.body["data"].as_array().unwrap().iter().find(|k| k["status"] == "next").unwrap()["id"].clone();
    let rotated = s.post(&format!("/v1/tenants/{}/signing-keys/rotate", t.id), &s.admin, json!({})).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(rotated.body["kid"], next, "the key published in advance is the one that starts signing");
    assert_eq!(me(&s, &t, before["access_token"].as_str().unwrap()).await.status, 200, "old token still valid");
    let after = auth(&s, &t, "login", json!({"email": "rotate@example.com", "password": "violet kettle drums"})).await;
    let h = after.body["access_token"].as_str().unwrap().split('.').next().unwrap();
    let new_kid = serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()["kid"].clone();
    assert_eq!(new_kid, next);
    assert_ne!(new_kid, old_kid);
    let jwks = s.send(s.client.get(s.url(&format!("/t/{}/.well-known/jwks.json", t.slug)))).await;
    let kids: Vec<&Value> = jwks.body["keys"].as_array().unwrap().iter().map(|k| &k["kid"]).collect();
    assert_eq!(kids.len(), 3, "retired, active and a new next key");
    assert!(kids.contains(&&old_kid));
    // Rotation is audited, and a secret key of another tenant cannot rotate these keys.
    let other = tenant(&s, Value::Null).await;
    let (_, foreign) = s.secret_key(&other.id).await;
    s.post(&format!("/v1/tenants/{}/signing-keys/rotate", t.id), &foreign, json!({}))
        .await
        .assert_problem(404, "not_found");
}

async fn repeated_failures_back_off_the_account_even_for_the_right_password(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    signed_up(&s, &t, "target@example.com").await;
    for _ in 0..5 {
        auth(&s, &t, "login", json!({"email": "target@example.com", "password": "guess guess guess"}))
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let locked = auth(&s, &t, "login", json!({"email": "TARGET@example.com", "password": "violet kettle drums"})).await;
    locked.assert_problem(429, "rate_limited");
    assert!(locked.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Another account is not affected, and a spoofed X-Forwarded-For changes nothing.
    signed_up(&s, &t, "bystander@example.com").await;
    let spoofed = s
        .send(
            s.client
                .post(s.url(&format!("/t/{}/auth/login", t.slug)))
                .header("x-forwarded-for", "203.0.113.99")
                .json(&json!({"email": "target@example.com", "password": "violet kettle drums"})),
        )
        .await;
    spoofed.assert_problem(429, "rate_limited");
    let other =
        auth(&s, &t, "login", json!({"email": "bystander@example.com", "password": "violet kettle drums"})).await;
    assert_eq!(other.status, 200);
}

async fn a_successful_sign_in_ends_a_run_of_failures(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    signed_up(&s, &t, "forgetful@example.com").await;
    let attempt =
        |password: &'static str| auth(&s, &t, "login", json!({"email": "forgetful@example.com", "password": password}));
    // Four failures, the right password, four more: eight failures in all, but never
    // five in a row, so the account never backs off.
    for _ in 0..2 {
        for _ in 0..4 {
            attempt("not my password").await.assert_problem(401, "invalid_credentials");
        }
        assert_eq!(attempt("violet kettle drums").await.status, 200);
    }
    // The count starts again from the last success: five more failures do lock.
    for _ in 0..5 {
        attempt("not my password").await.assert_problem(401, "invalid_credentials");
    }
    attempt("violet kettle drums").await.assert_problem(429, "rate_limited");
}

/// The count of a histogram in the Prometheus text exposition.
async fn metric_count(s: &TestServer, name: &str) -> u64 {
    let text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name}_count "))).unwrap_or_else(|| panic!("{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn each_password_hash_is_timed_in_the_metrics(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    signed_up(&s, &t, "timed@example.com").await;
    // Once first, so the dummy hash (computed once, in the background from start-up)
    // is surely done before counting.
    let unknown = json!({"email": "nobody@example.com", "password": "violet kettle drums"});
    auth(&s, &t, "login", unknown.clone()).await.assert_problem(401, "invalid_credentials");
    let (waits, runs) = (
        metric_count(&s, "gatehouse_password_hash_queue_seconds").await,
        metric_count(&s, "gatehouse_password_hash_seconds").await,
    );
    let good = json!({"email": "timed@example.com", "password": "violet kettle drums"});
    assert_eq!(auth(&s, &t, "login", good).await.status, 200);
    // An unknown account is verified against the dummy hash: timed as well.
    auth(&s, &t, "login", unknown).await.assert_problem(401, "invalid_credentials");
    assert_eq!(metric_count(&s, "gatehouse_password_hash_queue_seconds").await, waits + 2);
    assert_eq!(metric_count(&s, "gatehouse_password_hash_seconds").await, runs + 2);
}

async fn signup_respects_the_tenant_settings_and_refuses_bad_input(backend: Backend) {
    let s = TestServer::start(backend).await;
    let closed = tenant(&s, json!({"signup": "invite_only"})).await;
    auth(&s, &closed, "signup", json!({"email": "x@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(403, "forbidden");
    let verify = tenant(&s, json!({"require_verified_email": true})).await;
    let new = auth(&s, &verify, "signup", json!({"email": "v@example.com", "password": "violet kettle drums"})).await;
    assert_eq!(new.status, 202);
    assert_eq!(new.body, json!({"verification_required": true}));
    let again = auth(&s, &verify, "signup", json!({"email": "V@example.com", "password": "another long one"})).await;
    assert_eq!((again.status, &again.body), (new.status, &new.body), "an existing account answers alike");

    let open = tenant(&s, Value::Null).await;
    signed_up(&s, &open, "taken@example.com").await;
    auth(&s, &open, "signup", json!({"email": "TAKEN@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(409, "conflict");
    auth(&s, &open, "signup", json!({"email": "weak@example.com", "password": "password1"}))
        .await
        .assert_problem(422, "validation_failed");
    auth(&s, &open, "signup", json!({"email": "x@example.com"})).await.assert_problem(422, "validation_failed");
    auth(&s, &open, "login", json!({"email": "x@example.com", "password": "p", "admin": true}))
        .await
        .assert_problem(422, "validation_failed");
    let raw = s
        .client
        .post(s.url(&format!("/t/{}/auth/login", open.slug)))
        .header("content-type", "application/json")
        .body("{\"email\":");
    s.send(raw).await.assert_problem(400, "malformed_json");
    let unknown = s
        .send(s.client.post(s.url("/t/no-such-tenant/auth/login")).json(&json!({"email": "a@b.co", "password": "x"})))
        .await;
    unknown.assert_problem(404, "not_found");
}

async fn changing_the_password_needs_the_current_one_and_signs_out_other_sessions(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let laptop = signed_up(&s, &t, "change@example.com").await;
    let phone = auth(&s, &t, "login", json!({"email": "change@example.com", "password": "violet kettle drums"})).await;
    let access = laptop["access_token"].as_str().unwrap();
    let change = |current: &str, new: &str| {
        s.client
            .post(s.url(&format!("/t/{}/auth/password/change", t.slug)))
            .bearer_auth(access)
            .json(&json!({"current_password": current, "new_password": new}))
    };
    s.send(change("not my password", "a brand new passphrase")).await.assert_problem(401, "invalid_credentials");
    let weak = s.send(change("violet kettle drums", "password1")).await;
    weak.assert_problem(422, "validation_failed");
    assert_eq!(weak.body["errors"][0]["field"], "new_password");
    let unauthenticated = s
        .client
        .post(s.url(&format!("/t/{}/auth/password/change", t.slug)))
        .json(&json!({"current_password": "violet kettle drums", "new_password": "a brand new passphrase"}));
    s.send(unauthenticated).await.assert_problem(401, "invalid_token");
    assert_eq!(s.send(change("violet kettle drums", "a brand new passphrase")).await.status, 204);

    // This session lives on; the other one is signed out.
    assert_eq!(me(&s, &t, access).await.status, 200);
    auth(&s, &t, "refresh", json!({"refresh_token": phone.body["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_token");
    me(&s, &t, phone.body["access_token"].as_str().unwrap()).await.assert_problem(401, "invalid_token");
    auth(&s, &t, "login", json!({"email": "change@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(401, "invalid_credentials");
    let fresh =
        auth(&s, &t, "login", json!({"email": "change@example.com", "password": "a brand new passphrase"})).await;
    assert_eq!(fresh.status, 200);

    let renamed = s
        .send(
            s.client
                .patch(s.url(&format!("/t/{}/auth/me", t.slug)))
                .bearer_auth(access)
                .json(&json!({"name": "Renate Ümlaut"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "Renate Ümlaut");
    let escalate = s
        .send(
            s.client
                .patch(s.url(&format!("/t/{}/auth/me", t.slug)))
                .bearer_auth(access)
                .json(&json!({"status": "active", "email_verified": true})),
        )
        .await;
    escalate.assert_problem(422, "validation_failed");
}

async fn users_see_and_end_their_own_sessions_only(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let first = signed_up(&s, &t, "devices@example.com").await;
    let login = || {
        s.client
            .post(s.url(&format!("/t/{}/auth/login", t.slug)))
            .header("user-agent", "PhoneApp/2.0")
            .json(&json!({"email": "devices@example.com", "password": "violet kettle drums"}))
    };
    let second = s.send(login()).await;
    let third = s.send(login()).await;
    let access = first["access_token"].as_str().unwrap();
    let sessions_path = format!("/t/{}/auth/sessions", t.slug);
    let listed = s.get(&sessions_path, access).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let data = listed.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(data[0]["current"], true);
    assert_eq!(data[1]["user_agent"], "PhoneApp/2.0");

    // Another user of the same tenant cannot end these sessions.
    let other = signed_up(&s, &t, "other-user@example.com").await;
    let victim_sid = data[1]["id"].as_str().unwrap();
    s.delete(&format!("{sessions_path}/{victim_sid}"), other["access_token"].as_str().unwrap())
        .await
        .assert_problem(404, "not_found");
    assert_eq!(s.delete(&format!("{sessions_path}/{victim_sid}"), access).await.status, 204);
    auth(&s, &t, "refresh", json!({"refresh_token": second.body["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_token");
    assert_eq!(s.get(&sessions_path, access).await.body["data"].as_array().unwrap().len(), 2);
    s.delete(&format!("{sessions_path}/not-a-session"), access).await.assert_problem(400, "invalid_path");

    // Sign out everywhere: every session ends, this one included.
    assert_eq!(s.delete(&sessions_path, access).await.status, 204);
    me(&s, &t, access).await.assert_problem(401, "invalid_token");
    auth(&s, &t, "refresh", json!({"refresh_token": third.body["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_token");
    assert_eq!(me(&s, &t, other["access_token"].as_str().unwrap()).await.status, 200, "other users are untouched");
}

fn set_cookies(reply: &Reply) -> Vec<String> {
    reply.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    let line =
        cookies.iter().find(|c| c.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("no {name} cookie"));
    line.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

async fn browsers_can_keep_the_refresh_token_in_a_csrf_protected_cookie(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({"allowed_origins": ["https://app.example.com"]})).await;
    signed_up(&s, &t, "browser@example.com").await;
    let login = auth(
        &s,
        &t,
        "login",
        json!({"email": "browser@example.com", "password": "violet kettle drums", "transport": "cookie"}),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert!(login.body.get("refresh_token").is_none(), "the refresh token is not in the body");
    assert!(login.body["access_token"].is_string());
    let cookies = set_cookies(&login);
    let refresh_cookie = cookies.iter().find(|c| c.starts_with("gh_refresh=")).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", &format!("Path=/t/{}/auth", t.slug)] {
        assert!(refresh_cookie.contains(attribute), "{refresh_cookie} lacks {attribute}");
    }
    let csrf_cookie = cookies.iter().find(|c| c.starts_with("gh_csrf=")).unwrap();
    assert!(!csrf_cookie.contains("HttpOnly"), "the page must be able to read the CSRF token");
    let (rt, csrf) = (cookie_value(&cookies, "gh_refresh"), cookie_value(&cookies, "gh_csrf"));

    let refresh = |cookie_header: String, csrf_header: Option<&str>, origin: Option<&str>| {
        let mut request = s
            .client
            .post(s.url(&format!("/t/{}/auth/refresh", t.slug)))
            .header("cookie", cookie_header)
            .json(&json!({}));
        if let Some(value) = csrf_header {
            request = request.header("x-csrf-token", value);
        }
        if let Some(value) = origin {
            request = request.header("origin", value);
        }
        request
    };
    let both = format!("gh_refresh={rt}; gh_csrf={csrf}");
    // A cross-site form post carries the cookies but cannot read or echo the CSRF token.
    s.send(refresh(both.clone(), None, None)).await.assert_problem(403, "csrf_failed");
    s.send(refresh(both.clone(), Some("guess"), None)).await.assert_problem(403, "csrf_failed");
    s.send(refresh(both.clone(), Some(&csrf), Some("https://evil.example.com")))
        .await
        .assert_problem(403, "csrf_failed");
    let ok = s.send(refresh(both.clone(), Some(&csrf), Some("https://app.example.com"))).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert!(ok.body.get("refresh_token").is_none());
    let rotated = set_cookies(&ok);
    let (rt2, csrf2) = (cookie_value(&rotated, "gh_refresh"), cookie_value(&rotated, "gh_csrf"));
    assert_ne!(rt2, rt, "the cookie carries the successor");

    let out = s
        .send(
            s.client
                .post(s.url(&format!("/t/{}/auth/logout", t.slug)))
                .header("cookie", format!("gh_refresh={rt2}; gh_csrf={csrf2}"))
                .header("x-csrf-token", &csrf2)
                .json(&json!({})),
        )
        .await;
    assert_eq!(out.status, 204);
    assert!(set_cookies(&out).iter().all(|c| c.contains("Max-Age=0")), "both cookies are cleared");
    let after = s.send(refresh(format!("gh_refresh={rt2}; gh_csrf={csrf2}"), Some(&csrf2), None)).await;
    after.assert_problem(401, "invalid_token");
    // No cookie and no body token: a plain invalid token.
    auth(&s, &t, "refresh", json!({})).await.assert_problem(401, "invalid_token");
}

async fn signups_per_ip_are_capped_and_the_excess_is_audited_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let mut statuses = Vec::new();
    for i in 0..13 {
        let r =
            auth(&s, &t, "signup", json!({"email": format!("bulk{i}@example.com"), "password": "violet kettle drums"}))
                .await;
        statuses.push(r.status);
        if r.status == 429 {
            r.assert_problem(429, "rate_limited");
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    let events = s.get(&format!("/v1/audit-events?tenant_id={}&action=rate_limit.exceeded", t.id), &s.admin).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(events.body["data"][0]["data"]["flow"], "signup");
}

async fn each_signing_algorithm_issues_tokens_that_work(backend: Backend) {
    let s = TestServer::start(backend).await;
    for (alg, kty) in [("EdDSA", "OKP"), ("RS256", "RSA")] {
        let t = tenant(&s, json!({"signing_alg": alg})).await;
        let set = signed_up(&s, &t, &format!("{}@example.com", alg.to_lowercase())).await;
        let token = set["access_token"].as_str().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], alg);
        assert_eq!(me(&s, &t, token).await.status, 200, "{alg}");
        let jwks = s.send(s.client.get(s.url(&format!("/t/{}/.well-known/jwks.json", t.slug)))).await;
        assert!(jwks.body["keys"].as_array().unwrap().iter().all(|k| k["kty"] == kty && k["alg"] == alg));
        let discovery = s.send(s.client.get(s.url(&format!("/t/{}/.well-known/openid-configuration", t.slug)))).await;
        assert_eq!(discovery.body["id_token_signing_alg_values_supported"], json!([alg]));
        // A token of this tenant, re-signed by nobody, with its alg header switched, is refused.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]})).unwrap());
        parts[0] = &forged_header;
        me(&s, &t, &parts.join(".")).await.assert_problem(401, "invalid_token");
    }
}

async fn introspect(s: &TestServer, t: &Tenant, bearer: Option<&str>, form: &str) -> Reply {
    let mut request = s
        .client
        .post(s.url(&format!("/t/{}/oauth2/introspect", t.slug)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    s.send(request).await
}

async fn introspection_sees_revocation_at_once_and_only_for_the_tenants_own_keys(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (a, b) = (tenant(&s, Value::Null).await, tenant(&s, Value::Null).await);
    let (_, key_a) = s.secret_key(&a.id).await;
    let (_, key_b) = s.secret_key(&b.id).await;
    let set = signed_up(&s, &a, "introspected@example.com").await;
    let access = set["access_token"].as_str().unwrap();
    let form = format!("token={access}&token_type_hint=access_token");

    let r = introspect(&s, &a, Some(&key_a), &form).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["sub"], set["user"]["id"]);
    assert_eq!(r.body["tid"], a.id.as_str());
    assert_eq!(r.body["username"], "introspected@example.com");
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // Another tenant's key, no key, a garbage key: the client is refused, nothing leaks.
    for bearer in [Some(key_b.as_str()), None, Some("sk_not_a_key")] {
        let r = introspect(&s, &a, bearer, &form).await;
        assert_eq!((r.status, r.body["error"].as_str()), (401, Some("invalid_client")), "{bearer:?}");
        assert!(r.body.get("sub").is_none());
    }
    // Tenant B's key on B's endpoint: A's token is not active there.
    assert_eq!(introspect(&s, &b, Some(&key_b), &form).await.body, json!({"active": false}));
    // Garbage and missing tokens.
    assert_eq!(introspect(&s, &a, Some(&key_a), "token=abc.def.ghi").await.body, json!({"active": false}));
    let r = introspect(&s, &a, Some(&key_a), "token_type_hint=access_token").await;
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")));

    // Logging out revokes the session: the still-unexpired JWT is inactive at once.
    let r = auth(&s, &a, "logout", json!({"refresh_token": set["refresh_token"]})).await;
    assert_eq!(r.status, 204);
    assert_eq!(introspect(&s, &a, Some(&key_a), &form).await.body, json!({"active": false}));
}

async fn tenant_changes_and_deletion_take_effect_at_once_despite_the_tenant_cache(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    // Warm the cache with the open-signup settings.
    signed_up(&s, &t, "cached@example.com").await;
    let r = s.patch(&format!("/v1/tenants/{}", t.id), &s.admin, json!({"settings": {"signup": "invite_only"}})).await;
    assert_eq!(r.status, 200);
    auth(&s, &t, "signup", json!({"email": "late@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(s.delete(&format!("/v1/tenants/{}", t.id), &s.admin).await.status, 204);
    auth(&s, &t, "login", json!({"email": "cached@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(404, "not_found");
    let jwks = s.send(s.client.get(s.url(&format!("/t/{}/.well-known/jwks.json", t.slug)))).await;
    jwks.assert_problem(404, "not_found");
}
