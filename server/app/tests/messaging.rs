//! Email, SMS and passwordless flows, black-box over HTTP on SQLite and Postgres. Mail
//! goes through a real SMTP conversation with a sink started here on loopback (or the
//! dev outbox); SMS through a local Twilio-compatible fake. Includes the attacks each
//! mechanism exists to stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Backend, Reply, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

on_both_backends!(
    password_reset_by_emailed_link_over_real_smtp,
    email_verification_by_code_or_link_gates_login_when_required,
    magic_links_redirect_with_a_one_time_code_and_die_after_use,
    email_codes_sign_in_create_accounts_and_die_after_five_wrong_guesses,
    parallel_redemptions_of_one_code_sign_in_once,
    sms_codes_go_through_a_twilio_compatible_provider,
    email_change_is_confirmed_at_the_new_address_and_undone_from_the_old,
    templates_speak_german_and_tenant_overrides_win,
    queued_mail_survives_a_restart_and_is_sent_exactly_once,
    the_dev_outbox_is_for_operators_and_only_without_smtp,
    magic_links_can_be_bound_to_the_asking_browser,
    sms_through_a_signed_webhook_and_final_failures_are_visible,
    two_replicas_deliver_each_message_once,
    message_requests_are_limited_per_address,
    expired_links_and_codes_are_refused,
    queued_mail_goes_out_without_waiting_for_the_poll,
);

const PUBLIC_URL: &str = "https://id.example.test";

/// One message the sink received.
#[derive(Debug, Clone)]
struct Mail {
    to: String,
    subject: String,
    text: String,
    html: Option<String>,
    message_id: String,
}

/// A minimal SMTP server: accepts everything, keeps each message.
#[derive(Clone, Default)]
struct Sink {
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl Sink {
    async fn start_on(listener: tokio::net::TcpListener) -> Self {
        let sink = Self::default();
        let mails = sink.mails.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let mails = mails.clone();
                tokio::spawn(async move {
                    let _ = converse(socket, mails).await;
                });
            }
        });
        sink
    }

    async fn start() -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (Self::start_on(listener).await, port)
    }

    fn to(&self, address: &str) -> Vec<Mail> {
        self.mails.lock().unwrap().iter().filter(|m| m.to == address).cloned().collect()
    }

    /// Waits (bounded) until `address` has `n` messages; returns the last.
    async fn wait(&self, address: &str, n: usize) -> Mail {
        for _ in 0..200 {
            let mails = self.to(address);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail #{n} for {address}; got {:?}", self.mails.lock().unwrap());
    }
}

async fn converse(socket: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut to = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") || command.starts_with("HELO") {
            write.write_all(b"250-sink.test\r\n250 8BITMIME\r\n").await?;
        } else if command.starts_with("RCPT TO:") {
            to = line.trim_end()[8..].trim().trim_matches(['<', '>']).to_owned();
            write.write_all(b"250 ok\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut raw = Vec::new();
            loop {
                line.clear();
                lines.read_line(&mut line).await?;
                if line == ".\r\n" || line.is_empty() {
                    break;
                }
                raw.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
            }
            mails.lock().unwrap().push(parse(&to, &raw));
            write.write_all(b"250 queued\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 ok\r\n").await?;
        }
    }
}

fn parse(to: &str, raw: &[u8]) -> Mail {
    use mailparse::MailHeaderMap;
    let parsed = mailparse::parse_mail(raw).unwrap();
    let subject = parsed.headers.get_first_value("Subject").unwrap_or_default();
    let message_id = parsed.headers.get_first_value("Message-ID").unwrap_or_default();
    let mut text = String::new();
    let mut html = None;
    let parts = if parsed.subparts.is_empty() { vec![&parsed] } else { parsed.subparts.iter().collect() };
    for part in parts {
        match part.ctype.mimetype.as_str() {
            "text/plain" => text = part.get_body().unwrap(),
            "text/html" => html = Some(part.get_body().unwrap()),
            _ => {}
        }
    }
    Mail { to: to.to_owned(), subject, text, html, message_id }
}

