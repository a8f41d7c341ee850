//! Operator accounts over REST on SQLite and Postgres: created by an owner, signed in
//! with a password and a mandatory TOTP (enrolled at the first sign-in, codes computed
//! here independently), scoped by role and tenants, audited, disabled and signed out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::{Value, json};
use support::{Backend, TestServer, base32_decode, code_at, step_now};

on_both_backends!(operators_sign_in_with_totp_and_act_within_their_role,);

const PASSWORD: &str = "a long operator passphrase";

async fn operators_sign_in_with_totp_and_act_within_their_role(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t1 = s.tenant("ops").await;
    let t2 = s.tenant("ops").await;
    let (id1, id2) = (t1["id"].as_str().unwrap(), t2["id"].as_str().unwrap());
    let create = |body: Value| s.post("/v1/operators", &s.admin, body);
    let body = json!({"email": "Sam@Example.com", "name": "Sam", "password": PASSWORD, "role": "support_admin", "tenant_ids": [id1]});
    let r = create(body.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((r.body["role"].clone(), r.body["totp_enrolled"].clone()), (json!("support_admin"), json!(false)));
    assert!(r.body.get("password_hash").is_none());
    let sam_id = r.body["id"].as_str().unwrap().to_owned();
    create(body).await.assert_problem(409, "conflict");
    create(json!({"email": "x@example.com", "password": "short", "role": "owner"}))
        .await
        .assert_problem(422, "validation_failed");

    // Wrong password and unknown address answer alike.
    let sign_in = |email: &str, password: &str| {
        s.send(s.client.post(s.url("/v1/operator-sessions")).json(&json!({"email": email, "password": password})))
    };
    sign_in("sam@example.com", "not the passphrase").await.assert_problem(401, "invalid_credentials");
    sign_in("nobody@example.com", PASSWORD).await.assert_problem(401, "invalid_credentials");
    let verify = |challenge: &str, code: &str| {
        s.send(
            s.client.post(s.url("/v1/operator-sessions/verify")).json(&json!({"challenge": challenge, "code": code})),
        )
    };
    // First sign-in: enroll TOTP. A wrong code spends the challenge.
    let r = sign_in("sam@example.com", PASSWORD).await;
    assert_eq!((r.status, r.body["totp_setup_required"].clone()), (200, json!(true)), "{:?}", r.body);
    let secret = base32_decode(r.body["secret"].as_str().unwrap());
    let challenge = r.body["challenge"].as_str().unwrap().to_owned();
    let step = step_now();
    let wrong = if code_at(&secret, step) == "000000" { "111111" } else { "000000" };
    verify(&challenge, wrong).await.assert_problem(400, "invalid_code");
    verify(&challenge, &code_at(&secret, step)).await.assert_problem(401, "invalid_token");
    let r = sign_in("sam@example.com", PASSWORD).await;
    let secret = base32_decode(r.body["secret"].as_str().unwrap());
    let r = verify(r.body["challenge"].as_str().unwrap(), &code_at(&secret, step)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("gh_ops_"));

    // Later sign-ins ask for a code; the enrolling code does not work twice.
    let r = sign_in("sam@example.com", PASSWORD).await;
    assert_eq!(r.body["totp_setup_required"], false);
    assert!(r.body["secret"].is_null());
    verify(r.body["challenge"].as_str().unwrap(), &code_at(&secret, step)).await.assert_problem(400, "invalid_code");
    let r = sign_in("sam@example.com", PASSWORD).await;
    let second = verify(r.body["challenge"].as_str().unwrap(), &code_at(&secret, step + 1)).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let second = second.body["token"].as_str().unwrap().to_owned();

    // The session acts as a scoped support admin.
    assert_eq!(s.get(&format!("/v1/tenants/{id1}/users"), &token).await.status, 200);
    let r = s.post(&format!("/v1/tenants/{id1}/organizations"), &token, json!({"slug": "by-sam", "name": "x"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    s.post(&format!("/v1/tenants/{id1}/secret-keys"), &token, json!({})).await.assert_problem(403, "forbidden");
    s.get(&format!("/v1/tenants/{id2}/users"), &token).await.assert_problem(404, "not_found");
    s.get("/v1/operators", &token).await.assert_problem(403, "forbidden");
    let events = s.get(&format!("/v1/audit-events?tenant_id={id1}&action=organization.create"), &s.admin).await;
    let event = &events.body["data"][0];
    assert_eq!((event["actor_type"].clone(), event["actor_id"].clone()), (json!("operator"), json!(sam_id)));

    // Signing out ends that session only; disabling ends every session.
    let out = s.send(s.client.delete(s.url("/v1/operator-sessions/current")).bearer_auth(&token)).await;
    assert_eq!(out.status, 204);
    s.get(&format!("/v1/tenants/{id1}/users"), &token).await.assert_problem(401, "unauthorized");
    assert_eq!(s.get(&format!("/v1/tenants/{id1}/users"), &second).await.status, 200);
    let r = s.patch(&format!("/v1/operators/{sam_id}"), &s.admin, json!({"disabled": true})).await;
    assert_eq!((r.status, r.body["disabled"].clone()), (200, json!(true)), "{:?}", r.body);
    s.get(&format!("/v1/tenants/{id1}/users"), &second).await.assert_problem(401, "unauthorized");
    sign_in("sam@example.com", PASSWORD).await.assert_problem(401, "invalid_credentials");

    // An unrestricted owner operator manages operators.
    let r = create(json!({"email": "olga@example.com", "password": PASSWORD, "role": "owner"})).await;
    let olga_id = r.body["id"].as_str().unwrap().to_owned();
    let r = sign_in("olga@example.com", PASSWORD).await;
    let secret = base32_decode(r.body["secret"].as_str().unwrap());
    let olga = verify(r.body["challenge"].as_str().unwrap(), &code_at(&secret, step_now())).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = s.get("/v1/operators", &olga).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2, "{:?}", listed.body);
    let r = s
        .patch(
            &format!("/v1/operators/{sam_id}"),
            &olga,
            json!({"disabled": false, "role": "read_only_auditor", "tenant_ids": null}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["role"].clone(), r.body["tenant_ids"].clone()),
        (200, json!("read_only_auditor"), Value::Null)
    );
    s.delete(&format!("/v1/operators/{olga_id}"), &olga).await.assert_problem(403, "forbidden");
    assert_eq!(s.delete(&format!("/v1/operators/{sam_id}"), &olga).await.status, 204);
    sign_in("sam@example.com", PASSWORD).await.assert_problem(401, "invalid_credentials");
}
