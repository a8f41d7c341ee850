//! Token signing keys: generation, encryption at rest with the master key, their public
//! JWKs, and issuing and checking access tokens (RFC 9068 JWTs).
//!
//! All cryptography comes from aws-lc-rs (tokens are verified through jsonwebtoken);
//! nothing here implements a primitive.

use crate::error::ServiceError;
use crate::ids::{SigningKeyId, TenantId};
use crate::tenant::SigningAlg;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Encrypts and decrypts secrets at rest (AES-256-GCM under the master key). Each
/// ciphertext is bound to a context string (e.g. the key id), so it cannot be moved to
/// another row.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
    /// HMAC-SHA256 key for short codes, derived from the master key.
    code_key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// A sealer for a 32-byte master key.
    pub fn new(master_key: &[u8; 32]) -> Result<Self, ServiceError> {
        let key = UnboundKey::new(&AES_256_GCM, master_key).map_err(|_| ServiceError::internal("bad master key"))?;
        // A separate key for code hashes: HMAC(master, label), so the AES key is never
        // used for anything but AES.
        let derived = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, master_key),
            b"gatehouse one-time code hashing v1",
        );
        let code_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_ref());
        Ok(Self { key: LessSafeKey::new(key), rng: SystemRandom::new(), code_key })
    }

    /// A keyed hash (hex HMAC-SHA256) of a short code bound to `context`. Six digits
    /// have too little entropy for a plain hash: without the master key, a stolen
    /// database does not reveal live codes.
    pub fn code_hash(&self, context: &str, code: &str) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.code_key);
        ctx.update(context.as_bytes());
        ctx.update(&[0]);
        ctx.update(code.as_bytes());
        hex_lower(ctx.sign().as_ref())
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| ServiceError::internal("no randomness"))?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| ServiceError::internal("seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(out)
    }

    /// Reverses [`Sealer::seal`]; fails if the data, context or master key differ.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, ServiceError> {
        if sealed.len() < NONCE_LEN {
            return Err(ServiceError::internal("sealed data too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ServiceError::internal("bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| ServiceError::internal("cannot decrypt: wrong master key or corrupted data"))?;
        Ok(plain.to_vec())
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Published in the JWKS, not yet signing: relying parties learn it first.
    Next,
    /// Signing new tokens.
    Active,
    /// No longer signing; published until every token it signed has expired.
    Retired,
}

impl KeyStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(Self::Next),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// A signing key as stored: public JWK in clear, private key sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id, also the JWT `kid`.
    pub id: SigningKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Algorithm.
    pub alg: SigningAlg,
    /// Public JWK.
    pub public_jwk: serde_json::Value,
    /// PKCS#8 private key sealed under the master key, bound to the key id.
    pub private_sealed: Vec<u8>,
    /// Life-cycle state.
    pub status: KeyStatus,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When it started signing; `None` while next.
    pub activated_at: Option<OffsetDateTime>,
    /// Published until then (set when retired); `None` while next or active.
    pub publish_until: Option<OffsetDateTime>,
}

/// Stored name of an algorithm.
pub fn alg_name(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::ES256 => "ES256",
        SigningAlg::EdDSA => "EdDSA",
        SigningAlg::RS256 => "RS256",
    }
}

/// Parses a stored algorithm name.
pub fn parse_alg(s: &str) -> Option<SigningAlg> {
    match s {
        "ES256" => Some(SigningAlg::ES256),
        "EdDSA" => Some(SigningAlg::EdDSA),
        "RS256" => Some(SigningAlg::RS256),
        _ => None,
    }
}

/// Generates a key pair for `tenant_id` and seals its private half.
pub fn generate_key(
    sealer: &Sealer,
    tenant_id: &TenantId,
    alg: SigningAlg,
    status: KeyStatus,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, ServiceError> {
    let id = SigningKeyId::generate();
    let rng = SystemRandom::new();
    let fail = |what: &str| ServiceError::internal(format!("key generation failed: {what}"));
    let (pkcs8, jwk) = match alg {
        SigningAlg::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| fail("p256"))?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).map_err(|_| fail("p256"))?;
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(fail("unexpected P-256 point encoding"));
            }
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": id.as_str(),
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (doc.as_ref().to_vec(), jwk)
        }
        SigningAlg::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| fail("ed25519"))?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| fail("ed25519"))?;
            let jwk = serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": id.as_str(),
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (doc.as_ref().to_vec(), jwk)
        }
        SigningAlg::RS256 => {
            use aws_lc_rs::encoding::AsDer;
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| fail("rsa"))?;
            let der = pair.as_der().map_err(|_| fail("rsa"))?;
            let public = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let jwk = serde_json::json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": id.as_str(),
                "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
            });
            (der.as_ref().to_vec(), jwk)
        }
    };
    Ok(SigningKeyRecord {
        private_sealed: sealer.seal(id.as_str(), &pkcs8)?,
        id,
        tenant_id: tenant_id.clone(),
        alg,
        public_jwk: jwk,
        status,
        created_at: now,
        activated_at: (status == KeyStatus::Active).then_some(now),
        publish_until: None,
    })
}

