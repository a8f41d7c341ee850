//! Second-factor conformance: TOTP steps and recovery codes behave alike everywhere.

use super::store::{event, now, tenant, user};
use crate::mfa::TotpFactor;
use crate::store::{Store, StoreError};
use time::Duration;

async fn setup(store: &dyn Store, name: &str) -> (crate::tenant::Tenant, crate::user::User) {
    let t = tenant(name);
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let u = user(&t.id, &format!("{name}@example.com"));
    store.create_user(&t.id, &u, &event("user.create", Some(&t.id))).await.unwrap();
    (t, u)
}

fn factor(u: &crate::user::User, at: time::OffsetDateTime, secret: &[u8]) -> TotpFactor {
    TotpFactor {
        user_id: u.id.clone(),
        secret_sealed: secret.to_vec(),
        enabled_at: None,
        last_step: None,
        created_at: at,
    }
}

/// A pending factor can be replaced until enabled; enabling needs the current pending
/// one; accepted steps only move forward, once each, also under parallel use.
pub async fn totp_steps_are_accepted_once_and_in_order(store: &dyn Store) {
    let (t, u) = setup(store, "totp").await;
    let (other, _) = setup(store, "totp-other").await;
    let first = now();
    store.put_pending_totp(&t.id, &factor(&u, first, b"one"), &event("mfa.totp_setup", Some(&t.id))).await.unwrap();
    let second = first + Duration::seconds(1);
    store.put_pending_totp(&t.id, &factor(&u, second, b"two"), &event("mfa.totp_setup", Some(&t.id))).await.unwrap();
    let stored = store.get_totp(&t.id, &u.id).await.unwrap().unwrap();
    assert_eq!((stored.secret_sealed.as_slice(), stored.enabled_at), (b"two".as_slice(), None));
    assert!(store.get_totp(&other.id, &u.id).await.unwrap().is_none());
    // The replaced setup cannot be enabled.
    let ev = event("mfa.totp_enabled", Some(&t.id));
    assert_eq!(store.enable_totp(&t.id, &u.id, first, 100, &[], &[], &ev).await, Err(StoreError::NotFound));
    assert!(!store.use_totp_step(&t.id, &u.id, 101).await.unwrap(), "pending factors accept nothing");
    store.enable_totp(&t.id, &u.id, second, 100, &["h1".into(), "h2".into()], &[], &ev).await.unwrap();
    assert_eq!(
        store.put_pending_totp(&t.id, &factor(&u, now(), b"three"), &event("mfa.totp_setup", Some(&t.id))).await,
        Err(StoreError::Conflict { constraint: "mfa_totp_enabled".into() })
    );
    assert!(!store.use_totp_step(&t.id, &u.id, 100).await.unwrap(), "the enabling step is spent");
    assert!(!store.use_totp_step(&t.id, &u.id, 99).await.unwrap());
    let race = (0..8).map(|_| store.use_totp_step(&t.id, &u.id, 101));
    let won = futures::future::join_all(race).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
    assert!(!store.use_totp_step(&other.id, &u.id, 102).await.unwrap(), "another tenant reaches nothing");
    assert!(store.use_totp_step(&t.id, &u.id, 102).await.unwrap());
    assert_eq!(store.count_recovery_codes(&t.id, &u.id).await.unwrap(), 2);
    store.delete_totp(&t.id, &u.id, &[], &event("mfa.totp_disabled", Some(&t.id))).await.unwrap();
    assert!(store.get_totp(&t.id, &u.id).await.unwrap().is_none());
    assert_eq!(store.count_recovery_codes(&t.id, &u.id).await.unwrap(), 0);
    assert_eq!(store.delete_totp(&t.id, &u.id, &[], &event("x", Some(&t.id))).await, Err(StoreError::NotFound));
}

/// Each recovery code works once, also when presented in parallel; a new set replaces
/// the old one.
pub async fn recovery_codes_are_single_use_even_in_parallel(store: &dyn Store) {
    let (t, u) = setup(store, "recovery").await;
    let codes: Vec<String> = (0..10).map(|i| format!("hash-{i}")).collect();
    store.replace_recovery_codes(&t.id, &u.id, &codes, now(), &[], &event("x", Some(&t.id))).await.unwrap();
    let race = (0..10).map(|_| store.use_recovery_code(&t.id, &u.id, "hash-3", now()));
    let won = futures::future::join_all(race).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
    assert_eq!(store.count_recovery_codes(&t.id, &u.id).await.unwrap(), 9);
    assert!(!store.use_recovery_code(&t.id, &u.id, "unknown", now()).await.unwrap());
    store.replace_recovery_codes(&t.id, &u.id, &["fresh".into()], now(), &[], &event("x", Some(&t.id))).await.unwrap();
    assert!(!store.use_recovery_code(&t.id, &u.id, "hash-4", now()).await.unwrap(), "old set is gone");
    assert!(store.use_recovery_code(&t.id, &u.id, "fresh", now()).await.unwrap());
    assert_eq!(store.count_recovery_codes(&t.id, &u.id).await.unwrap(), 0);
}

/// The sign-in read returns the account with exactly what `second_factors` says: none,
/// a pending TOTP (not a factor yet), an enabled one, passkeys; nothing for unknown
/// addresses or another tenant.
pub async fn the_sign_in_read_carries_the_second_factors(store: &dyn Store) {
    use crate::passkey::SecondFactors;
    let (t, u) = setup(store, "signin-read").await;
    let (other, _) = setup(store, "signin-read-other").await;
    let read = || async { store.find_user_for_sign_in(&t.id, u.email.normalized()).await.unwrap() };
    let agrees = || async {
        let (found, factors) = read().await.unwrap();
        assert_eq!(found, u);
        assert_eq!(factors, store.second_factors(&t.id, &u.id).await.unwrap());
        factors
    };
    assert_eq!(agrees().await, SecondFactors::default());
    assert_eq!(store.find_user_for_sign_in(&t.id, "nobody@example.com").await.unwrap(), None);
    assert_eq!(store.find_user_for_sign_in(&other.id, u.email.normalized()).await.unwrap(), None);
    let at = now();
    store.put_pending_totp(&t.id, &factor(&u, at, b"s"), &event("mfa.totp_setup", Some(&t.id))).await.unwrap();
    assert_eq!(agrees().await, SecondFactors::default(), "a pending factor is not a factor");
    store.enable_totp(&t.id, &u.id, at, 1, &[], &[], &event("mfa.totp_enabled", Some(&t.id))).await.unwrap();
    assert_eq!(agrees().await, SecondFactors { totp: true, passkeys: 0 });
    for credential in [b"k1".as_slice(), b"k2"] {
        let p = crate::passkey::Passkey {
            id: crate::ids::PasskeyId::generate(),
            user_id: u.id.clone(),
            credential_id: credential.to_vec(),
            name: "key".into(),
            credential: serde_json::json!({}),
            sign_count: 0,
            aaguid: None,
            attestation_format: "none".into(),
            backup_eligible: false,
            backup_state: false,
            created_at: now(),
            last_used_at: None,
        };
        store.insert_passkey(&t.id, None, &p, &[], &event("passkey.registered", Some(&t.id))).await.unwrap();
    }
    assert_eq!(agrees().await, SecondFactors { totp: true, passkeys: 2 });
}
