//! Passkeys, black-box over HTTP on SQLite and Postgres, against a software authenticator
//! written here (P-256 keys from the `p256` crate, CBOR and client data built by hand as
//! the WebAuthn spec lays them out), so every field an attacker controls can be bent:
//! origin, RP id, challenge, counter, user verification, attestation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use base64::Engine;
use p256::ecdsa::signature::Signer;
use serde_json::{Value, json};
use sha2::Digest;
use support::{Backend, Reply, TestServer};

on_both_backends!(
    register_signed_in_then_sign_in_discoverable_and_email_first,
    passkey_sign_up_creates_a_passwordless_account,
    ceremonies_refuse_wrong_origin_rp_id_and_replayed_challenges,
    cloned_authenticators_and_other_users_credentials_are_refused,
    user_verification_is_enforced_and_its_absence_is_one_factor,
    a_credential_id_is_registered_once_across_tenants,
    passkeys_answer_challenges_enroll_and_step_up,
    attestation_policy_limits_formats_and_models,
);

const PASSWORD: &str = "violet kettle drums";
const ORIGIN: &str = "https://login.example.com";
const RP_ID: &str = "example.com";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(bytes).to_vec()
}

/// CBOR major types 2 (bytes), 3 (text) and 5 (map) headers.
fn cbor_head(major: u8, len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![(major << 5) | len as u8],
        24..=255 => vec![(major << 5) | 24, len as u8],
        _ => {
            let mut v = vec![(major << 5) | 25];
            v.extend((len as u16).to_be_bytes());
            v
        }
    }
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = cbor_head(2, b.len());
    v.extend(b);
    v
}

fn cbor_text(t: &str) -> Vec<u8> {
    let mut v = cbor_head(3, t.len());
    v.extend(t.as_bytes());
    v
}

/// What a registration's attestation statement looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attestation {
    None,
    /// `packed` self-attestation: signed by the credential key itself.
    PackedSelf,
}

/// A software passkey authenticator (one credential) with a browser's client-data step.
#[derive(Debug, Clone)]
struct SoftAuthenticator {
    key: p256::ecdsa::SigningKey,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
    /// Added to the counter per assertion (0: an authenticator without a counter).
    step: u32,
    user_verified: bool,
    synced: bool,
    aaguid: [u8; 16],
    attestation: Attestation,
    /// Overrides the RP id the authenticator hashes (a phishing site's).
    rp_id_override: Option<String>,
}

