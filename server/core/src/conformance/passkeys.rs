//! Passkey conformance: credential ids unique everywhere, counters that only advance
//! (also under parallel use), and sign-ups that are all or nothing.

use super::store::{event, now, tenant, user};
use crate::ids::{OneTimeId, PasskeyId, UserId};
use crate::messaging::{OneTimeSecret, Purpose};
use crate::passkey::{Passkey, PasskeyUse, SecondFactors};
use crate::store::{PasskeySignup, Store, StoreError};

async fn setup(store: &dyn Store, name: &str) -> (crate::tenant::Tenant, crate::user::User) {
    let t = tenant(name);
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let u = user(&t.id, &format!("{name}@example.com"));
    store.create_user(&t.id, &u, &event("user.create", Some(&t.id))).await.unwrap();
    (t, u)
}

fn passkey(user_id: &UserId, credential_id: &[u8]) -> Passkey {
    Passkey {
        id: PasskeyId::generate(),
        user_id: user_id.clone(),
        credential_id: credential_id.to_vec(),
        name: "Clé ✓".into(),
        credential: serde_json::json!({ "cred_id": "AQID", "counter": 0 }),
        sign_count: 5,
        aaguid: Some("ee882879-721c-4913-9775-3dfcce97072a".into()),
        attestation_format: "packed".into(),
        backup_eligible: true,
        backup_state: false,
        created_at: now(),
        last_used_at: None,
    }
}

fn used(p: &Passkey, count: u32) -> PasskeyUse {
    PasskeyUse { id: p.id.clone(), user_id: p.user_id.clone(), sign_count: count, backup_state: true, at: now() }
}

/// Passkeys round-trip; a counter advances only forward, once per value even in
/// parallel; zero stays acceptable only while both are zero; other users and tenants
/// reach nothing.
pub async fn passkey_counters_only_advance_and_rows_are_scoped(store: &dyn Store) {
    let (t, u) = setup(store, "pk").await;
    let (other, stranger) = setup(store, "pk-other").await;
    let p = passkey(&u.id, b"cred-one");
    store.insert_passkey(&t.id, None, &p, &[], &event("passkey.registered", Some(&t.id))).await.unwrap();
    assert_eq!(store.list_passkeys(&t.id, &u.id).await.unwrap(), vec![p.clone()]);
    assert_eq!(store.find_passkey_by_credential(&t.id, b"cred-one").await.unwrap(), Some(p.clone()));
    assert_eq!(store.find_passkey_by_credential(&other.id, b"cred-one").await.unwrap(), None);
    assert_eq!(store.second_factors(&t.id, &u.id).await.unwrap(), SecondFactors { totp: false, passkeys: 1 });
    // Equal or lower counters are refused; a higher one is taken once, even in parallel.
    assert!(!store.use_passkey(&t.id, &used(&p, 5)).await.unwrap());
    assert!(!store.use_passkey(&t.id, &used(&p, 4)).await.unwrap());
    assert!(!store.use_passkey(&t.id, &used(&p, 0)).await.unwrap(), "zero is no reset");
    let six = used(&p, 6);
    let race = (0..8).map(|_| store.use_passkey(&t.id, &six));
    let won = futures::future::join_all(race).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
    let stored = store.list_passkeys(&t.id, &u.id).await.unwrap().remove(0);
    assert_eq!((stored.sign_count, stored.backup_state), (6, true));
    assert!(stored.last_used_at.is_some());
    assert!(!store.use_passkey(&other.id, &used(&p, 7)).await.unwrap(), "another tenant reaches nothing");
    // Counterless authenticators: zero after zero is fine.
    let z = Passkey { sign_count: 0, ..passkey(&u.id, b"cred-zero") };
    store.insert_passkey(&t.id, None, &z, &[], &event("passkey.registered", Some(&t.id))).await.unwrap();
    assert!(store.use_passkey(&t.id, &used(&z, 0)).await.unwrap());
    assert!(store.use_passkey(&t.id, &used(&z, 0)).await.unwrap());
    // Rename and delete only the owner's.
    let ev = event("passkey.renamed", Some(&t.id));
    assert_eq!(store.rename_passkey(&t.id, &stranger.id, &p.id, "x", &ev).await, Err(StoreError::NotFound));
    store.rename_passkey(&t.id, &u.id, &p.id, "Laptop", &ev).await.unwrap();
    let ev = event("passkey.deleted", Some(&t.id));
    assert_eq!(store.delete_passkey(&other.id, &u.id, &p.id, &[], &ev).await, Err(StoreError::NotFound));
    store.delete_passkey(&t.id, &u.id, &p.id, &[], &ev).await.unwrap();
    let left: Vec<_> = store.list_passkeys(&t.id, &u.id).await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(left, vec![z.id]);
    // Passkeys go with their user.
    store.delete_user(&t.id, &u.id, &event("user.delete", Some(&t.id))).await.unwrap();
    assert_eq!(store.find_passkey_by_credential(&t.id, b"cred-zero").await.unwrap(), None);
}

