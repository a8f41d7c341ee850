//! Tokens an attacker might send, each refused for the right reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

mod support;

use gatehouse_verify::{Algorithm, Expectations, KeySet, VerifyError, validate};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use support::{AUDIENCE, ISSUER, TestKey, claims, now, raw_token};

fn expect() -> (Vec<String>, u64) {
    (vec![AUDIENCE.to_owned()], 5)
}

fn check(token: &str, keys: &KeySet) -> Result<gatehouse_verify::Claims, VerifyError> {
    let (audiences, leeway) = expect();
    validate(token, keys, &Expectations { issuer: ISSUER, audiences: &audiences, leeway_seconds: leeway })
}

#[test]
fn valid_tokens_of_every_algorithm_verify() {
    for key in [TestKey::es256("k-es"), TestKey::eddsa("k-ed"), TestKey::rs256("k-rs")] {
        let claims = check(&key.sign(&claims()), &key.set()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.tid.as_str()), ("usr_1", AUDIENCE));
        assert!(claims.has_scope("docs:read"));
    }
}

#[test]
fn alg_none_is_refused() {
    let key = TestKey::es256("k1");
    let token = raw_token(&json!({"alg": "none", "typ": "at+jwt", "kid": "k1"}), &claims(), b"");
    assert_eq!(check(&token, &key.set()), Err(VerifyError::Malformed));
    let token = format!("{}.", token.trim_end_matches('.'));
    assert!(check(&token, &key.set()).is_err());
}

#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    let key = TestKey::es256("k1");
    for secret in [key.public.clone(), key.jwk.to_string().into_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k1".into());
        let token = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(check(&token, &key.set()), Err(VerifyError::AlgorithmMismatch));
    }
}

#[test]
fn another_algorithm_than_the_key_pins_is_refused() {
    let (es, ed) = (TestKey::es256("k1"), TestKey::eddsa("k1"));
    // An EdDSA token claiming the ES256 key's kid.
    assert_eq!(check(&ed.sign(&claims()), &es.set()), Err(VerifyError::AlgorithmMismatch));
}

#[test]
fn unknown_and_mismatched_kids_are_refused() {
    let (a, b) = (TestKey::es256("a"), TestKey::es256("b"));
    let mut both = a.set();
    b.add_to(&mut both);
    assert_eq!(check(&a.sign_with(&claims(), |h| h.kid = Some("zzz".into())), &both), Err(VerifyError::UnknownKey));
    assert_eq!(check(&a.sign_with(&claims(), |h| h.kid = Some("b".into())), &both), Err(VerifyError::BadSignature));
    assert_eq!(check(&a.sign_with(&claims(), |h| h.kid = None), &both), Err(VerifyError::Malformed));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let key = TestKey::es256("k1");
    let mut c = claims();
    c["exp"] = json!(now() - 60);
    assert_eq!(check(&key.sign(&c), &key.set()), Err(VerifyError::Expired));
    c["exp"] = json!(now() - 2); // within the 5 s leeway
    assert!(check(&key.sign(&c), &key.set()).is_ok());
    let mut c = claims();
    c["nbf"] = json!(now() + 120);
    assert_eq!(check(&key.sign(&c), &key.set()), Err(VerifyError::NotYetValid));
}

#[test]
fn numeric_claims_must_be_numbers_and_required_claims_present() {
    let key = TestKey::es256("k1");
    for (field, value) in [("exp", json!((now() + 900).to_string())), ("nbf", json!("0")), ("auth_time", json!(null))] {
        let mut c = claims();
        c[field] = value;
        assert!(check(&key.sign(&c), &key.set()).is_err(), "{field} accepted as a non-number");
    }
    for field in ["exp", "nbf", "sub", "iss", "aud"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(field);
        assert!(check(&key.sign(&c), &key.set()).is_err(), "token without {field} accepted");
    }
}

#[test]
fn wrong_issuer_audience_and_type_are_refused() {
    let key = TestKey::es256("k1");
    let mut c = claims();
    c["iss"] = json!("https://id.example/t/other");
    assert_eq!(check(&key.sign(&c), &key.set()), Err(VerifyError::WrongIssuer));
    let mut c = claims();
    c["aud"] = json!("tnt_other");
    assert_eq!(check(&key.sign(&c), &key.set()), Err(VerifyError::WrongAudience));
    for typ in [None, Some("JWT"), Some("id+jwt")] {
        let token = key.sign_with(&claims(), |h| h.typ = typ.map(Into::into));
        assert_eq!(check(&token, &key.set()), Err(VerifyError::WrongType));
    }
    let token = key.sign_with(&claims(), |h| h.typ = Some("application/at+jwt".into()));
    assert!(check(&token, &key.set()).is_ok());
}

#[test]
fn another_tenants_token_is_refused() {
    let (acme, globex) = (TestKey::es256("acme-key"), TestKey::es256("globex-key"));
    let mut c = claims();
    c["iss"] = json!("https://id.example/t/globex");
    c["aud"] = json!("tnt_globex");
    // Signed by globex with globex's own claims: wrong issuer for acme.
    assert_eq!(check(&globex.sign(&c), &acme.set()), Err(VerifyError::UnknownKey));
    let mut both = acme.set();
    globex.add_to(&mut both);
    assert_eq!(check(&globex.sign(&c), &both), Err(VerifyError::WrongIssuer));
    // globex forging acme's issuer: its key is not acme's.
    assert_eq!(check(&globex.sign(&claims()), &acme.set()), Err(VerifyError::UnknownKey));
}

#[test]
fn truncated_tampered_and_oversized_tokens_are_refused() {
    let key = TestKey::es256("k1");
    let token = key.sign(&claims());
    assert!(check(&token[..token.len() - 10], &key.set()).is_err());
    assert!(check(token.rsplit_once('.').unwrap().0, &key.set()).is_err());
    assert_eq!(check("", &key.set()), Err(VerifyError::Malformed));
    assert_eq!(check("a.b.c", &key.set()), Err(VerifyError::Malformed));
    // Swap in a payload with another subject, keeping the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("usr_admin");
    let forged_payload = raw_token(&json!({}), &c, b"").split('.').nth(1).unwrap().to_owned();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(check(&forged, &key.set()), Err(VerifyError::BadSignature));
    // A 20 KB header is refused before any parsing.
    let huge = key.sign_with(&claims(), |h| h.x5t = Some("A".repeat(20_000)));
    assert_eq!(check(&huge, &key.set()), Err(VerifyError::Malformed));
}

#[test]
fn embedded_jwk_and_jku_headers_are_ignored() {
    let real = TestKey::es256("k1");
    let attacker = TestKey::es256("k1");
    // The attacker signs with their own key and ships it in the header.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(attacker.jwk.clone()).unwrap();
    let token = attacker.sign_with(&claims(), |h| {
        h.jwk = Some(jwk);
        h.jku = Some("http://127.0.0.1:9/jwks.json".into());
    });
    assert_eq!(check(&token, &real.set()), Err(VerifyError::BadSignature));
}

#[test]
fn large_but_legitimate_claims_still_verify() {
    let key = TestKey::es256("k1");
    let mut c = claims();
    c["permissions"] = json!((0..150).map(|i| format!("resource{i}:read")).collect::<Vec<_>>());
    let token = key.sign(&c);
    assert!(token.len() > 3_000 && token.len() < gatehouse_verify::MAX_TOKEN_BYTES);
    assert_eq!(check(&token, &key.set()).unwrap().permissions.len(), 150);
}