impl SoftAuthenticator {
    fn new() -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        Self {
            key,
            credential_id: rand::random::<[u8; 32]>().to_vec(),
            user_handle: Vec::new(),
            counter: 0,
            step: 1,
            user_verified: true,
            synced: false,
            aaguid: [0; 16],
            attestation: Attestation::None,
            rp_id_override: None,
        }
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01; // user present
        if self.user_verified {
            f |= 0x04;
        }
        if self.synced {
            f |= 0x08 | 0x10;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    fn rp_hash(&self, rp_id: &str) -> Vec<u8> {
        sha256(self.rp_id_override.as_deref().unwrap_or(rp_id).as_bytes())
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false}).to_string().into_bytes()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// Answers `navigator.credentials.create()` with `options` (the `publicKey` object)
    /// as a browser on `origin` would.
    fn register(&mut self, options: &Value, origin: &str) -> Value {
        self.user_handle = unb64(options["user"]["id"].as_str().unwrap());
        let rp_id = options["rp"]["id"].as_str().unwrap();
        let client_data = Self::client_data("webauthn.create", options["challenge"].as_str().unwrap(), origin);
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cose.extend(cbor_bytes(point.x().unwrap()));
        cose.push(0x22);
        cose.extend(cbor_bytes(point.y().unwrap()));
        let mut auth_data = self.rp_hash(rp_id);
        auth_data.push(self.flags(true));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend(self.aaguid);
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(cose);
        let mut object = vec![0xa3];
        object.extend(cbor_text("fmt"));
        match self.attestation {
            Attestation::None => {
                object.extend(cbor_text("none"));
                object.extend(cbor_text("attStmt"));
                object.push(0xa0);
            }
            Attestation::PackedSelf => {
                object.extend(cbor_text("packed"));
                object.extend(cbor_text("attStmt"));
                let mut signed = auth_data.clone();
                signed.extend(sha256(&client_data));
                object.push(0xa2);
                object.extend(cbor_text("alg"));
                object.push(0x26);
                object.extend(cbor_text("sig"));
                object.extend(cbor_bytes(&self.sign(&signed)));
            }
        }
        object.extend(cbor_text("authData"));
        object.extend(cbor_bytes(&auth_data));
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&object),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers `navigator.credentials.get()` with `options` as a browser on `origin`.
    fn assert(&mut self, options: &Value, origin: &str) -> Value {
        self.counter += self.step;
        let rp_id = options["rpId"].as_str().unwrap();
        let client_data = Self::client_data("webauthn.get", options["challenge"].as_str().unwrap(), origin);
        let mut auth_data = self.rp_hash(rp_id);
        auth_data.push(self.flags(false));
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(sha256(&client_data));
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&self.sign(&signed)),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

type Tenant = support::AuthTenant;

async fn tenant(s: &TestServer, passkeys: Value) -> Tenant {
    let mut settings = json!({"passkeys": {"rp_id": RP_ID, "origins": [ORIGIN]}});
    if let Value::Object(extra) = passkeys {
        for (k, v) in extra {
            if k == "mfa" || k == "require_verified_email" {
                settings[k] = v;
            } else {
                settings["passkeys"][k] = v;
            }
        }
    }
    s.auth_tenant("pk", settings).await
}

async fn as_user(s: &TestServer, t: &Tenant, route: &str, access: &str, body: Value) -> Reply {
    s.post(&format!("/t/{}/auth/{route}", t.slug), access, body).await
}

async fn signup(s: &TestServer, t: &Tenant, email: &str) -> String {
    let r = s.auth(t, "signup", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// Registers `authenticator` for the signed-in user; the finish reply.
async fn register(s: &TestServer, t: &Tenant, access: &str, authenticator: &mut SoftAuthenticator) -> Reply {
    let begin = as_user(s, t, "passkeys/register/begin", access, json!({})).await;
    assert_eq!(begin.status, 200, "{:?}", begin.body);
    let credential = authenticator.register(&begin.body["publicKey"], ORIGIN);
    let body = json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential, "name": "Laptop"});
    as_user(s, t, "passkeys/register/finish", access, body).await
}

/// Signs up a passwordless account with `authenticator`; the finish reply.
async fn passkey_signup(s: &TestServer, t: &Tenant, email: &str, authenticator: &mut SoftAuthenticator) -> Reply {
    let begin = s.auth(t, "passkeys/register/begin", json!({"email": email})).await;
    assert_eq!(begin.status, 200, "{:?}", begin.body);
    let credential = authenticator.register(&begin.body["publicKey"], ORIGIN);
    s.auth(t, "passkeys/register/finish", json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential}))
        .await
}

/// Starts a sign-in ceremony (`body`: `{}`, `{"email"}`, `{"mfa_token"}`).
async fn login_begin(s: &TestServer, t: &Tenant, body: Value) -> Value {
    let begin = s.auth(t, "passkeys/login/begin", body).await;
    assert_eq!(begin.status, 200, "{:?}", begin.body);
    begin.body
}

async fn login(s: &TestServer, t: &Tenant, authenticator: &mut SoftAuthenticator, body: Value) -> Reply {
    let begin = login_begin(s, t, body).await;
    let credential = authenticator.assert(&begin["publicKey"], ORIGIN);
    s.auth(t, "passkeys/login/finish", json!({"ceremony_id": begin["ceremony_id"], "credential": credential})).await
}

fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&unb64(payload)).unwrap()
}

