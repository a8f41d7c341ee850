//! Passwords: the tenant policy, and Argon2id hashing on dedicated threads.
//!
//! Hashing is deliberately slow and memory-hard, so it runs on its own threads (one per
//! core, below the priority of request handling: [`crate::hash_threads`]), never on the
//! async workers. Unknown accounts are verified against a dummy hash so they cost the
//! same time as known ones.

use crate::argon_memory::MemoryPool;
use crate::error::{FieldError, ServiceError};
use crate::hash_threads::{HashThreads, TimingObserver};
use crate::secret::SecretString;
use crate::tenant::PasswordPolicy;
use crate::user::Email;
use argon2::Params;
use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use std::sync::Arc;

/// Longest password accepted: long passphrases are welcome, megabytes are not.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The bundled list of common and breached passwords (lowercase), checked offline.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    /// OWASP's first recommended configuration: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    threads: Arc<HashThreads>,
    /// The configured cost, with working memory reused across hashes (one buffer per
    /// thread).
    memory: Arc<MemoryPool>,
    /// Verified in place of a missing account's hash: the configured cost, a random
    /// digest (see [`MemoryPool::unmatchable_hash`]).
    dummy_hash: Arc<str>,
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or no such account).
    No,
    /// Correct.
    Yes {
        /// A new hash to store, when the stored one used other parameters.
        rehash: Option<String>,
    },
}

impl PasswordHasher {
    /// A hasher with the given cost on `concurrency` threads (at most that many hashes
    /// run at once), each `nice` steps below the caller's priority.
    pub fn new(cost: Argon2Cost, concurrency: usize, nice: i32) -> Result<Self, ServiceError> {
        Self::observed(cost, concurrency, nice, None)
    }

    /// As [`PasswordHasher::new`], telling `observer` how long each hash waited for a
    /// thread and how long it ran.
    pub fn observed(
        cost: Argon2Cost,
        concurrency: usize,
        nice: i32,
        observer: Option<TimingObserver>,
    ) -> Result<Self, ServiceError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| ServiceError::internal(format!("argon2 parameters: {e}")))?;
        let concurrency = concurrency.max(1);
        let memory = MemoryPool::new(params, concurrency);
        Ok(Self {
            dummy_hash: Arc::from(memory.unmatchable_hash()),
            memory: Arc::new(memory),
            threads: Arc::new(HashThreads::start(concurrency, nice, observer).map_err(ServiceError::internal)?),
        })
    }

    /// Hashes a password with a fresh salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, ServiceError> {
        let (password, memory) = (password.clone(), self.memory.clone());
        self.threads.run(move || hash_blocking(&memory, password.expose())).await.map_err(ServiceError::internal)?
    }

    /// Checks a password; `None` (no such account, or no password) costs the same as a
    /// real check and answers `No`.
    pub async fn verify(&self, password: &SecretString, stored: Option<&str>) -> Result<Verified, ServiceError> {
        let known = stored.is_some();
        let stored = match stored {
            Some(hash) => hash.to_owned(),
            None => self.dummy_hash.to_string(),
        };
        let (password, memory) = (password.clone(), self.memory.clone());
        self.threads
            .run(move || {
                // Imported bcrypt hashes: check, then upgrade to Argon2id.
                if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
                    if known && bcrypt::verify(password.expose(), &stored).unwrap_or(false) {
                        return Ok(Verified::Yes { rehash: Some(hash_blocking(&memory, password.expose())?) });
                    }
                    return Ok(Verified::No);
                }
                let Ok(parsed) = PasswordHash::new(&stored) else { return Ok(Verified::No) };
                let ok = match parsed.algorithm.as_str() {
                    "pbkdf2-sha256" => pbkdf2::Pbkdf2.verify_password(password.expose().as_bytes(), &parsed).is_ok(),
                    _ => memory.verify(&parsed, password.expose().as_bytes()),
                };
                if !(ok && known) {
                    return Ok(Verified::No);
                }
                let params = memory.params();
                let same_cost = Params::try_from(&parsed).is_ok_and(|current| {
                    (current.m_cost(), current.t_cost(), current.p_cost())
                        == (params.m_cost(), params.t_cost(), params.p_cost())
                });
                let outdated = parsed.algorithm.as_str() != "argon2id" || !same_cost;
                let rehash = if outdated { Some(hash_blocking(&memory, password.expose())?) } else { None };
                Ok(Verified::Yes { rehash })
            })
            .await
            .map_err(ServiceError::internal)?
    }
}

