//! Second factors, black-box over HTTP on SQLite and Postgres: TOTP enrollment with live
//! codes (computed here with an independent HMAC-SHA1), the `mfa_token` step after every
//! first factor, recovery codes, policy, and the attacks the step exists to stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::{Backend, Reply, TestServer, base32_decode, code_at, step_now};

on_both_backends!(
    totp_enrollment_and_sign_in_with_live_codes_refuse_replays,
    no_first_factor_alone_yields_tokens_when_totp_is_on,
    mfa_tokens_are_single_use_bound_and_limited,
    recovery_codes_work_once_and_can_be_regenerated,
    disabling_totp_needs_a_fresh_factor,
    required_policy_makes_new_users_enroll_before_any_token,
    an_mfa_off_tenant_offers_no_totp,
    sensitive_actions_need_a_recent_sign_in_or_a_step_up,
);

const PASSWORD: &str = "violet kettle drums";

type Tenant = support::AuthTenant;

async fn tenant(s: &TestServer, settings: Value) -> Tenant {
    s.auth_tenant("mfa", settings).await
}

async fn auth(s: &TestServer, t: &Tenant, route: &str, body: Value) -> Reply {
    s.auth(t, route, body).await
}

async fn auth_as(s: &TestServer, t: &Tenant, route: &str, access: &str, body: Value) -> Reply {
    s.post(&format!("/t/{}/auth/{route}", t.slug), access, body).await
}