/// A credential id is registered once across every tenant; a sign-up with a passkey is
/// all or nothing.
pub async fn credential_ids_are_unique_everywhere_and_sign_ups_are_atomic(store: &dyn Store) {
    let (t, u) = setup(store, "pku").await;
    let (other, v) = setup(store, "pku-other").await;
    let ev = || event("passkey.registered", Some(&t.id));
    store.insert_passkey(&t.id, None, &passkey(&u.id, b"shared"), &[], &ev()).await.unwrap();
    let conflict = Err(StoreError::Conflict { constraint: "passkeys_credential_id_key".into() });
    assert_eq!(store.insert_passkey(&other.id, None, &passkey(&v.id, b"shared"), &[], &ev()).await, conflict);
    // A passkey for a user of another tenant is refused.
    assert_eq!(
        store.insert_passkey(&t.id, None, &passkey(&v.id, b"foreign"), &[], &ev()).await,
        Err(StoreError::NotFound)
    );
    // Sign-up: user, verification secret and passkey together...
    let newcomer = user(&t.id, "new@example.com");
    let at = now();
    let secret = |user_id: &UserId| OneTimeSecret {
        id: OneTimeId::generate(),
        tenant_id: t.id.clone(),
        purpose: Purpose::VerifyEmail,
        target: "new@example.com".into(),
        user_id: Some(user_id.clone()),
        token_hash: None,
        code_hash: Some("c0de".into()),
        attempts: 0,
        max_attempts: 5,
        data: serde_json::json!({}),
        created_at: at,
        expires_at: at + time::Duration::minutes(10),
        consumed_at: None,
    };
    let verification = secret(&newcomer.id);
    let signup = PasskeySignup { user: &newcomer, verification: &verification };
    store.insert_passkey(&t.id, Some(signup), &passkey(&newcomer.id, b"newcomer"), &[], &ev()).await.unwrap();
    assert_eq!(store.list_passkeys(&t.id, &newcomer.id).await.unwrap().len(), 1);
    // ...or nothing: a taken credential leaves no user behind; a taken email no passkey.
    let late = user(&t.id, "late@example.com");
    let verification = secret(&late.id);
    let signup = PasskeySignup { user: &late, verification: &verification };
    assert_eq!(store.insert_passkey(&t.id, Some(signup), &passkey(&late.id, b"shared"), &[], &ev()).await, conflict);
    assert_eq!(store.find_user_by_email(&t.id, "late@example.com").await.unwrap(), None);
    let twin = user(&t.id, "NEW@example.com");
    let verification = secret(&twin.id);
    let signup = PasskeySignup { user: &twin, verification: &verification };
    let taken = store.insert_passkey(&t.id, Some(signup), &passkey(&twin.id, b"twin"), &[], &ev()).await;
    assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
    assert_eq!(store.find_passkey_by_credential(&t.id, b"twin").await.unwrap(), None);
}