/// Normalises an imported password hash to a form [`PasswordHasher::verify`] reads, or
/// explains why it cannot: bcrypt (`$2a$`/`$2b$`/`$2y$`, Auth0 exports), Argon2 PHC
/// strings, PBKDF2-SHA256 as a PHC string (`$pbkdf2-sha256$i=…$salt$hash`), or Keycloak's
/// credential JSON `{"algorithm": "pbkdf2-sha256", "hashIterations", "salt", "value"}`.
pub fn import_hash(hash: &serde_json::Value) -> Result<String, String> {
    use base64::Engine;
    match hash {
        serde_json::Value::String(text) => {
            if text.len() > 512 {
                return Err("is too long".into());
            }
            if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
                return text
                    .parse::<bcrypt::HashParts>()
                    .map(|_| text.clone())
                    .map_err(|_| "is not a valid bcrypt hash".into());
            }
            let parsed = PasswordHash::new(text).map_err(|_| "is not a PHC string or bcrypt hash")?;
            match parsed.algorithm.as_str() {
                "argon2id" | "argon2i" | "argon2d" | "pbkdf2-sha256" if parsed.hash.is_some() => Ok(text.clone()),
                other => Err(format!("uses an unsupported algorithm ({other})")),
            }
        }
        serde_json::Value::Object(fields) => {
            let field = |name: &str| fields.get(name);
            if field("algorithm").and_then(|v| v.as_str()) != Some("pbkdf2-sha256") {
                return Err("a credential object must have algorithm pbkdf2-sha256".into());
            }
            let iterations = field("hashIterations").or(field("iterations")).and_then(serde_json::Value::as_u64);
            let iterations = iterations.filter(|i| (1..=10_000_000).contains(i)).ok_or("needs hashIterations")?;
            let decode = |name: &str| {
                field(name)
                    .and_then(|v| v.as_str())
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .ok_or(format!("needs base64 {name}"))
            };
            let (salt, value) = (decode("salt")?, decode("value")?);
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
            let phc = format!("$pbkdf2-sha256$i={iterations},l={}${}${}", value.len(), b64(&salt), b64(&value));
            PasswordHash::new(&phc).map(|_| phc.clone()).map_err(|_| "could not be converted".into())
        }
        _ => Err("must be a string or a credential object".into()),
    }
}

fn hash_blocking(memory: &MemoryPool, password: &str) -> Result<String, ServiceError> {
    memory.hash(password.as_bytes()).map_err(ServiceError::internal)
}