/// Signs up, enables TOTP; returns (access token, secret, recovery codes, step used).
async fn enrolled(s: &TestServer, t: &Tenant, email: &str) -> (String, Vec<u8>, Vec<String>, u64) {
    let r = auth(s, t, "signup", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let setup = auth_as(s, t, "totp/setup", &access, json!({})).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let secret = base32_decode(setup.body["secret"].as_str().unwrap());
    let step = step_now();
    let enable = auth_as(s, t, "totp/enable", &access, json!({"code": code_at(&secret, step)})).await;
    assert_eq!(enable.status, 200, "{:?}", enable.body);
    let codes =
        enable.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (access, secret, codes, step)
}

async fn challenge(s: &TestServer, t: &Tenant, email: &str) -> String {
    let r = auth(s, t, "login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["mfa_required"], true, "{:?}", r.body);
    assert!(r.body.get("access_token").is_none() && r.body.get("refresh_token").is_none());
    r.body["mfa_token"].as_str().unwrap().to_owned()
}

/// The kinds of the messages queued for `email`, oldest first.
async fn notices(s: &TestServer, t: &Tenant, email: &str) -> Vec<String> {
    let r = s.get(&format!("/v1/tenants/{}/dev/outbox?limit=100", t.id), &s.admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == email)
        .map(|m| m["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn totp_enrollment_and_sign_in_with_live_codes_refuse_replays(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({"branding": {"display_name": "Acme"}})).await;
    let r = auth(&s, &t, "signup", json!({"email": "totp@example.com", "password": PASSWORD})).await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let setup = auth_as(&s, &t, "totp/setup", &access, json!({})).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let uri = setup.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Acme:totp%40example.com?")
            || uri.starts_with("otpauth://totp/Acme:totp@example.com?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=Acme") && uri.contains(&format!("secret={}", setup.body["secret"].as_str().unwrap())));
    assert!(setup.body["qr_svg"].as_str().unwrap().contains("<svg"));
    // Set up but not enabled: sign-in is unchanged.
    let plain = auth(&s, &t, "login", json!({"email": "totp@example.com", "password": PASSWORD})).await;
    assert!(plain.body["access_token"].is_string(), "{:?}", plain.body);
    let secret = base32_decode(setup.body["secret"].as_str().unwrap());
    let step = step_now();
    let wrong = if code_at(&secret, step) == "000000" { "111111" } else { "000000" };
    auth_as(&s, &t, "totp/enable", &access, json!({"code": wrong})).await.assert_problem(400, "invalid_code");
    let enable = auth_as(&s, &t, "totp/enable", &access, json!({"code": code_at(&secret, step)})).await;
    assert_eq!(enable.status, 200, "{:?}", enable.body);
    assert_eq!(enable.body["recovery_codes"].as_array().unwrap().len(), 10);
    auth_as(&s, &t, "totp/setup", &access, json!({})).await.assert_problem(409, "conflict");
    // Sign in: password, then the next step's code (±1 step of drift is accepted).
    let token = challenge(&s, &t, "totp@example.com").await;
    // The code that enabled TOTP is spent for the rest of its window.
    auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": code_at(&secret, step)}))
        .await
        .assert_problem(400, "invalid_code");
    let next = code_at(&secret, step + 1);
    let ok = auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": next})).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let amr = claims(ok.body["access_token"].as_str().unwrap())["amr"].clone();
    assert_eq!(amr, json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims(ok.body["access_token"].as_str().unwrap())["acr"], "aal2");
    assert_eq!(claims(plain.body["access_token"].as_str().unwrap())["acr"], "aal1");
    // Replaying the accepted code on a fresh challenge fails; so does an older one.
    let again = challenge(&s, &t, "totp@example.com").await;
    auth(&s, &t, "mfa/verify", json!({"mfa_token": again, "factor": "totp", "code": next}))
        .await
        .assert_problem(400, "invalid_code");
    let status = s.get(&format!("/t/{}/auth/mfa", t.slug), ok.body["access_token"].as_str().unwrap()).await;
    assert_eq!((status.body["totp"].clone(), status.body["recovery_codes_left"].clone()), (json!(true), json!(10)));
}

async fn no_first_factor_alone_yields_tokens_when_totp_is_on(backend: Backend) {
    let s = TestServer::start_with(backend, &[("GATEHOUSE_DELIVERY_POLL_MS", "50")]).await;
    let redirect = "https://app.example.test/cb";
    let t = tenant(&s, json!({"redirect_uris": [redirect]})).await;
    let (access, secret, _, step) = enrolled(&s, &t, "gated@example.com").await;
    // Password.
    challenge(&s, &t, "gated@example.com").await;
    // Email code and magic link: the first factor is consumed, the answer is a challenge.
    assert_eq!(auth(&s, &t, "otp/send", json!({"channel": "email", "email": "gated@example.com"})).await.status, 202);
    assert_eq!(
        auth(&s, &t, "magic-link/send", json!({"email": "gated@example.com", "redirect_uri": redirect})).await.status,
        202
    );
    let outbox = s.get(&format!("/v1/tenants/{}/dev/outbox?limit=100", t.id), &s.admin).await;
    let text = |kind: &str| {
        outbox.body["data"].as_array().unwrap().iter().rev().find(|m| m["kind"] == kind).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let code = text("email_login_code")
        .split_whitespace()
        .find(|w| w.trim_end_matches('.').len() == 6 && w.trim_end_matches('.').bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .trim_end_matches('.')
        .to_owned();
    let by_code =
        auth(&s, &t, "otp/verify", json!({"channel": "email", "email": "gated@example.com", "code": code})).await;
    assert_eq!((by_code.status, by_code.body["mfa_required"].clone()), (200, json!(true)), "{:?}", by_code.body);
    assert!(by_code.body.get("access_token").is_none());
    let link = text("magic_link");
    let token = link[link.find("token=").unwrap() + 6..].split_whitespace().next().unwrap().to_owned();
    let by_link = s
        .send(
            s.client
                .get(s.url(&format!("/t/{}/auth/magic-link/verify?token={token}", t.slug)))
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!((by_link.status, by_link.body["mfa_required"].clone()), (200, json!(true)), "{:?}", by_link.body);
    // The challenge from the magic link completes with a code; its amr records both.
    let done = auth(
        &s,
        &t,
        "mfa/verify",
        json!({"mfa_token": by_link.body["mfa_token"], "factor": "totp", "code": code_at(&secret, step + 1)}),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(claims(done.body["access_token"].as_str().unwrap())["amr"], json!(["email", "otp", "mfa"]));
    // Sessions from before enrollment keep working (they were already signed in).
    assert_eq!(s.get(&format!("/t/{}/auth/me", t.slug), &access).await.status, 200);
}

async fn mfa_tokens_are_single_use_bound_and_limited(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let other = tenant(&s, Value::Null).await;
    let (_, secret, _, step) = enrolled(&s, &t, "bound@example.com").await;
    let token = challenge(&s, &t, "bound@example.com").await;
    // Another tenant does not know the token.
    auth(&s, &other, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": code_at(&secret, step + 1)}))
        .await
        .assert_problem(401, "invalid_token");
    // Garbage and tampered tokens.
    auth(&s, &t, "mfa/verify", json!({"mfa_token": "mfa_nope", "factor": "totp", "code": "123456"}))
        .await
        .assert_problem(401, "invalid_token");
    auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "sms", "code": "123456"}))
        .await
        .assert_problem(422, "validation_failed");
    let ok =
        auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": code_at(&secret, step + 1)}))
            .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    // Used once.
    auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": code_at(&secret, step + 1)}))
        .await
        .assert_problem(401, "invalid_token");
    // Five wrong answers, then the challenge is refused.
    let token = challenge(&s, &t, "bound@example.com").await;
    let wrong = |c: &str| json!({"mfa_token": token, "factor": "totp", "code": c});
    let bad = ["000001", "000002", "000003", "000004", "000005"]
        .into_iter()
        .filter(|c| ![step - 1, step, step + 1].iter().any(|st| code_at(&secret, *st) == *c));
    let mut sent = 0;
    for c in bad {
        auth(&s, &t, "mfa/verify", wrong(c)).await.assert_problem(400, "invalid_code");
        sent += 1;
    }
    assert!(sent >= 4);
    for _ in sent..5 {
        auth(&s, &t, "mfa/verify", wrong("999999")).await;
    }
    let r =
        auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "recovery_code", "code": "abcde-fghij"})).await;
    r.assert_problem(429, "rate_limited");
    // A new sign-in supersedes the older challenge.
    let first = challenge(&s, &t, "bound@example.com").await;
    let _second = challenge(&s, &t, "bound@example.com").await;
    auth(&s, &t, "mfa/verify", json!({"mfa_token": first, "factor": "totp", "code": code_at(&secret, step + 1)}))
        .await
        .assert_problem(401, "invalid_token");
}

async fn recovery_codes_work_once_and_can_be_regenerated(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let (access, secret, codes, step) = enrolled(&s, &t, "rescue@example.com").await;
    let token = challenge(&s, &t, "rescue@example.com").await;
    // Case and separators do not matter.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let ok = auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "recovery_code", "code": typed})).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(claims(ok.body["access_token"].as_str().unwrap())["amr"], json!(["pwd", "rc", "mfa"]));
    let token = challenge(&s, &t, "rescue@example.com").await;
    auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "recovery_code", "code": codes[0]}))
        .await
        .assert_problem(400, "invalid_code");
    let events = s.get(&format!("/v1/audit-events?tenant_id={}&action=mfa.recovery_code_used", t.id), &s.admin).await;
    assert_eq!(events.body["data"][0]["data"]["recovery_codes_left"], 9);
    // Regenerating needs a TOTP code and replaces the whole set.
    auth_as(&s, &t, "recovery-codes/regenerate", &access, json!({"code": "000000"}))
        .await
        .assert_problem(400, "invalid_code");
    let fresh =
        auth_as(&s, &t, "recovery-codes/regenerate", &access, json!({"code": code_at(&secret, step + 1)})).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    let new_codes = fresh.body["recovery_codes"].as_array().unwrap();
    assert_eq!(new_codes.len(), 10);
    let token = challenge(&s, &t, "rescue@example.com").await;
    auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "recovery_code", "code": codes[1]}))
        .await
        .assert_problem(400, "invalid_code");
    let ok =
        auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "recovery_code", "code": new_codes[0]})).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    // Every factor change told the user.
    assert_eq!(
        notices(&s, &t, "rescue@example.com").await,
        ["verify_email", "mfa_enabled", "recovery_code_used", "recovery_codes_regenerated", "recovery_code_used"]
    );
}

