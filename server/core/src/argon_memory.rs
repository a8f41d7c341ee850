//! Argon2 with reusable working memory.
//!
//! Each Argon2id call at the default cost needs 19 MiB of blocks. Allocating them per
//! call means zeroing 19 MiB and, on a multi-threaded allocator, page faults as memory
//! goes back to the kernel and returns: together about a tenth of a sign-in's CPU in
//! profiles. A small pool (one buffer per concurrent hash) removes both. Blocks are
//! fully overwritten by every computation before they are read, so reuse is safe.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use std::sync::{Mutex, PoisonError};
use subtle::ConstantTimeEq as _;

/// The most memory a stored hash may ask for when it is verified (1 GiB).
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;

/// Argon2id at one configured cost, with working memory for that cost kept for reuse.
#[derive(Debug)]
pub struct MemoryPool {
    params: Params,
    max_buffers: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl MemoryPool {
    /// A pool for hashes at `params`, keeping up to `max_buffers` buffers.
    pub fn new(params: Params, max_buffers: usize) -> Self {
        Self { params, max_buffers: max_buffers.max(1), free: Mutex::new(Vec::new()) }
    }

    /// The cost new hashes are made with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Runs `f` with `blocks` blocks of memory: pooled when the size matches the pool's,
    /// freshly allocated otherwise (imported hashes with other costs).
    fn with<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        if blocks != self.params.block_count() {
            return f(&mut vec![Block::default(); blocks]);
        }
        let taken = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut memory = taken.unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = f(&mut memory);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.max_buffers {
            free.push(memory);
        }
        result
    }

    /// Checks `password` against an Argon2 (id, i or d) PHC hash; the comparison is
    /// constant-time. Anything unreadable is a mismatch.
    pub fn verify(&self, parsed: &PasswordHash<'_>, password: &[u8]) -> bool {
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let (Ok(params), Some(expected), Some(salt)) = (Params::try_from(parsed), parsed.hash, parsed.salt) else {
            return false;
        };
        // A stored hash (an import, say) cannot make us allocate more than this.
        if params.m_cost() > MAX_MEMORY_KIB {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params.clone());
        let computed = self.with(params.block_count(), |memory| {
            argon.hash_password_into_with_memory(password, salt, &mut out, memory).is_ok()
        });
        computed && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }

    /// Hashes `password` with Argon2id v1.3 and a fresh 16-byte salt into a PHC string.
    pub fn hash(&self, password: &[u8]) -> Result<String, String> {
        self.with(self.params.block_count(), |memory| phc_hash(&self.params, password, memory))
    }

    /// A PHC string with this pool's parameters, a fresh salt and a random 32-byte
    /// digest, for accounts that do not exist: checking a password against it costs one
    /// full verify at the configured cost (through this pool, like any other) and fails,
    /// since no password hashes to a given random digest but with probability 2⁻²⁵⁶.
    /// Built without hashing, so start-up spends no hash and leaves no 19 MiB behind.
    pub fn unmatchable_hash(&self) -> String {
        let (salt, digest): ([u8; 16], [u8; 32]) = (rand::random(), rand::random());
        phc_string(&self.params, &salt, &digest)
    }
}

fn phc_hash(params: &Params, password: &[u8], memory: &mut [Block]) -> Result<String, String> {
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon.hash_password_into_with_memory(password, &salt, &mut out, memory).map_err(|e| e.to_string())?;
    Ok(phc_string(params, &salt, &out))
}

/// The PHC string of an Argon2id v1.3 hash.
fn phc_string(params: &Params, salt: &[u8], digest: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier as _;
    use argon2::password_hash::{PasswordHasher as _, SaltString};

    fn cheap() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn pooled_hashes_are_standard_phc_strings_the_library_accepts() {
        let pool = MemoryPool::new(cheap(), 2);
        let phc = pool.hash(b"correct horse").unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
        // Two hashes of one password differ (fresh salt), and both verify through the pool.
        let again = pool.hash(b"correct horse").unwrap();
        assert_ne!(phc, again);
        assert!(pool.verify(&PasswordHash::new(&again).unwrap(), b"correct horse"));
    }

    /// The hash unknown accounts are checked against: a standard string with the pool's
    /// cost, fresh each time, that a full verify through the pool runs against and
    /// rejects — even for the password the dummy hash used to be made from.
    #[test]
    fn the_unmatchable_hash_costs_a_full_pooled_verify_and_matches_nothing() {
        let pool = MemoryPool::new(Params::new(256, 2, 1, None).unwrap(), 1);
        let dummy = pool.unmatchable_hash();
        assert_ne!(dummy, pool.unmatchable_hash());
        let parsed = PasswordHash::new(&dummy).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!((params.m_cost(), params.t_cost(), params.p_cost()), (256, 2, 1));
        assert_eq!(parsed.hash.map(|h| h.len()), Some(32));
        assert!(pool.free.lock().unwrap().is_empty());
        for password in [&b"gatehouse-dummy-password-for-unknown-accounts"[..], b"", b"correct horse"] {
            assert!(!pool.verify(&parsed, password));
            assert!(Argon2::default().verify_password(password, &parsed).is_err());
        }
        // The verify ran at the configured size: its buffer went back to the pool.
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }

    #[test]
    fn pooled_verification_matches_the_library_for_every_variant_and_size() {
        let pool = MemoryPool::new(cheap(), 1);
        for (alg, m) in [(Algorithm::Argon2id, 64), (Algorithm::Argon2i, 64), (Algorithm::Argon2d, 128)] {
            let argon = Argon2::new(alg, Version::V0x13, Params::new(m, 2, 1, None).unwrap());
            let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
            let phc = argon.hash_password(b"pw", &salt).unwrap().to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            // Twice: the second run reuses memory the first one dirtied.
            for _ in 0..2 {
                assert!(pool.verify(&parsed, b"pw"), "{alg:?} m={m}");
                assert!(!pool.verify(&parsed, b"pW"), "{alg:?} m={m}");
            }
        }
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_stored_hash_cannot_demand_unbounded_memory() {
        let pool = MemoryPool::new(cheap(), 1);
        let greedy = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(!pool.verify(&PasswordHash::new(greedy).unwrap(), b"pw"));
    }
}