async fn notices(s: &TestServer, t: &Tenant, email: &str) -> Vec<String> {
    let r = s.get(&format!("/v1/tenants/{}/dev/outbox?limit=100", t.id), &s.admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let data = r.body["data"].as_array().unwrap();
    data.iter().filter(|m| m["recipient"] == email).map(|m| m["kind"].as_str().unwrap().to_owned()).collect()
}

async fn audit_types(s: &TestServer, t: &Tenant) -> Vec<String> {
    let r = s.get(&format!("/v1/audit-events?tenant_id={}&limit=100", t.id), &s.admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn register_signed_in_then_sign_in_discoverable_and_email_first(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({})).await;
    let access = signup(&s, &t, "pk@example.com").await;
    let mut key = SoftAuthenticator::new();
    let begin = as_user(&s, &t, "passkeys/register/begin", &access, json!({})).await;
    let options = &begin.body["publicKey"];
    assert_eq!(options["rp"]["id"], RP_ID, "{options:?}");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert!(begin.body["ceremony_id"].as_str().unwrap().starts_with("wac_"));
    let credential = key.register(options, ORIGIN);
    let body = json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential, "name": "Laptop"});
    let r = as_user(&s, &t, "passkeys/register/finish", &access, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["name"], "Laptop");
    assert_eq!(r.body["credential_id"], b64(&key.credential_id));
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Discoverable: no email, no allowed credentials; the user handle names the account.
    let begin = login_begin(&s, &t, json!({})).await;
    assert_eq!(begin["publicKey"]["allowCredentials"], json!([]));
    let credential = key.assert(&begin["publicKey"], ORIGIN);
    let r = s
        .auth(&t, "passkeys/login/finish", json!({"ceremony_id": begin["ceremony_id"], "credential": credential}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], "pk@example.com");
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], json!(["hwk", "user", "mfa"]));
    assert_eq!(c["acr"], "aal2");
    let refreshed = s.auth(&t, "refresh", json!({"refresh_token": r.body["refresh_token"]})).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);

    // Email-first: the user's credential is offered.
    let begin = login_begin(&s, &t, json!({"email": "PK@example.com"})).await;
    assert_eq!(begin["publicKey"]["allowCredentials"][0]["id"], b64(&key.credential_id));
    let r = login(&s, &t, &mut key, json!({"email": "pk@example.com"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // An unknown address gets the same shape: one stable, made-up credential.
    let a = login_begin(&s, &t, json!({"email": "nobody@example.com"})).await;
    let b = login_begin(&s, &t, json!({"email": "nobody@example.com"})).await;
    let allowed = a["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(unb64(allowed[0]["id"].as_str().unwrap()).len(), 32);
    assert_eq!(a["publicKey"]["allowCredentials"], b["publicKey"]["allowCredentials"]);
    // Answering it with a real passkey of someone else is refused.
    let credential = key.assert(&a["publicKey"], ORIGIN);
    let r =
        s.auth(&t, "passkeys/login/finish", json!({"ceremony_id": a["ceremony_id"], "credential": credential})).await;
    r.assert_problem(400, "passkey_rejected");

    // List, rename; the counter and last use were recorded.
    let list = s.get(&format!("/t/{}/auth/passkeys", t.slug), &access).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    // Two sign-ins counted; the refused decoy answer did not advance the counter.
    assert_eq!(list.body["data"][0]["sign_count"], 2);
    assert!(list.body["data"][0]["last_used_at"].is_string());
    let r = s.patch(&format!("/t/{}/auth/passkeys/{id}", t.slug), &access, json!({"name": "Work laptop"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "Work laptop");
    s.patch(&format!("/t/{}/auth/passkeys/{id}", t.slug), &access, json!({"name": ""}))
        .await
        .assert_problem(422, "validation_failed");
    let mfa = s.get(&format!("/t/{}/auth/mfa", t.slug), &access).await;
    assert_eq!(mfa.body["passkeys"], 1);
    assert!(notices(&s, &t, "pk@example.com").await.contains(&"passkey_added".to_owned()));
    assert!(audit_types(&s, &t).await.contains(&"passkey.registered".to_owned()));

    // Deleting it right after signing in needs no step-up; then it signs in no more.
    let r = s.delete(&format!("/t/{}/auth/passkeys/{id}", t.slug), &access).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(notices(&s, &t, "pk@example.com").await.contains(&"passkey_removed".to_owned()));
    login(&s, &t, &mut key, json!({})).await.assert_problem(401, "invalid_credentials");
}

async fn passkey_sign_up_creates_a_passwordless_account(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({})).await;
    let mut key = SoftAuthenticator::new();
    // An email is needed without a bearer.
    s.auth(&t, "passkeys/register/begin", json!({})).await.assert_problem(422, "validation_failed");
    let begin = s.auth(&t, "passkeys/register/begin", json!({"email": "new@example.com", "name": "Nia"})).await;
    assert_eq!(begin.status, 200, "{:?}", begin.body);
    assert_eq!(begin.body["publicKey"]["user"]["name"], "new@example.com");
    let credential = key.register(&begin.body["publicKey"], ORIGIN);
    let r = s
        .auth(
            &t,
            "passkeys/register/finish",
            json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], "new@example.com");
    assert_eq!(r.body["passkey"]["name"], "Passkey");
    assert!(r.body["access_token"].is_string() && r.body["refresh_token"].is_string());
    // No password exists to guess.
    let login = s.auth(&t, "login", json!({"email": "new@example.com", "password": PASSWORD})).await;
    login.assert_problem(401, "invalid_credentials");
    assert!(notices(&s, &t, "new@example.com").await.contains(&"verify_email".to_owned()));
    // The passkey signs in.
    let r = self::login(&s, &t, &mut key, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A taken address cannot be signed up again, and nothing is half-written.
    let mut other = SoftAuthenticator::new();
    let r = passkey_signup(&s, &t, "new@example.com", &mut other).await;
    r.assert_problem(409, "conflict");
    self::login(&s, &t, &mut other, json!({})).await.assert_problem(401, "invalid_credentials");

    // A tenant that wants verified emails answers 202 and issues no tokens.
    let t2 = tenant(&s, json!({"require_verified_email": true})).await;
    let mut key = SoftAuthenticator::new();
    let r = passkey_signup(&s, &t2, "v@example.com", &mut key).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body, json!({"verification_required": true}));
    self::login(&s, &t2, &mut key, json!({})).await.assert_problem(403, "email_not_verified");
}

async fn ceremonies_refuse_wrong_origin_rp_id_and_replayed_challenges(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({})).await;
    let access = signup(&s, &t, "o@example.com").await;

    // Registration from a phishing origin.
    let mut key = SoftAuthenticator::new();
    let begin = as_user(&s, &t, "passkeys/register/begin", &access, json!({})).await;
    let credential = key.register(&begin.body["publicKey"], "https://login.example.com.evil.test");
    let body = json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential});
    let r = as_user(&s, &t, "passkeys/register/finish", &access, body).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("origin"), "{:?}", r.body);

    // A credential scoped to another RP id.
    let mut phished = SoftAuthenticator { rp_id_override: Some("evil.test".into()), ..SoftAuthenticator::new() };
    let r = register(&s, &t, &access, &mut phished).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("relying-party"), "{:?}", r.body);

    // A good passkey; then an assertion with the wrong RP id, and one from a wrong origin.
    let r = register(&s, &t, &access, &mut key).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mut wrong_rp = SoftAuthenticator { rp_id_override: Some("evil.test".into()), ..key.clone() };
    let r = login(&s, &t, &mut wrong_rp, json!({})).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("relying-party"), "{:?}", r.body);
    let begin = login_begin(&s, &t, json!({})).await;
    let credential = key.assert(&begin["publicKey"], "https://evil.test");
    let r = s
        .auth(&t, "passkeys/login/finish", json!({"ceremony_id": begin["ceremony_id"], "credential": credential}))
        .await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("origin"), "{:?}", r.body);

    // A ceremony answers once: replaying the same finish is refused.
    let begin = login_begin(&s, &t, json!({})).await;
    let credential = key.assert(&begin["publicKey"], ORIGIN);
    let finish = json!({"ceremony_id": begin["ceremony_id"], "credential": credential});
    assert_eq!(s.auth(&t, "passkeys/login/finish", finish.clone()).await.status, 200);
    let r = s.auth(&t, "passkeys/login/finish", finish).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("ceremony"), "{:?}", r.body);

    // A signed answer to one challenge does not answer another.
    let first = login_begin(&s, &t, json!({})).await;
    let second = login_begin(&s, &t, json!({})).await;
    let credential = key.assert(&first["publicKey"], ORIGIN);
    let r = s
        .auth(&t, "passkeys/login/finish", json!({"ceremony_id": second["ceremony_id"], "credential": credential}))
        .await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("challenge"), "{:?}", r.body);

    // Garbage is a 422, never a 500; a made-up ceremony is refused.
    let r = s
        .auth(&t, "passkeys/login/finish", json!({"ceremony_id": second["ceremony_id"], "credential": {"id": 1}}))
        .await;
    r.assert_problem(422, "validation_failed");
    let credential = key.assert(&second["publicKey"], ORIGIN);
    let r = s.auth(&t, "passkeys/login/finish", json!({"ceremony_id": "wac_nope", "credential": credential})).await;
    r.assert_problem(400, "passkey_rejected");
    // Another tenant cannot finish this tenant's ceremony.
    let other = tenant(&s, json!({})).await;
    let begin = login_begin(&s, &t, json!({})).await;
    let credential = key.assert(&begin["publicKey"], ORIGIN);
    let r = s
        .auth(&other, "passkeys/login/finish", json!({"ceremony_id": begin["ceremony_id"], "credential": credential}))
        .await;
    r.assert_problem(400, "passkey_rejected");
}