/// The link token (`token=…`) in a body.
fn token_in(text: &str) -> String {
    let start = text.find("token=").unwrap_or_else(|| panic!("no token in {text}")) + 6;
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

/// The first link in a body.
fn link_in(text: &str) -> String {
    let start = text.find("https://").unwrap_or_else(|| panic!("no link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// The first word of exactly six digits in a body (never part of a link).
fn code_in(text: &str) -> String {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()))
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned()
}

type Tenant = support::AuthTenant;

async fn tenant(s: &TestServer, settings: Value) -> Tenant {
    s.auth_tenant("msg", settings).await
}

async fn auth(s: &TestServer, t: &Tenant, route: &str, body: Value) -> Reply {
    s.auth(t, route, body).await
}

async fn auth_as(s: &TestServer, t: &Tenant, route: &str, access: &str, body: Value) -> Reply {
    s.post(&format!("/t/{}/auth/{route}", t.slug), access, body).await
}

async fn smtp_server(backend: Backend) -> (TestServer, Sink) {
    let (sink, port) = Sink::start().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let s = TestServer::start_with(
        backend,
        &[
            ("GATEHOUSE_SMTP_URL", url.as_str()),
            ("GATEHOUSE_DELIVERY_POLL_MS", "50"),
            ("GATEHOUSE_PUBLIC_URL", PUBLIC_URL),
            ("GATEHOUSE_MAIL_FROM", "Gatehouse Test <id@example.test>"),
        ],
    )
    .await;
    (s, sink)
}

async fn dev_server(backend: Backend, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![("GATEHOUSE_DELIVERY_POLL_MS", "50"), ("GATEHOUSE_PUBLIC_URL", PUBLIC_URL)];
    vars.extend_from_slice(extra);
    TestServer::start_with(backend, &vars).await
}

/// Messages in the dev outbox to `to`, oldest first.
async fn outbox(s: &TestServer, t: &Tenant, to: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/tenants/{}/dev/outbox?limit=100", t.id), &s.admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().unwrap().iter().filter(|m| m["recipient"] == to).cloned().collect()
}

async fn signed_up(s: &TestServer, t: &Tenant, email: &str) -> Value {
    let r = auth(s, t, "signup", json!({"email": email, "password": "violet kettle drums"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

async fn password_reset_by_emailed_link_over_real_smtp(backend: Backend) {
    let (s, sink) = smtp_server(backend).await;
    let t = tenant(&s, Value::Null).await;
    let first = signed_up(&s, &t, "reset@example.com").await;
    // The sign-up sent the verification message.
    let welcome = sink.wait("reset@example.com", 1).await;
    assert!(welcome.subject.contains("Confirm your email"), "{welcome:?}");
    // Spoofed Host and X-Forwarded-Host do not move the link.
    let forgot = s
        .send(
            s.client
                .post(s.url(&format!("/t/{}/auth/password/forgot", t.slug)))
                .header("host", "evil.example")
                .header("x-forwarded-host", "evil.example")
                .json(&json!({"email": "RESET@example.com"})),
        )
        .await;
    assert_eq!(forgot.status, 202, "{:?}", forgot.body);
    let mail = sink.wait("reset@example.com", 2).await;
    assert!(mail.subject.starts_with("Reset your"), "{mail:?}");
    assert!(mail.message_id.ends_with("@gatehouse>"), "{mail:?}");
    let link = link_in(&mail.text);
    assert!(link.starts_with(&format!("{PUBLIC_URL}/t/{}/reset-password?token=ot_", t.slug)), "{link}");
    assert!(!mail.text.contains("evil") && !mail.html.unwrap().contains("evil"));
    // An unknown address gets the same answer and no mail.
    let unknown = auth(&s, &t, "password/forgot", json!({"email": "nobody@example.com"})).await;
    assert_eq!((unknown.status, unknown.body.clone()), (forgot.status, forgot.body.clone()));
    let token = token_in(&mail.text);
    // Tampered and weak passwords are refused without spending the token.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    auth(&s, &t, "password/reset", json!({"token": tampered, "new_password": "a brand new secret"}))
        .await
        .assert_problem(400, "invalid_code");
    auth(&s, &t, "password/reset", json!({"token": token, "new_password": "short"}))
        .await
        .assert_problem(422, "validation_failed");
    let done = auth(&s, &t, "password/reset", json!({"token": token, "new_password": "a brand new secret"})).await;
    assert_eq!(done.status, 204, "{:?}", done.body);
    // Used once only; every session was signed out; the new password works.
    auth(&s, &t, "password/reset", json!({"token": token, "new_password": "another new secret"}))
        .await
        .assert_problem(400, "invalid_code");
    auth(&s, &t, "refresh", json!({"refresh_token": first["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_token");
    auth(&s, &t, "login", json!({"email": "reset@example.com", "password": "violet kettle drums"}))
        .await
        .assert_problem(401, "invalid_credentials");
    let login = auth(&s, &t, "login", json!({"email": "reset@example.com", "password": "a brand new secret"})).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["user"]["email_verified"], true);
    let notice = sink.wait("reset@example.com", 3).await;
    assert!(notice.subject.contains("password was changed"), "{notice:?}");
    assert_eq!(sink.to("nobody@example.com").len(), 0);
    // Both requests are audited alike, without naming the account.
    let events = s.get(&format!("/v1/audit-events?tenant_id={}&action=password.reset_requested", t.id), &s.admin).await;
    let events = events.body["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().any(|e| e["data"]["account"] == "none" && e["actor_type"] == "anonymous"), "{events:?}");
}

async fn email_verification_by_code_or_link_gates_login_when_required(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, json!({"require_verified_email": true})).await;
    for (email, by_code) in [("code@example.com", true), ("link@example.com", false)] {
        let r = auth(&s, &t, "signup", json!({"email": email, "password": "violet kettle drums"})).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let login = json!({"email": email, "password": "violet kettle drums"});
        auth(&s, &t, "login", login.clone()).await.assert_problem(403, "email_not_verified");
        // A wrong password still says only "invalid credentials".
        auth(&s, &t, "login", json!({"email": email, "password": "wrong wrong wrong"}))
            .await
            .assert_problem(401, "invalid_credentials");
        let messages = outbox(&s, &t, email).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        let text = messages[0]["text"].as_str().unwrap();
        let proof = if by_code {
            auth(&s, &t, "email/verify", json!({"email": email, "code": "000000"}))
                .await
                .assert_problem(400, "invalid_code");
            json!({"email": email, "code": code_in(text)})
        } else {
            json!({"token": token_in(text)})
        };
        let verified = auth(&s, &t, "email/verify", proof.clone()).await;
        assert_eq!(verified.status, 204, "{:?}", verified.body);
        auth(&s, &t, "email/verify", proof).await.assert_problem(400, "invalid_code");
        let ok = auth(&s, &t, "login", login).await;
        assert_eq!(ok.status, 200, "{:?}", ok.body);
        assert_eq!(ok.body["user"]["email_verified"], true);
    }
    // Resending to an unknown or verified address answers alike and sends nothing.
    for email in ["code@example.com", "ghost@example.com"] {
        let r = auth(&s, &t, "email/verify/send", json!({"email": email})).await;
        assert_eq!(r.status, 202);
    }
    assert_eq!(outbox(&s, &t, "code@example.com").await.len(), 1);
    assert!(outbox(&s, &t, "ghost@example.com").await.is_empty());
}

async fn magic_links_redirect_with_a_one_time_code_and_die_after_use(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let redirect = "https://app.example.test/callback";
    let t = tenant(&s, json!({"redirect_uris": [redirect]})).await;
    signed_up(&s, &t, "magic@example.com").await;
    auth(&s, &t, "magic-link/send", json!({"email": "magic@example.com", "redirect_uri": "https://evil.example/cb"}))
        .await
        .assert_problem(422, "validation_failed");
    let sent = auth(&s, &t, "magic-link/send", json!({"email": "magic@example.com", "redirect_uri": redirect})).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    let messages = outbox(&s, &t, "magic@example.com").await;
    let link = link_in(messages.last().unwrap()["text"].as_str().unwrap());
    assert!(link.starts_with(&format!("{PUBLIC_URL}/t/{}/auth/magic-link/verify?token=", t.slug)), "{link}");
    let token = token_in(&link);
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let verify = format!("/t/{}/auth/magic-link/verify?token={token}", t.slug);
    let opened = s.send(no_redirect.get(s.url(&verify))).await;
    assert_eq!(opened.status, 302, "{:?}", opened.body);
    let location = opened.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{redirect}?code=mlc_")), "{location}");
    let code = location.split("code=").nth(1).unwrap().to_owned();
    // The link is spent.
    s.send(no_redirect.get(s.url(&verify))).await.assert_problem(400, "invalid_code");
    let tokens = auth(&s, &t, "magic-link/exchange", json!({"code": code})).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["user"]["email"], "magic@example.com");
    auth(&s, &t, "magic-link/exchange", json!({"code": code})).await.assert_problem(400, "invalid_code");
    // With Accept: application/json the link answers the token set directly.
    auth(&s, &t, "magic-link/send", json!({"email": "magic@example.com", "redirect_uri": redirect})).await;
    let messages = outbox(&s, &t, "magic@example.com").await;
    let token = token_in(messages.last().unwrap()["text"].as_str().unwrap());
    let json_reply = s
        .send(
            s.client
                .get(s.url(&format!("/t/{}/auth/magic-link/verify?token={token}", t.slug)))
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!(json_reply.status, 200, "{:?}", json_reply.body);
    let me = s.get(&format!("/t/{}/auth/me", t.slug), json_reply.body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.body["email"], "magic@example.com");
    // An unknown address of an invite-only tenant: same answer, no message.
    let closed = tenant(&s, json!({"redirect_uris": [redirect], "signup": "invite_only"})).await;
    let r = auth(&s, &closed, "magic-link/send", json!({"email": "new@example.com", "redirect_uri": redirect})).await;
    assert_eq!(r.status, 202);
    assert!(outbox(&s, &closed, "new@example.com").await.is_empty());
}

async fn email_codes_sign_in_create_accounts_and_die_after_five_wrong_guesses(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, Value::Null).await;
    let send = json!({"channel": "email", "email": "fresh@example.com"});
    assert_eq!(auth(&s, &t, "otp/send", send.clone()).await.status, 202);
    let messages = outbox(&s, &t, "fresh@example.com").await;
    let code = code_in(messages[0]["text"].as_str().unwrap());
    assert!(messages[0]["subject"].as_str().unwrap().contains(&code));
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let guess = |c: &str| json!({"channel": "email", "email": "fresh@example.com", "code": c});
    for _ in 0..5 {
        auth(&s, &t, "otp/verify", guess(wrong)).await.assert_problem(400, "invalid_code");
    }
    // The code died with the fifth wrong guess: the right one no longer works.
    auth(&s, &t, "otp/verify", guess(&code)).await.assert_problem(400, "invalid_code");
    assert_eq!(auth(&s, &t, "otp/send", send).await.status, 202);
    let messages = outbox(&s, &t, "fresh@example.com").await;
    let code = code_in(messages[1]["text"].as_str().unwrap());
    let signed_in = auth(&s, &t, "otp/verify", guess(&code)).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert_eq!(signed_in.body["user"]["email_verified"], true);
    assert_eq!(signed_in.body["user"]["has_password"], false);
    auth(&s, &t, "otp/verify", guess(&code)).await.assert_problem(400, "invalid_code");
    // The account now exists, once.
    let users = s.get(&format!("/v1/tenants/{}/users?email_prefix=fresh", t.id), &s.admin).await;
    assert_eq!(users.body["data"].as_array().unwrap().len(), 1);
    // Malformed input is a clear 4xx.
    auth(&s, &t, "otp/send", json!({"channel": "email"})).await.assert_problem(422, "validation_failed");
    auth(&s, &t, "otp/send", json!({"channel": "fax", "email": "a@example.com"}))
        .await
        .assert_problem(422, "validation_failed");
}

async fn parallel_redemptions_of_one_code_sign_in_once(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, Value::Null).await;
    signed_up(&s, &t, "race@example.com").await;
    auth(&s, &t, "otp/send", json!({"channel": "email", "email": "race@example.com"})).await;
    let messages = outbox(&s, &t, "race@example.com").await;
    let code = code_in(messages.last().unwrap()["text"].as_str().unwrap());
    let body = json!({"channel": "email", "email": "race@example.com", "code": code});
    let attempts = (0..10).map(|_| auth(&s, &t, "otp/verify", body.clone()));
    let replies = futures::future::join_all(attempts).await;
    let won = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(won, 1, "{replies:?}");
    assert!(replies.iter().all(|r| r.status == 200 || r.body["code"] == "invalid_code"));
    let winner = &replies.iter().find(|r| r.status == 200).unwrap().body;
    let sessions = s.get(&format!("/t/{}/auth/sessions", t.slug), winner["access_token"].as_str().unwrap()).await;
    // The sign-up session and the one code sign-in.
    assert_eq!(sessions.body["data"].as_array().unwrap().len(), 2, "{:?}", sessions.body);
}

/// A Twilio-compatible fake: records each message form and checks basic auth.
#[derive(Clone, Default)]
struct FakeTwilio {
    messages: Arc<Mutex<Vec<(String, String)>>>,
}

async fn fake_twilio() -> (FakeTwilio, String) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    let fake = FakeTwilio::default();
    async fn create(
        State(fake): State<FakeTwilio>,
        Path(sid): Path<String>,
        headers: HeaderMap,
        axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
    ) -> (StatusCode, axum::Json<Value>) {
        use base64::Engine;
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{sid}:twilio-secret")));
        if sid != "AC123" || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": 20003})));
        }
        assert_eq!(form["From"], "+15005550006");
        fake.messages.lock().unwrap().push((form["To"].clone(), form["Body"].clone()));
        (StatusCode::CREATED, axum::Json(json!({"sid": "SM1", "status": "queued"})))
    }
    let app = axum::Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", axum::routing::post(create))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, base)
}

impl FakeTwilio {
    async fn wait(&self, to: &str, n: usize) -> String {
        for _ in 0..200 {
            let got: Vec<String> =
                self.messages.lock().unwrap().iter().filter(|(t, _)| t == to).map(|(_, b)| b.clone()).collect();
            if got.len() >= n {
                return got[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no SMS #{n} to {to}");
    }
}

async fn sms_codes_go_through_a_twilio_compatible_provider(backend: Backend) {
    let (fake, base) = fake_twilio().await;
    let s = dev_server(
        backend,
        &[
            ("GATEHOUSE_SMS_PROVIDER", "twilio"),
            ("GATEHOUSE_TWILIO_BASE_URL", base.as_str()),
            ("GATEHOUSE_TWILIO_ACCOUNT_SID", "AC123"),
            ("GATEHOUSE_TWILIO_AUTH_TOKEN", "twilio-secret"),
            ("GATEHOUSE_TWILIO_FROM", "+15005550006"),
        ],
    )
    .await;
    let t = tenant(&s, Value::Null).await;
    let user = signed_up(&s, &t, "phone@example.com").await;
    let access = user["access_token"].as_str().unwrap();
    // No verified number yet: a code request answers alike and sends nothing.
    let before = auth(&s, &t, "otp/send", json!({"channel": "sms", "phone": "+4915112345678"})).await;
    assert_eq!(before.status, 202);
    auth_as(&s, &t, "phone/send", access, json!({"phone": "not a number"}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(auth_as(&s, &t, "phone/send", access, json!({"phone": "+49 151 12345678"})).await.status, 202);
    let sms = fake.wait("+4915112345678", 1).await;
    assert!(sms.contains("verification code"), "{sms}");
    let verified =
        auth_as(&s, &t, "phone/verify", access, json!({"phone": "+4915112345678", "code": code_in(&sms)})).await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    assert_eq!(
        (verified.body["phone"].clone(), verified.body["phone_verified"].clone()),
        (json!("+4915112345678"), json!(true))
    );
    // Sign in by SMS code.
    assert_eq!(auth(&s, &t, "otp/send", json!({"channel": "sms", "phone": "+4915112345678"})).await.status, 202);
    let sms = fake.wait("+4915112345678", 2).await;
    assert!(sms.contains("sign-in code"), "{sms}");
    let tokens =
        auth(&s, &t, "otp/verify", json!({"channel": "sms", "phone": "+4915112345678", "code": code_in(&sms)})).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["user"]["email"], "phone@example.com");
    // Delivery status is visible to the operator, without content.
    let messages = s.get(&format!("/v1/tenants/{}/messages", t.id), &s.admin).await;
    let sms_rows: Vec<&Value> =
        messages.body["data"].as_array().unwrap().iter().filter(|m| m["channel"] == "sms").collect();
    assert_eq!(sms_rows.len(), 2);
    assert!(sms_rows.iter().all(|m| m["status"] == "sent" && m.get("text").is_none()), "{sms_rows:?}");
}

async fn email_change_is_confirmed_at_the_new_address_and_undone_from_the_old(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, Value::Null).await;
    let user = signed_up(&s, &t, "old@example.com").await;
    signed_up(&s, &t, "taken@example.com").await;
    let access = user["access_token"].as_str().unwrap();
    assert_eq!(auth_as(&s, &t, "email/change", access, json!({"new_email": "new@example.com"})).await.status, 202);
    // Nothing changes before confirmation.
    assert_eq!(s.get(&format!("/t/{}/auth/me", t.slug), access).await.body["email"], "old@example.com");
    let confirm = outbox(&s, &t, "new@example.com").await;
    let code = code_in(confirm[0]["text"].as_str().unwrap());
    let done = auth_as(&s, &t, "email/change/confirm", access, json!({"code": code})).await;
    assert_eq!(done.status, 204, "{:?}", done.body);
    let me = s.get(&format!("/t/{}/auth/me", t.slug), access).await;
    assert_eq!((me.body["email"].clone(), me.body["email_verified"].clone()), (json!("new@example.com"), json!(true)));
    // The old address is told, with an undo link that restores it and signs out everywhere.
    let notices = outbox(&s, &t, "old@example.com").await;
    let notice = notices.last().unwrap();
    assert!(notice["text"].as_str().unwrap().contains("new@example.com"));
    let undo = token_in(notice["text"].as_str().unwrap());
    assert_eq!(auth(&s, &t, "email/change/undo", json!({"token": undo})).await.status, 204);
    auth(&s, &t, "email/change/undo", json!({"token": undo})).await.assert_problem(400, "invalid_code");
    s.get(&format!("/t/{}/auth/me", t.slug), access).await.assert_problem(401, "invalid_token");
    let login = auth(&s, &t, "login", json!({"email": "old@example.com", "password": "violet kettle drums"})).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    // Changing to an address another account has fails at confirmation, not before.
    let access = login.body["access_token"].as_str().unwrap();
    assert_eq!(auth_as(&s, &t, "email/change", access, json!({"new_email": "taken@example.com"})).await.status, 202);
    let confirm = outbox(&s, &t, "taken@example.com").await;
    let token = token_in(confirm.last().unwrap()["text"].as_str().unwrap());
    auth(&s, &t, "email/change/confirm", json!({"token": token})).await.assert_problem(409, "conflict");
}

async fn templates_speak_german_and_tenant_overrides_win(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, json!({"branding": {"display_name": "Acme <Shop>"}})).await;
    // No locale on the account: Accept-Language decides.
    let r = s
        .send(
            s.client
                .post(s.url(&format!("/t/{}/auth/otp/send", t.slug)))
                .header("accept-language", "fr-CH, de;q=0.9, en;q=0.5")
                .json(&json!({"channel": "email", "email": "de@example.com"})),
        )
        .await;
    assert_eq!(r.status, 202);
    let german = outbox(&s, &t, "de@example.com").await;
    assert!(german[0]["subject"].as_str().unwrap().contains("Anmeldecode für Acme <Shop>"), "{german:?}");
    let html = german[0]["html"].as_str().unwrap();
    assert!(html.contains("Acme &lt;Shop&gt;") && !html.contains("<Shop>"), "{html}");
    // A tenant override replaces the built-in message in its language.
    let path = format!("/v1/tenants/{}/templates/email_login_code/en", t.id);
    let bad = s
        .send(s.client.put(s.url(&path)).bearer_auth(&s.admin).json(&json!({"subject": "{{ code", "text": "x"})))
        .await;
    bad.assert_problem(422, "validation_failed");
    let custom = json!({"subject": "Your {{ product_name }} code", "html": "<b>{{ code }}</b>", "text": "Code: {{ code }} (custom)"});
    let put = s.send(s.client.put(s.url(&path)).bearer_auth(&s.admin).json(&custom)).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    auth(&s, &t, "otp/send", json!({"channel": "email", "email": "en@example.com"})).await;
    let english = outbox(&s, &t, "en@example.com").await;
    assert_eq!(english[0]["subject"], "Your Acme <Shop> code");
    assert!(english[0]["text"].as_str().unwrap().ends_with("(custom)"));
    let list = s.get(&format!("/v1/tenants/{}/templates", t.id), &s.admin).await;
    let rows = list.body["data"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["kind"] == "email_login_code" && r["locale"] == "en" && r["custom"] == true));
    assert!(rows.iter().any(|r| r["kind"] == "magic_link" && r["locale"] == "de" && r["custom"] == false));
    assert_eq!(s.delete(&path, &s.admin).await.status, 204);
    s.delete(&path, &s.admin).await.assert_problem(404, "not_found");
}

async fn queued_mail_survives_a_restart_and_is_sent_exactly_once(backend: Backend) {
    // A port with nothing listening yet: the first server cannot deliver.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let url = format!("smtp://127.0.0.1:{port}");
    let mut s = TestServer::start_with(
        backend,
        &[
            ("GATEHOUSE_SMTP_URL", url.as_str()),
            ("GATEHOUSE_DELIVERY_POLL_MS", "50"),
            ("GATEHOUSE_PUBLIC_URL", PUBLIC_URL),
        ],
    )
    .await;
    let t = tenant(&s, Value::Null).await;
    auth(&s, &t, "otp/send", json!({"channel": "email", "email": "later@example.com"})).await;
    // Wait until the failed attempt is recorded, then stop the server.
    let mut pending = Value::Null;
    for _ in 0..100 {
        let r = s.get(&format!("/v1/tenants/{}/messages", t.id), &s.admin).await;
        pending = r.body["data"][0].clone();
        if pending["attempts"] == 1 && pending["status"] == "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending["status"], "pending", "{pending:?}");
    assert!(pending["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{pending:?}");
    // A message to retry keeps its (sealed) content; once sent it keeps none (ADR 24).
    let with_content = format!("SELECT count(*) FROM outbox WHERE tenant_id = '{}' AND length(sealed) > 0", t.id);
    assert_eq!(s.sql_count(&with_content).await, 1);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let sink = Sink::start_on(listener).await;
    s.restart().await;
    let mail = sink.wait("later@example.com", 1).await;
    assert!(mail.subject.contains("sign-in code"), "{mail:?}");
    // Give any second sender every chance, then count.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.to("later@example.com").len(), 1);
    let r = s.get(&format!("/v1/tenants/{}/messages", t.id), &s.admin).await;
    assert_eq!((r.body["data"][0]["status"].clone(), r.body["data"][0]["attempts"].clone()), (json!("sent"), json!(2)));
    assert_eq!(s.sql_count(&with_content).await, 0, "the sent code is not kept");
    let events = s.get(&format!("/v1/audit-events?tenant_id={}&action=message.retry", t.id), &s.admin).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1, "{:?}", events.body);
}

async fn the_dev_outbox_is_for_operators_and_only_without_smtp(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, Value::Null).await;
    let (_, secret) = s.secret_key(&t.id).await;
    s.get(&format!("/v1/tenants/{}/dev/outbox", t.id), &secret).await.assert_problem(403, "forbidden");
    let other = tenant(&s, Value::Null).await;
    s.get(&format!("/v1/tenants/{}/messages", other.id), &secret).await.assert_problem(404, "not_found");
    assert_eq!(s.get(&format!("/v1/tenants/{}/messages", t.id), &secret).await.status, 200);
    let (smtp, _sink) = smtp_server(backend).await;
    let t2 = tenant(&smtp, Value::Null).await;
    smtp.get(&format!("/v1/tenants/{}/dev/outbox", t2.id), &smtp.admin).await.assert_problem(404, "not_found");
}

async fn magic_links_can_be_bound_to_the_asking_browser(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let redirect = "https://app.example.test/cb";
    let t = tenant(&s, json!({"redirect_uris": [redirect], "magic_link_same_browser": true})).await;
    signed_up(&s, &t, "bound@example.com").await;
    let sent = auth(&s, &t, "magic-link/send", json!({"email": "bound@example.com", "redirect_uri": redirect})).await;
    assert_eq!(sent.status, 202);
    let cookie = sent.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"), "{cookie}");
    let value = cookie.split(';').next().unwrap().to_owned();
    let messages = outbox(&s, &t, "bound@example.com").await;
    let token = token_in(messages.last().unwrap()["text"].as_str().unwrap());
    let verify = s.url(&format!("/t/{}/auth/magic-link/verify?token={token}", t.slug));
    // Another browser (no cookie, or a different one) gets nothing and spends nothing.
    s.send(s.client.get(&verify).header("accept", "application/json")).await.assert_problem(400, "invalid_code");
    s.send(s.client.get(&verify).header("accept", "application/json").header("cookie", "gh_magic=mlb_forged"))
        .await
        .assert_problem(400, "invalid_code");
    let ok = s.send(s.client.get(&verify).header("accept", "application/json").header("cookie", value)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
}

/// A webhook receiver that checks the signature with an independent HMAC.
async fn fake_webhook(status: u16) -> (Arc<Mutex<Vec<Value>>>, String) {
    use axum::http::{HeaderMap, StatusCode};
    use hmac::Mac;
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = received.clone();
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let store = store.clone();
        async move {
            let header = headers.get("gatehouse-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let (t, v1) = header.split_once(",v1=").unwrap();
            let t = t.strip_prefix("t=").unwrap();
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
            mac.update(format!("{t}.").as_bytes());
            mac.update(&body);
            let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            if expected != v1 {
                return StatusCode::UNAUTHORIZED;
            }
            store.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            StatusCode::from_u16(status).unwrap()
        }
    };
    let app = axum::Router::new().route("/sms", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, url)
}

async fn sms_through_a_signed_webhook_and_final_failures_are_visible(backend: Backend) {
    let (received, url) = fake_webhook(202).await;
    let s = dev_server(
        backend,
        &[
            ("GATEHOUSE_SMS_PROVIDER", "webhook"),
            ("GATEHOUSE_SMS_WEBHOOK_URL", url.as_str()),
            ("GATEHOUSE_SMS_WEBHOOK_SECRET", "hook-secret"),
        ],
    )
    .await;
    let t = tenant(&s, Value::Null).await;
    let user = signed_up(&s, &t, "hook@example.com").await;
    let access = user["access_token"].as_str().unwrap();
    assert_eq!(auth_as(&s, &t, "phone/send", access, json!({"phone": "+14155550123"})).await.status, 202);
    let mut body = Value::Null;
    for _ in 0..200 {
        if let Some(b) = received.lock().unwrap().first() {
            body = b.clone();
        }
        if !body.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((body["to"].clone(), body["tenant_id"].clone()), (json!("+14155550123"), json!(t.id)));
    let code = code_in(body["body"].as_str().unwrap());
    let ok = auth_as(&s, &t, "phone/verify", access, json!({"phone": "+14155550123", "code": code})).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    // A provider that refuses (4xx) fails the message for good, visibly and audited.
    let (_, refusing) = fake_webhook(400).await;
    let s2 = dev_server(
        backend,
        &[
            ("GATEHOUSE_SMS_PROVIDER", "webhook"),
            ("GATEHOUSE_SMS_WEBHOOK_URL", refusing.as_str()),
            ("GATEHOUSE_SMS_WEBHOOK_SECRET", "hook-secret"),
        ],
    )
    .await;
    let t2 = tenant(&s2, Value::Null).await;
    let user = signed_up(&s2, &t2, "refused@example.com").await;
    let access = user["access_token"].as_str().unwrap();
    assert_eq!(auth_as(&s2, &t2, "phone/send", access, json!({"phone": "+14155550124"})).await.status, 202);
    let mut row = Value::Null;
    for _ in 0..200 {
        let r = s2.get(&format!("/v1/tenants/{}/messages", t2.id), &s2.admin).await;
        row = r.body["data"].as_array().unwrap().iter().find(|m| m["channel"] == "sms").cloned().unwrap_or_default();
        if row["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((row["status"].clone(), row["attempts"].clone()), (json!("failed"), json!(1)), "{row:?}");
    assert!(row["last_error"].as_str().unwrap().contains("400"), "{row:?}");
    let events = s2.get(&format!("/v1/audit-events?tenant_id={}&action=message.failed", t2.id), &s2.admin).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1, "{:?}", events.body);
}

async fn two_replicas_deliver_each_message_once(backend: Backend) {
    let (s, sink) = smtp_server(backend).await;
    let replica = s.replica().await;
    let t = tenant(&s, Value::Null).await;
    let addresses: Vec<String> = (0..12).map(|i| format!("r{i}@example.com")).collect();
    for a in &addresses {
        assert_eq!(auth(&s, &t, "otp/send", json!({"channel": "email", "email": a})).await.status, 202);
    }
    for a in &addresses {
        sink.wait(a, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for a in &addresses {
        assert_eq!(sink.to(a).len(), 1, "{a}");
    }
    replica.shutdown().await.unwrap();
}

async fn message_requests_are_limited_per_address(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let t = tenant(&s, Value::Null).await;
    signed_up(&s, &t, "limited@example.com").await;
    for email in ["limited@example.com", "unknown@example.com"] {
        for _ in 0..5 {
            assert_eq!(auth(&s, &t, "password/forgot", json!({"email": email})).await.status, 202);
        }
        let r = auth(&s, &t, "password/forgot", json!({"email": email})).await;
        r.assert_problem(429, "rate_limited");
        assert!(r.header("retry-after").is_some());
    }
    // Another address is unaffected.
    assert_eq!(auth(&s, &t, "password/forgot", json!({"email": "other@example.com"})).await.status, 202);
    assert_eq!(outbox(&s, &t, "limited@example.com").await.iter().filter(|m| m["kind"] == "password_reset").count(), 5);
}

/// Moves every one-time secret of the server's database past its expiry.
async fn expire_all_secrets(s: &TestServer) {
    s.sql(
        "UPDATE one_time_secrets SET expires_at = 0",
        "UPDATE one_time_secrets SET expires_at = now() - interval '1 second'",
    )
    .await;
}

async fn expired_links_and_codes_are_refused(backend: Backend) {
    let s = dev_server(backend, &[]).await;
    let redirect = "https://app.example.test/cb";
    let t = tenant(&s, json!({"redirect_uris": [redirect]})).await;
    signed_up(&s, &t, "old-link@example.com").await;
    auth(&s, &t, "password/forgot", json!({"email": "old-link@example.com"})).await;
    auth(&s, &t, "otp/send", json!({"channel": "email", "email": "old-link@example.com"})).await;
    auth(&s, &t, "magic-link/send", json!({"email": "old-link@example.com", "redirect_uri": redirect})).await;
    let messages = outbox(&s, &t, "old-link@example.com").await;
    let text = |kind: &str| messages.iter().find(|m| m["kind"] == kind).unwrap()["text"].as_str().unwrap().to_owned();
    let (reset, code, magic, verify) = (
        token_in(&text("password_reset")),
        code_in(&text("email_login_code")),
        token_in(&text("magic_link")),
        text("verify_email"),
    );
    expire_all_secrets(&s).await;
    auth(&s, &t, "password/reset", json!({"token": reset, "new_password": "a brand new secret"}))
        .await
        .assert_problem(400, "invalid_code");
    auth(&s, &t, "otp/verify", json!({"channel": "email", "email": "old-link@example.com", "code": code}))
        .await
        .assert_problem(400, "invalid_code");
    s.send(
        s.client
            .get(s.url(&format!("/t/{}/auth/magic-link/verify?token={magic}", t.slug)))
            .header("accept", "application/json"),
    )
    .await
    .assert_problem(400, "invalid_code");
    auth(&s, &t, "email/verify", json!({"token": token_in(&verify)})).await.assert_problem(400, "invalid_code");
    auth(&s, &t, "email/verify", json!({"email": "old-link@example.com", "code": code_in(&verify)}))
        .await
        .assert_problem(400, "invalid_code");
}

async fn queued_mail_goes_out_without_waiting_for_the_poll(backend: Backend) {
    let (sink, port) = Sink::start().await;
    let url = format!("smtp://127.0.0.1:{port}");
    // A one-minute poll: only the wake-up after queuing can deliver within the wait.
    let s = TestServer::start_with(
        backend,
        &[
            ("GATEHOUSE_SMTP_URL", url.as_str()),
            ("GATEHOUSE_DELIVERY_POLL_MS", "60000"),
            ("GATEHOUSE_PUBLIC_URL", PUBLIC_URL),
        ],
    )
    .await;
    let t = tenant(&s, Value::Null).await;
    signed_up(&s, &t, "prompt@example.com").await;
    assert!(sink.wait("prompt@example.com", 1).await.subject.contains("Confirm"));
    auth(&s, &t, "password/forgot", json!({"email": "prompt@example.com"})).await;
    assert!(sink.wait("prompt@example.com", 2).await.subject.starts_with("Reset"));
}