async fn disabling_totp_needs_a_fresh_factor(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let (access, _, codes, _) = enrolled(&s, &t, "off@example.com").await;
    auth_as(&s, &t, "totp/disable", &access, json!({"factor": "recovery_code", "code": "wrong-codes"}))
        .await
        .assert_problem(400, "invalid_code");
    let r = auth_as(&s, &t, "totp/disable", &access, json!({"factor": "recovery_code", "code": codes[2]})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let login = auth(&s, &t, "login", json!({"email": "off@example.com", "password": PASSWORD})).await;
    assert!(login.body["access_token"].is_string(), "{:?}", login.body);
    let status = s.get(&format!("/t/{}/auth/mfa", t.slug), &access).await;
    assert_eq!((status.body["totp"].clone(), status.body["recovery_codes_left"].clone()), (json!(false), json!(0)));
    assert_eq!(
        notices(&s, &t, "off@example.com").await,
        ["verify_email", "mfa_enabled", "recovery_code_used", "mfa_disabled"]
    );
}

async fn required_policy_makes_new_users_enroll_before_any_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({"mfa": "required"})).await;
    let r = auth(&s, &t, "signup", json!({"email": "must@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((r.body["mfa_required"].clone(), r.body["enrollment_required"].clone()), (json!(true), json!(true)));
    assert!(r.body.get("access_token").is_none());
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    // The enrollment token is not a second factor.
    auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": "123456"}))
        .await
        .assert_problem(403, "forbidden");
    // Nor a bearer token.
    s.get(&format!("/t/{}/auth/me", t.slug), &token).await.assert_problem(401, "invalid_token");
    let setup = auth(&s, &t, "totp/setup", json!({"mfa_token": token})).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let secret = base32_decode(setup.body["secret"].as_str().unwrap());
    let step = step_now();
    let enabled = auth(&s, &t, "totp/enable", json!({"mfa_token": token, "code": code_at(&secret, step)})).await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    assert_eq!(enabled.body["recovery_codes"].as_array().unwrap().len(), 10);
    let access = enabled.body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(s.get(&format!("/t/{}/auth/me", t.slug), access).await.status, 200);
    // The enrollment token is spent; the next sign-in asks for the factor.
    auth(&s, &t, "totp/setup", json!({"mfa_token": token})).await.assert_problem(401, "invalid_token");
    let again = auth(&s, &t, "login", json!({"email": "must@example.com", "password": PASSWORD})).await;
    assert_eq!(
        (again.body["mfa_required"].clone(), again.body["enrollment_required"].clone()),
        (json!(true), json!(false))
    );
}

async fn an_mfa_off_tenant_offers_no_totp(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({"mfa": "off"})).await;
    let r = auth(&s, &t, "signup", json!({"email": "none@example.com", "password": PASSWORD})).await;
    let access = r.body["access_token"].as_str().unwrap();
    auth_as(&s, &t, "totp/setup", access, json!({})).await.assert_problem(403, "forbidden");
    let _ = &t.id;
}

/// Signs in (password only) and ages the session's sign-in past the step-up window.
async fn stale_session(s: &TestServer, t: &Tenant, email: &str) -> String {
    let r = auth(s, t, "signup", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    s.sql(
        "UPDATE sessions SET auth_time = auth_time - 600000000",
        "UPDATE sessions SET auth_time = auth_time - interval '10 minutes'",
    )
    .await;
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn sensitive_actions_need_a_recent_sign_in_or_a_step_up(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, Value::Null).await;
    let access = stale_session(&s, &t, "old@example.com").await;
    // Reading is fine; changing what protects the account is not.
    assert_eq!(s.get(&format!("/t/{}/auth/me", t.slug), &access).await.status, 200);
    auth_as(&s, &t, "email/change", &access, json!({"new_email": "new@example.com"}))
        .await
        .assert_problem(403, "step_up_required");
    auth_as(
        &s,
        &t,
        "password/change",
        &access,
        json!({"current_password": PASSWORD, "new_password": "another good one"}),
    )
    .await
    .assert_problem(403, "step_up_required");
    s.delete(&format!("/t/{}/auth/sessions", t.slug), &access).await.assert_problem(403, "step_up_required");
    // Step up with the password.
    auth_as(&s, &t, "step-up", &access, json!({"factor": "password", "code": "wrong password!"}))
        .await
        .assert_problem(401, "invalid_credentials");
    let up = auth_as(&s, &t, "step-up", &access, json!({"factor": "password", "code": PASSWORD})).await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    let step_up = up.body["step_up_token"].as_str().unwrap().to_owned();
    let with = |path: &str, body: Value| {
        s.client
            .post(s.url(&format!("/t/{}/auth/{path}", t.slug)))
            .bearer_auth(&access)
            .header("x-step-up-token", step_up.as_str())
            .json(&body)
    };
    let changed = s.send(with("email/change", json!({"new_email": "new@example.com"}))).await;
    assert_eq!(changed.status, 202, "{:?}", changed.body);
    // One action per token.
    s.send(with("email/change", json!({"new_email": "new2@example.com"})))
        .await
        .assert_problem(403, "step_up_required");
    // A token of another session does not count.
    let other = auth(&s, &t, "login", json!({"email": "old@example.com", "password": PASSWORD})).await;
    let other_access = other.body["access_token"].as_str().unwrap().to_owned();
    let up = auth_as(&s, &t, "step-up", &other_access, json!({"factor": "password", "code": PASSWORD})).await;
    let foreign = up.body["step_up_token"].as_str().unwrap();
    let r = s
        .send(
            s.client
                .delete(s.url(&format!("/t/{}/auth/sessions", t.slug)))
                .bearer_auth(&access)
                .header("x-step-up-token", foreign),
        )
        .await;
    r.assert_problem(403, "step_up_required");
    // With TOTP enabled, only the second factor steps up.
    let (_, secret, codes, step) = enrolled(&s, &t, "strong@example.com").await;
    s.sql(
        "UPDATE sessions SET auth_time = auth_time - 600000000",
        "UPDATE sessions SET auth_time = auth_time - interval '10 minutes'",
    )
    .await;
    let token = challenge(&s, &t, "strong@example.com").await;
    let signed =
        auth(&s, &t, "mfa/verify", json!({"mfa_token": token, "factor": "totp", "code": code_at(&secret, step + 1)}))
            .await;
    let strong = signed.body["access_token"].as_str().unwrap().to_owned();
    s.sql(
        "UPDATE sessions SET auth_time = auth_time - 600000000",
        "UPDATE sessions SET auth_time = auth_time - interval '10 minutes'",
    )
    .await;
    auth_as(&s, &t, "totp/disable", &strong, json!({"factor": "recovery_code", "code": codes[0]}))
        .await
        .assert_problem(403, "step_up_required");
    auth_as(&s, &t, "step-up", &strong, json!({"factor": "password", "code": PASSWORD}))
        .await
        .assert_problem(403, "forbidden");
    let up = auth_as(&s, &t, "step-up", &strong, json!({"factor": "recovery_code", "code": codes[1]})).await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    let r = s
        .send(
            s.client
                .post(s.url(&format!("/t/{}/auth/totp/disable", t.slug)))
                .bearer_auth(&strong)
                .header("x-step-up-token", up.body["step_up_token"].as_str().unwrap())
                .json(&json!({"factor": "recovery_code", "code": codes[0]})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}