async fn cloned_authenticators_and_other_users_credentials_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({})).await;
    let alice = signup(&s, &t, "alice@example.com").await;
    let bob = signup(&s, &t, "bob@example.com").await;
    let mut alice_key = SoftAuthenticator::new();
    let mut bob_key = SoftAuthenticator::new();
    assert_eq!(register(&s, &t, &alice, &mut alice_key).await.status, 201);
    assert_eq!(register(&s, &t, &bob, &mut bob_key).await.status, 201);

    // A copy of Alice's key, taken now, falls behind once the original is used.
    let mut clone = alice_key.clone();
    assert_eq!(login(&s, &t, &mut alice_key, json!({})).await.status, 200);
    assert_eq!(login(&s, &t, &mut alice_key, json!({})).await.status, 200);
    let r = login(&s, &t, &mut clone, json!({})).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("counter"), "{:?}", r.body);
    assert!(audit_types(&s, &t).await.contains(&"passkey.counter_regressed".to_owned()));
    // The original keeps working.
    assert_eq!(login(&s, &t, &mut alice_key, json!({})).await.status, 200);

    // An email-first ceremony for Alice answered by Bob's passkey.
    let r = login(&s, &t, &mut bob_key, json!({"email": "alice@example.com"})).await;
    r.assert_problem(400, "passkey_rejected");
    // Bob's key claiming to be Alice (her user handle) in a discoverable ceremony.
    let mut impostor = bob_key.clone();
    impostor.user_handle = alice_key.user_handle.clone();
    let r = login(&s, &t, &mut impostor, json!({})).await;
    r.assert_problem(400, "passkey_rejected");
    // Alice's signed-in session cannot rename or delete Bob's passkey.
    let bobs = s.get(&format!("/t/{}/auth/passkeys", t.slug), &bob).await;
    let bob_id = bobs.body["data"][0]["id"].as_str().unwrap().to_owned();
    s.patch(&format!("/t/{}/auth/passkeys/{bob_id}", t.slug), &alice, json!({"name": "mine"}))
        .await
        .assert_problem(404, "not_found");
    s.delete(&format!("/t/{}/auth/passkeys/{bob_id}", t.slug), &alice).await.assert_problem(404, "not_found");

    // Authenticators without a counter (always 0) keep working.
    let carol = signup(&s, &t, "carol@example.com").await;
    let mut counterless = SoftAuthenticator { step: 0, ..SoftAuthenticator::new() };
    assert_eq!(register(&s, &t, &carol, &mut counterless).await.status, 201);
    for _ in 0..2 {
        assert_eq!(login(&s, &t, &mut counterless, json!({})).await.status, 200);
    }
}