/// The claims of an access token: defined once, in `gatehouse-verify`, and shared with
/// every service that checks Gatehouse tokens.
pub use gatehouse_verify::Claims as AccessClaims;

/// A key ready to sign: decrypted and parsed once, reused for many tokens.
///
/// Signs with aws-lc-rs directly rather than through `jsonwebtoken::encode`, which
/// rebuilds its signer from the key's DER on every call: for ES256 that parse (with its
/// key check, a scalar multiplication) cost as much as the signature, and an RSA key
/// is re-validated per token (ADR 19). The JWS around the signature is the compact
/// serialization of RFC 7515; `jsonwebtoken` still verifies.
pub struct Signer {
    /// `base64url(header) + "."`, the same for every token of this key.
    header: String,
    key: KeyPairOf,
    rng: SystemRandom,
}

/// A parsed private key of one of the supported algorithms.
enum KeyPairOf {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(aws_lc_rs::signature::RsaKeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("header", &self.header).finish_non_exhaustive()
    }
}

/// The JOSE header of an access token: its algorithm, `typ: at+jwt` (RFC 9068) and `kid`.
#[derive(Serialize)]
struct JoseHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

impl Signer {
    /// Unseals and parses a stored key.
    pub fn from_record(sealer: &Sealer, record: &SigningKeyRecord) -> Result<Self, ServiceError> {
        let pkcs8 = sealer.open(record.id.as_str(), &record.private_sealed)?;
        let unparsable = |_| ServiceError::internal("stored signing key does not parse");
        let (alg, key) = match record.alg {
            SigningAlg::ES256 => (
                "ES256",
                KeyPairOf::Es256(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).map_err(unparsable)?,
                ),
            ),
            SigningAlg::EdDSA => ("EdDSA", KeyPairOf::EdDsa(Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(unparsable)?)),
            SigningAlg::RS256 => {
                ("RS256", KeyPairOf::Rs256(aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&pkcs8).map_err(unparsable)?))
            }
        };
        let header = JoseHeader { alg, typ: "at+jwt", kid: record.id.as_str() };
        let header = serde_json::to_vec(&header).map_err(ServiceError::internal)?;
        Ok(Self { header: format!("{}.", URL_SAFE_NO_PAD.encode(header)), key, rng: SystemRandom::new() })
    }

    /// Signs access-token claims with `typ: at+jwt` and this key's `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, ServiceError> {
        let claims = serde_json::to_vec(claims).map_err(ServiceError::internal)?;
        let mut token = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 400);
        token.push_str(&self.header);
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let failed = |_| ServiceError::internal("signing failed");
        let append = |token: &mut String, signature: &[u8]| {
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(signature, token);
        };
        match &self.key {
            KeyPairOf::Es256(pair) => {
                let signature = pair.sign(&self.rng, token.as_bytes()).map_err(failed)?;
                append(&mut token, signature.as_ref());
            }
            KeyPairOf::EdDsa(pair) => {
                let signature = pair.sign(token.as_bytes());
                append(&mut token, signature.as_ref());
            }
            KeyPairOf::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                let padding = &aws_lc_rs::signature::RSA_PKCS1_SHA256;
                pair.sign(padding, &self.rng, token.as_bytes(), &mut signature).map_err(failed)?;
                append(&mut token, &signature);
            }
        }
        Ok(token)
    }
}

/// The verification keys of published key records, parsed once (cache the result).
pub fn verification_keys(records: &[SigningKeyRecord]) -> gatehouse_verify::KeySet {
    let mut keys = gatehouse_verify::KeySet::new();
    for record in records {
        keys.add_jwk(&record.public_jwk);
    }
    keys
}

