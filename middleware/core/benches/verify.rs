//! Token validation beside the raw signature verify of the same algorithm, measured in
//! the same run, and the verified-token cache hit.
//!
//! `cargo bench -p gatehouse-verify`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "benchmark harness")]

#[path = "../tests/support/mod.rs"]
mod support;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_verify::{Expectations, Issuer, Verifier, validate};
use std::hint::black_box;
use support::{AUDIENCE, ISSUER, TestKey, claims};

fn algorithms(c: &mut Criterion) {
    let audiences = vec![AUDIENCE.to_owned()];
    let expect = Expectations { issuer: ISSUER, audiences: &audiences, leeway_seconds: 30 };
    for (name, key) in [("ES256", TestKey::es256("k")), ("EdDSA", TestKey::eddsa("k")), ("RS256", TestKey::rs256("k"))]
    {
        let token = key.sign(&claims());
        let keys = key.set();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
        let raw_alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match name {
            "ES256" => &ECDSA_P256_SHA256_FIXED,
            "EdDSA" => &ED25519,
            _ => &RSA_PKCS1_2048_8192_SHA256,
        };
        // The fastest raw verify: the key parsed once, as the verifier keeps it.
        let public = ParsedPublicKey::new(raw_alg, key.public.clone()).unwrap();
        public.verify_sig(message.as_bytes(), &signature).unwrap();
        validate(&token, &keys, &expect).unwrap();
        let mut group = c.benchmark_group(name);
        group.bench_function("raw_signature_verify", |b| {
            b.iter(|| public.verify_sig(black_box(message.as_bytes()), black_box(&signature)).unwrap());
        });
        group.bench_function("validate_token", |b| b.iter(|| validate(black_box(&token), &keys, &expect).unwrap()));
        group.finish();
    }
}

fn cache_hit(c: &mut Criterion) {
    let key = TestKey::es256("k");
    let verifier = Verifier::builder().issuer(Issuer::new(ISSUER, AUDIENCE).with_keys(key.set())).build().unwrap();
    let token = key.sign(&claims());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(verifier.verify(&token)).unwrap();
    c.bench_function("verifier_cache_hit", |b| {
        b.iter(|| runtime.block_on(verifier.verify(black_box(&token))).unwrap());
    });
}

criterion_group!(benches, algorithms, cache_hit);
criterion_main!(benches);
