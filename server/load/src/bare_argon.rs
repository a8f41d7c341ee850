//! Bare Argon2id verifies at Gatehouse's default cost, with no server: as fast as the
//! cores go (the ceiling for sign-ins), or arriving on a fixed schedule and served from
//! one queue by one thread per core, as the server's hashing threads serve sign-ins —
//! the tail that this host gives a hashing queue before any server is involved.

use crate::{PASSWORD, quantile};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

const SALT: &[u8] = b"load-test-salt-!";

/// Gatehouse's default Argon2id, the tool's password hashed with it, and its block count.
fn argon_and_hash() -> anyhow::Result<(argon2::Argon2<'static>, String, usize)> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let blocks = params.block_count();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(SALT).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = argon.hash_password(PASSWORD.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("{e}"))?.to_string();
    Ok((argon, hash, blocks))
}

/// One thread's verifier, keeping its Argon2 memory between verifies as the server's
/// hashing threads do.
struct Verifier {
    argon: argon2::Argon2<'static>,
    expected: Vec<u8>,
    memory: Vec<argon2::Block>,
    out: Vec<u8>,
}

impl Verifier {
    fn new(argon: &argon2::Argon2<'static>, hash: &str, blocks: usize) -> Self {
        let parsed = PasswordHash::new(hash).ok();
        let expected = parsed.and_then(|p| p.hash).map(|h| h.as_bytes().to_vec()).unwrap_or_default();
        let out = vec![0u8; expected.len()];
        Self { argon: argon.clone(), expected, memory: vec![argon2::Block::default(); blocks], out }
    }

    /// Verifies the tool's password against its hash: true when it matches.
    fn verify(&mut self) -> bool {
        self.argon.hash_password_into_with_memory(PASSWORD.as_bytes(), SALT, &mut self.out, &mut self.memory).is_ok()
            && self.out == self.expected
    }
}

/// Verifies per second on `threads` threads for `seconds`, and the median and 99th
/// percentile verify times in ms.
pub fn verifies(threads: usize, seconds: u64, reuse_memory: bool) -> anyhow::Result<(f64, f64, f64)> {
    let (argon, hash, blocks) = argon_and_hash()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (hash, argon) = (hash.clone(), argon.clone());
        handles.push(std::thread::spawn(move || {
            let mut verifier = Verifier::new(&argon, &hash, blocks);
            let parsed = PasswordHash::new(&hash).ok();
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = if reuse_memory {
                    verifier.verify()
                } else {
                    parsed.as_ref().is_some_and(|p| argon.verify_password(PASSWORD.as_bytes(), p).is_ok())
                };
                if ok {
                    latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in handles {
        all.extend(t.join().map_err(|_| anyhow::anyhow!("verify thread panicked"))?);
    }
    let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
    all.sort_by(f64::total_cmp);
    Ok((all.len() as f64 / elapsed, quantile(&all, 0.5), quantile(&all, 0.99)))
}

/// Verifies due every `1 / rate` seconds for `seconds`, served in order from one queue
/// by `threads` threads: each one's latency in µs from its due time, sorted.
pub fn fixed_rate(threads: usize, rate: f64, seconds: u64) -> anyhow::Result<Vec<u32>> {
    let (argon, hash, blocks) = argon_and_hash()?;
    let (jobs, queue) = mpsc::channel::<Instant>();
    let queue = Arc::new(Mutex::new(queue));
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let (queue, mut verifier) = (queue.clone(), Verifier::new(&argon, &hash, blocks));
        workers.push(std::thread::spawn(move || {
            let mut latencies = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok(due) = next else { return latencies };
                if verifier.verify() {
                    latencies.push(u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
            }
        }));
    }
    let total = (rate * seconds as f64).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let start = Instant::now() + Duration::from_millis(20);
    for slot in 0..total {
        let due = start + interval.mul_f64(slot as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if jobs.send(due).is_err() {
            break;
        }
    }
    drop(jobs);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.join().map_err(|_| anyhow::anyhow!("verify thread panicked"))?);
    }
    all.sort_unstable();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_matches_the_tools_password_only() {
        let (argon, hash, blocks) = argon_and_hash().unwrap();
        let mut verifier = Verifier::new(&argon, &hash, blocks);
        assert!(verifier.verify());
        verifier.expected[0] ^= 1;
        assert!(!verifier.verify(), "a different hash does not verify");
    }

    #[test]
    fn a_fixed_rate_serves_every_due_verify_and_times_it_from_its_slot() {
        let latencies = fixed_rate(1, 100.0, 0).unwrap();
        assert!(latencies.is_empty(), "no time, no verifies");
        // 20 verifies due over a second, on one thread.
        let latencies = fixed_rate(1, 20.0, 1).unwrap();
        assert_eq!(latencies.len(), 20, "every due verify is served");
        assert!(latencies[0] >= 1_000, "a latency holds at least the verify itself: {latencies:?}");
    }
}