/// Verifies an access token against a tenant's verification keys with the same checks
/// downstream services run (`gatehouse_verify::validate`): the algorithm is pinned by
/// the key named in `kid`, never taken from the token; `typ`, `iss`, `aud`, `exp` and
/// `nbf` are checked.
pub fn verify_access_token(
    token: &str,
    keys: &gatehouse_verify::KeySet,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, ServiceError> {
    let audiences = [audience.to_owned()];
    let expect = gatehouse_verify::Expectations { issuer, audiences: &audiences, leeway_seconds: 5 };
    gatehouse_verify::validate(token, keys, &expect).map_err(|_| ServiceError::InvalidToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 32]).unwrap()
    }

    fn claims(tenant: &TenantId) -> AccessClaims {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        AccessClaims {
            iss: "http://gh.test/t/acme".into(),
            sub: "usr_x".into(),
            aud: tenant.to_string(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "j".into(),
            tid: tenant.to_string(),
            sid: "ses_x".into(),
            scope: "openid".into(),
            amr: vec!["pwd".into()],
            auth_time: now,
            acr: None,
            org_id: None,
            org_slug: None,
            org_role: None,
            permissions: Vec::new(),
        }
    }

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_context() {
        let s = sealer();
        let sealed = s.seal("key_a", b"secret").unwrap();
        assert_eq!(s.open("key_a", &sealed).unwrap(), b"secret");
        assert!(s.open("key_b", &sealed).is_err(), "moved to another row");
        assert!(Sealer::new(&[8u8; 32]).unwrap().open("key_a", &sealed).is_err(), "other master key");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(s.open("key_a", &tampered).is_err());
    }

    #[test]
    fn tokens_of_each_algorithm_verify_and_tampering_fails() {
        let tenant = TenantId::generate();
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
            let record = generate_key(&sealer(), &tenant, alg, KeyStatus::Active, OffsetDateTime::now_utc()).unwrap();
            assert!(!String::from_utf8_lossy(&record.private_sealed).contains("PRIVATE"));
            let token = Signer::from_record(&sealer(), &record).unwrap().sign(&claims(&tenant)).unwrap();
            let keys = verification_keys(std::slice::from_ref(&record));
            let ok = verify_access_token(&token, &keys, "http://gh.test/t/acme", tenant.as_str()).unwrap();
            assert_eq!(ok, clone_with(&claims(&tenant), ok.exp, ok.iat, ok.nbf, ok.auth_time));
            assert!(verify_access_token(&token, &keys, "http://gh.test/t/other", tenant.as_str()).is_err());
            assert!(verify_access_token(&token, &keys, "http://gh.test/t/acme", "tnt_other").is_err());
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"usr_admin"}"#);
            assert!(verify_access_token(&parts.join("."), &keys, "http://gh.test/t/acme", tenant.as_str()).is_err());
            let other = generate_key(&sealer(), &tenant, alg, KeyStatus::Active, OffsetDateTime::now_utc()).unwrap();
            assert!(
                verify_access_token(&token, &verification_keys(&[other]), "http://gh.test/t/acme", tenant.as_str())
                    .is_err()
            );
        }
    }

    #[test]
    fn alg_none_and_hmac_with_the_public_key_are_refused() {
        let tenant = TenantId::generate();
        let record =
            generate_key(&sealer(), &tenant, SigningAlg::ES256, KeyStatus::Active, OffsetDateTime::now_utc()).unwrap();
        let header =
            |alg: &str| URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"{}"}}"#, record.id));
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&tenant)).unwrap());
        let none = format!("{}.{body}.", header("none"));
        assert!(
            verify_access_token(
                &none,
                &verification_keys(std::slice::from_ref(&record)),
                "http://gh.test/t/acme",
                tenant.as_str()
            )
            .is_err()
        );
        let hmac_key = serde_json::to_vec(&record.public_jwk).unwrap();
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(record.id.to_string());
        let forged = jsonwebtoken::encode(&h, &claims(&tenant), &EncodingKey::from_secret(&hmac_key)).unwrap();
        assert!(
            verify_access_token(&forged, &verification_keys(&[record]), "http://gh.test/t/acme", tenant.as_str())
                .is_err()
        );
    }

    fn clone_with(claims: &AccessClaims, exp: i64, iat: i64, nbf: i64, auth_time: i64) -> AccessClaims {
        AccessClaims { exp, iat, nbf, auth_time, ..claims.clone() }
    }
}