async fn user_verification_is_enforced_and_its_absence_is_one_factor(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({})).await;
    let access = signup(&s, &t, "uv@example.com").await;
    let mut no_uv = SoftAuthenticator { user_verified: false, ..SoftAuthenticator::new() };
    let r = register(&s, &t, &access, &mut no_uv).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("verification"), "{:?}", r.body);
    let mut key = SoftAuthenticator::new();
    assert_eq!(register(&s, &t, &access, &mut key).await.status, 201);
    key.user_verified = false;
    let r = login(&s, &t, &mut key, json!({})).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("verification"), "{:?}", r.body);

    // With `preferred`, an assertion without it signs in at aal1 (one factor)...
    let t = tenant(&s, json!({"user_verification": "preferred"})).await;
    let access = signup(&s, &t, "pref@example.com").await;
    let mut key = SoftAuthenticator { user_verified: false, ..SoftAuthenticator::new() };
    assert_eq!(register(&s, &t, &access, &mut key).await.status, 201);
    let r = login(&s, &t, &mut key, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!((c["amr"].clone(), c["acr"].clone()), (json!(["hwk"]), json!("aal1")));
    // ...and, under `mfa: required`, must be completed by a second factor.
    let t = tenant(&s, json!({"user_verification": "preferred", "mfa": "required"})).await;
    let mut key = SoftAuthenticator { user_verified: false, ..SoftAuthenticator::new() };
    let r = passkey_signup(&s, &t, "req@example.com", &mut key).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["mfa_required"], true, "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());
    let r = login(&s, &t, &mut key, json!({})).await;
    assert_eq!(r.body["mfa_required"], true, "{:?}", r.body);
    assert_eq!(r.body["enrollment_required"], true);
    assert!(r.body.get("access_token").is_none() && r.body.get("refresh_token").is_none());
}

