//! Test keys and tokens, made with aws-lc-rs and jsonwebtoken (not with gatehouse-verify).

#![allow(dead_code, reason = "each test file uses part of the support module")]

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_verify::{Algorithm, KeySet};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://id.example/t/acme";
pub const AUDIENCE: &str = "tnt_acme";

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The raw public key bytes (for raw-verify benches and HMAC confusion attacks).
    pub public: Vec<u8>,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let public = pair.public_key().as_ref().to_vec(); // 0x04 || x || y
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..]),
        });
        Self { kid: kid.into(), alg: Algorithm::ES256, encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk, public }
    }

    pub fn eddsa(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let pkcs8 = pair.to_pkcs8().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&public),
        });
        Self { kid: kid.into(), alg: Algorithm::EdDSA, encoding: EncodingKey::from_ed_der(pkcs8.as_ref()), jwk, public }
    }

    pub fn rs256(kid: &str) -> Self {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let components = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&components.n), "e": URL_SAFE_NO_PAD.encode(&components.e),
        });
        // jsonwebtoken's RSA signer takes PKCS#1; its PEM loader unwraps PKCS#8.
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
        let public = pair.public_key().as_ref().to_vec();
        Self {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk,
            public,
        }
    }

    /// Adds this key to a key set through its JWK.
    pub fn add_to(&self, set: &mut KeySet) {
        let parsed = KeySet::from_jwks(&json!({"keys": [self.jwk.clone()]}));
        let key = parsed.get(&self.kid).unwrap().clone();
        set.insert(self.kid.clone(), key);
    }

    pub fn set(&self) -> KeySet {
        let mut set = KeySet::new();
        self.add_to(&mut set);
        set
    }

    /// Signs `claims` with `typ: at+jwt` and this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }

    /// Signs after letting the test tamper with the header.
    pub fn sign_with(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// Valid claims for [`ISSUER`] and [`AUDIENCE`], fifteen minutes long.
pub fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "sub": "usr_1", "aud": AUDIENCE, "exp": now + 900, "iat": now, "nbf": now,
        "jti": "tok_1", "tid": AUDIENCE, "sid": "ses_1", "scope": "openid docs:read", "amr": ["pwd"],
        "auth_time": now,
    })
}

/// `header.payload.signature` from raw JSON parts, for tokens no library would sign.
pub fn raw_token(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Sends `GET` or `POST` with an optional bearer token; returns the status, the
/// `WWW-Authenticate` header and the JSON body (adapter tests over real HTTP).
pub async fn call(method: &str, url: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let client = reqwest::Client::new();
    let mut request = if method == "POST" { client.post(url) } else { client.get(url) };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    let www = reply.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (status, www, reply.json().await.unwrap_or(Value::Null))
}

/// What every framework adapter must answer on its example's routes (`/me`, `/profile`,
/// `/health`) at `base`, served with `key`'s key set: valid tokens reach the handlers;
/// missing, expired, foreign-key and garbage tokens get RFC 6750 401s.
pub async fn assert_rfc_6750_answers(base: &str, key: &TestKey) {
    let mut c = claims();
    c["scope"] = json!("openid profile");
    let token = key.sign(&c);
    let (status, _, body) = call("GET", &format!("{base}/me"), Some(&token)).await;
    assert_eq!((status, body["sub"].as_str()), (200, Some("usr_1")));
    let (status, _, body) = call("GET", &format!("{base}/profile"), Some(&token)).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("openid profile")));
    assert_eq!(call("GET", &format!("{base}/health"), None).await.0, 200);

    let (status, www, _) = call("GET", &format!("{base}/me"), None).await;
    assert_eq!((status, www.as_deref()), (401, Some("Bearer")));
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    for bad in [key.sign(&expired), TestKey::es256("k1").sign(&claims()), "garbage".to_owned()] {
        let (status, www, body) = call("GET", &format!("{base}/me"), Some(&bad)).await;
        assert_eq!(status, 401);
        assert!(www.unwrap().starts_with("Bearer error=\"invalid_token\""));
        assert_eq!(body["code"], "invalid_token");
    }
}

/// What every framework adapter must enforce on its example's `/admin` (scope), `/docs`
/// (permission) and `/org/settings` (org role `admin`) routes: 403 `insufficient_scope`
/// without them, 200 with them; `role` must satisfy `admin`, `weaker_role` must not.
pub async fn assert_requirements_enforced(base: &str, key: &TestKey, role: &str, weaker_role: &str) {
    let plain = key.sign(&claims());
    let (status, www, body) = call("GET", &format!("{base}/admin"), Some(&plain)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")));
    assert_eq!(www.as_deref(), Some("Bearer error=\"insufficient_scope\", scope=\"admin\""));
    assert_eq!(call("POST", &format!("{base}/docs"), Some(&plain)).await.0, 403);
    assert_eq!(call("GET", &format!("{base}/org/settings"), Some(&plain)).await.0, 403);

    let mut org = claims();
    org["scope"] = json!("openid admin");
    org["org_id"] = json!("org_1");
    org["org_role"] = json!(role);
    org["permissions"] = json!(["docs:write"]);
    let strong = key.sign(&org);
    assert_eq!(call("GET", &format!("{base}/admin"), Some(&strong)).await.0, 200);
    assert_eq!(call("POST", &format!("{base}/docs"), Some(&strong)).await.2["written_by"], "usr_1");
    assert_eq!(call("GET", &format!("{base}/org/settings"), Some(&strong)).await.2["role"], role);
    org["org_role"] = json!(weaker_role);
    assert_eq!(call("GET", &format!("{base}/org/settings"), Some(&key.sign(&org))).await.0, 403);
}