/// Checks a new password against the tenant's policy (NIST 800-63B style: length and
/// a blocklist, no composition rules, no truncation).
pub fn check_policy(policy: &PasswordPolicy, password: &str, email: &Email) -> Result<(), FieldError> {
    let fail = |message: &str| Err(FieldError::new("password", message));
    let chars = password.chars().count();
    if chars < policy.min_length as usize {
        return fail(&format!("must be at least {} characters", policy.min_length));
    }
    if chars > MAX_PASSWORD_CHARS {
        return fail("must be at most 1024 characters");
    }
    let lower = password.to_lowercase();
    if policy.reject_common && COMMON_PASSWORDS.lines().any(|common| common == lower) {
        return fail("is too common; choose a less guessable password");
    }
    let local = email.local_part();
    if policy.reject_email_local_part && local.chars().count() >= 3 && lower.contains(local) {
        return fail("may not contain your email address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Cost { memory_kib: 1024, iterations: 1, parallelism: 1 }, 2, 0).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let hasher = cheap();
        let pw = SecretString::new("correct horse battery staple");
        let a = hasher.hash(&pw).await.unwrap();
        let b = hasher.hash(&pw).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(a, b, "salts differ");
        assert_eq!(hasher.verify(&pw, Some(&a)).await.unwrap(), Verified::Yes { rehash: None });
        assert_eq!(hasher.verify(&SecretString::new("wrong"), Some(&a)).await.unwrap(), Verified::No);
        assert_eq!(hasher.verify(&pw, None).await.unwrap(), Verified::No);
        assert_eq!(hasher.verify(&pw, Some("not a phc string")).await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn a_hash_with_old_parameters_is_rehashed_on_success() {
        let old = cheap();
        let pw = SecretString::new("correct horse battery staple");
        let stored = old.hash(&pw).await.unwrap();
        let new = PasswordHasher::new(Argon2Cost { memory_kib: 2048, iterations: 1, parallelism: 1 }, 2, 0).unwrap();
        let Verified::Yes { rehash: Some(rehash) } = new.verify(&pw, Some(&stored)).await.unwrap() else {
            panic!("expected a rehash")
        };
        assert!(rehash.contains("m=2048"));
    }

    #[tokio::test]
    async fn imported_bcrypt_and_pbkdf2_hashes_verify_and_are_upgraded() {
        use base64::Engine;
        let hasher = cheap();
        let pw = SecretString::new("correct horse battery staple");
        let bcrypt_hash = bcrypt::hash(pw.expose(), 4).unwrap();
        let stored = import_hash(&serde_json::json!(bcrypt_hash)).unwrap();
        let Verified::Yes { rehash: Some(upgraded) } = hasher.verify(&pw, Some(&stored)).await.unwrap() else {
            panic!("bcrypt must verify and be upgraded")
        };
        assert!(upgraded.starts_with("$argon2id$"));
        assert_eq!(hasher.verify(&SecretString::new("nope"), Some(&stored)).await.unwrap(), Verified::No);

        // Keycloak's credential JSON for PBKDF2-SHA256.
        let salt = b"0123456789abcdef";
        let mut value = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw.expose().as_bytes(), salt, 1000, &mut value);
        let std = base64::engine::general_purpose::STANDARD;
        let keycloak = serde_json::json!({"algorithm": "pbkdf2-sha256", "hashIterations": 1000, "salt": std.encode(salt), "value": std.encode(value)});
        let stored = import_hash(&keycloak).unwrap();
        assert!(stored.starts_with("$pbkdf2-sha256$i=1000,l=32$"));
        assert!(matches!(hasher.verify(&pw, Some(&stored)).await.unwrap(), Verified::Yes { rehash: Some(_) }));
        assert_eq!(hasher.verify(&SecretString::new("nope"), Some(&stored)).await.unwrap(), Verified::No);

        for bad in [
            serde_json::json!("plaintext"),
            serde_json::json!("$2b$04$short"),
            serde_json::json!({"algorithm": "md5"}),
            serde_json::json!(7),
        ] {
            assert!(import_hash(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_policy_checks_length_common_passwords_and_the_email() {
        let policy = PasswordPolicy::default();
        let email = Email::parse("jonathan@example.com").unwrap();
        assert!(check_policy(&policy, "short", &email).is_err());
        assert!(check_policy(&policy, "Password123", &email).is_err(), "common");
        assert!(check_policy(&policy, "my-JONATHAN-pass", &email).is_err(), "contains the email");
        assert!(check_policy(&policy, &"x".repeat(1025), &email).is_err());
        assert!(check_policy(&policy, "violet kettle drums", &email).is_ok());
        assert!(check_policy(&policy, "🔑🔑🔑🔑🔑🔑🔑🔑", &email).is_ok(), "unicode counts characters");
    }
}