async fn a_credential_id_is_registered_once_across_tenants(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t1 = tenant(&s, json!({})).await;
    let t2 = tenant(&s, json!({})).await;
    let a = signup(&s, &t1, "a@example.com").await;
    let b = signup(&s, &t1, "b@example.com").await;
    let c = signup(&s, &t2, "c@example.com").await;
    let mut key = SoftAuthenticator::new();
    assert_eq!(register(&s, &t1, &a, &mut key).await.status, 201);
    let r = register(&s, &t1, &b, &mut key.clone()).await;
    r.assert_problem(409, "conflict");
    let r = register(&s, &t2, &c, &mut key.clone()).await;
    r.assert_problem(409, "conflict");
    // Registering the same authenticator twice for one user is excluded up front.
    let begin = as_user(&s, &t1, "passkeys/register/begin", &a, json!({})).await;
    assert_eq!(begin.body["publicKey"]["excludeCredentials"][0]["id"], b64(&key.credential_id));
    // A passkey of tenant 1 does not sign in to tenant 2.
    login(&s, &t2, &mut key, json!({})).await.assert_problem(401, "invalid_credentials");
}

async fn passkeys_answer_challenges_enroll_and_step_up(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = tenant(&s, json!({})).await;
    let access = signup(&s, &t, "two@example.com").await;
    let mut key = SoftAuthenticator::new();
    assert_eq!(register(&s, &t, &access, &mut key).await.status, 201);

    // A password sign-in of an account with a passkey ends in a challenge.
    let r = s.auth(&t, "login", json!({"email": "two@example.com", "password": PASSWORD})).await;
    assert_eq!(r.body["mfa_required"], true, "{:?}", r.body);
    assert_eq!(r.body["factors"], json!(["passkey"]));
    assert!(r.body.get("access_token").is_none());
    let mfa_token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let begin = login_begin(&s, &t, json!({"mfa_token": mfa_token})).await;
    assert_eq!(begin["publicKey"]["allowCredentials"][0]["id"], b64(&key.credential_id));
    let credential = key.assert(&begin["publicKey"], ORIGIN);
    let verify = json!({"mfa_token": mfa_token, "factor": "passkey", "ceremony_id": begin["ceremony_id"], "credential": credential});
    let r = s.auth(&t, "mfa/verify", verify.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], json!(["pwd", "hwk", "mfa"]));
    assert_eq!(c["acr"], "aal2");
    // The challenge was spent.
    s.auth(&t, "mfa/verify", verify).await.assert_problem(401, "invalid_token");
    let fresh = r.body["access_token"].as_str().unwrap().to_owned();

    // Deleting a passkey is sensitive: an old sign-in must step up, with the passkey.
    s.sql(
        "UPDATE sessions SET auth_time = auth_time - 600000000",
        "UPDATE sessions SET auth_time = auth_time - interval '10 minutes'",
    )
    .await;
    let list = s.get(&format!("/t/{}/auth/passkeys", t.slug), &fresh).await;
    let id = list.body["data"][0]["id"].as_str().unwrap().to_owned();
    s.delete(&format!("/t/{}/auth/passkeys/{id}", t.slug), &fresh).await.assert_problem(403, "step_up_required");
    // A password no longer steps up an account with a passkey.
    let r = as_user(&s, &t, "step-up", &fresh, json!({"factor": "password", "code": PASSWORD})).await;
    r.assert_problem(403, "forbidden");
    let begin = as_user(&s, &t, "passkeys/login/begin", &fresh, json!({})).await;
    assert_eq!(begin.status, 200, "{:?}", begin.body);
    let credential = key.assert(&begin.body["publicKey"], ORIGIN);
    let body = json!({"factor": "passkey", "ceremony_id": begin.body["ceremony_id"], "credential": credential});
    let up = as_user(&s, &t, "step-up", &fresh, body).await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    let r = s
        .send(
            s.client
                .delete(s.url(&format!("/t/{}/auth/passkeys/{id}", t.slug)))
                .bearer_auth(&fresh)
                .header("x-step-up-token", up.body["step_up_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // With no passkey left, the password alone signs in again.
    let r = s.auth(&t, "login", json!({"email": "two@example.com", "password": PASSWORD})).await;
    assert!(r.body["access_token"].is_string(), "{:?}", r.body);

    // Under `mfa: required`, a new user enrolls a passkey from the challenge.
    let t = tenant(&s, json!({"mfa": "required"})).await;
    let r = s.auth(&t, "signup", json!({"email": "enrol@example.com", "password": PASSWORD})).await;
    assert_eq!(r.body["enrollment_required"], true, "{:?}", r.body);
    assert_eq!(r.body["factors"], json!(["totp", "passkey"]));
    let mfa_token = r.body["mfa_token"].as_str().unwrap().to_owned();
    // An enrollment challenge cannot be answered (there is nothing to answer with).
    let r = s.auth(&t, "passkeys/login/begin", json!({"mfa_token": mfa_token})).await;
    r.assert_problem(403, "forbidden");
    let begin = s.auth(&t, "passkeys/register/begin", json!({"mfa_token": mfa_token})).await;
    assert_eq!(begin.status, 200, "{:?}", begin.body);
    let mut key = SoftAuthenticator::new();
    let credential = key.register(&begin.body["publicKey"], ORIGIN);
    // Finishing without the mfa_token (as nobody) is refused.
    let body = json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential.clone()});
    s.auth(&t, "passkeys/register/finish", body).await.assert_problem(400, "passkey_rejected");
    let begin = s.auth(&t, "passkeys/register/begin", json!({"mfa_token": mfa_token})).await;
    let credential = key.register(&begin.body["publicKey"], ORIGIN);
    let body = json!({"ceremony_id": begin.body["ceremony_id"], "credential": credential, "mfa_token": mfa_token});
    let r = s.auth(&t, "passkeys/register/finish", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], json!(["pwd", "hwk", "mfa"]));
    assert!(r.body["passkey"]["id"].is_string());
    // From now on the passkey alone is enough (it verified the user).
    let r = login(&s, &t, &mut key, json!({})).await;
    assert!(r.body["access_token"].is_string(), "{:?}", r.body);
}

async fn attestation_policy_limits_formats_and_models(backend: Backend) {
    let s = TestServer::start(backend).await;
    let model = "ee882879-721c-4913-9775-3dfcce97072a";
    let t = tenant(
        &s,
        json!({"attestation": "direct", "allowed_attestation_formats": ["packed"], "allowed_aaguids": [model]}),
    )
    .await;
    let access = signup(&s, &t, "att@example.com").await;
    let begin = as_user(&s, &t, "passkeys/register/begin", &access, json!({})).await;
    assert_eq!(begin.body["publicKey"]["attestation"], "direct", "{:?}", begin.body);
    // No attestation: refused.
    let mut bare = SoftAuthenticator::new();
    let r = register(&s, &t, &access, &mut bare).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("format"), "{:?}", r.body);
    // Packed, but another model: refused.
    let mut other =
        SoftAuthenticator { attestation: Attestation::PackedSelf, aaguid: [7; 16], ..SoftAuthenticator::new() };
    let r = register(&s, &t, &access, &mut other).await;
    r.assert_problem(400, "passkey_rejected");
    assert!(r.body["detail"].as_str().unwrap().contains("model"), "{:?}", r.body);
    // Packed from the allowed model: stored with its AAGUID.
    let aaguid: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&model.replace('-', "")[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut good = SoftAuthenticator {
        attestation: Attestation::PackedSelf,
        aaguid: aaguid.try_into().unwrap(),
        ..SoftAuthenticator::new()
    };
    let r = register(&s, &t, &access, &mut good).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["aaguid"], model);
    assert_eq!(r.body["attestation_format"], "packed");
    // Bad policy settings are refused when set.
    let r = s
        .patch(
            &format!("/v1/tenants/{}", t.id),
            &s.admin,
            json!({"settings": {"passkeys": {"origins": ["https://evil.test"]}}}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
}
