//! Signing-key conformance: keys move next → active → retired, and a due rotation
//! happens once however many replicas try.

use super::store::{created, event, now};
use crate::signing::{KeyStatus, Sealer, generate_key};
use crate::store::{Store, StoreError};
use time::Duration;

/// A tenant gets one active and one next key; rotation publishes the old active key
/// until its window ends and promotes the already-published next key.
pub async fn signing_keys_rotate_through_next_active_retired(store: &dyn Store) {
    let t = created(store, "keys").await;
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    let at = now();
    let active = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Active, at).unwrap();
    let next = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Next, at).unwrap();
    store.create_initial_signing_keys(&t.id, &active, &next).await.unwrap();
    let again_active = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Active, at).unwrap();
    let again_next = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Next, at).unwrap();
    assert_eq!(
        store.create_initial_signing_keys(&t.id, &again_active, &again_next).await,
        Err(StoreError::Conflict { constraint: "signing_keys_one_active".into() })
    );
    let published = store.published_signing_keys(&t.id, at).await.unwrap();
    assert_eq!(published, vec![active.clone(), next.clone()]);

    let newer = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Next, at).unwrap();
    let window_end = at + Duration::minutes(15);
    let promoted = store
        .rotate_signing_keys(&t.id, &newer, window_end, None, &event("signing_key.rotate", Some(&t.id)))
        .await
        .unwrap();
    assert_eq!(promoted, Some(next.id.clone()));
    let during = store.published_signing_keys(&t.id, at + Duration::minutes(1)).await.unwrap();
    let states: Vec<_> = during.iter().map(|k| (k.id.clone(), k.status)).collect();
    assert_eq!(
        states,
        vec![
            (active.id.clone(), KeyStatus::Retired),
            (next.id.clone(), KeyStatus::Active),
            (newer.id.clone(), KeyStatus::Next)
        ]
    );
    let after = store.published_signing_keys(&t.id, window_end + Duration::seconds(1)).await.unwrap();
    assert_eq!(after.iter().map(|k| k.id.clone()).collect::<Vec<_>>(), vec![next.id.clone(), newer.id.clone()]);
    let other = created(store, "keys-other").await;
    assert!(store.published_signing_keys(&other.id, at).await.unwrap().is_empty());
    let stray = generate_key(&sealer, &other.id, other.settings.signing_alg, KeyStatus::Next, at).unwrap();
    assert_eq!(
        store
            .rotate_signing_keys(&other.id, &stray, window_end, None, &event("signing_key.rotate", Some(&other.id)))
            .await,
        Err(StoreError::NotFound)
    );
}

/// A conditional rotation happens only when the active key started signing before the
/// cutoff; of replicas racing to rotate a due tenant, exactly one does.
pub async fn due_rotation_happens_once_however_many_replicas_try(store: &dyn Store) {
    let t = created(store, "due").await;
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    let at = now();
    let active = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Active, at).unwrap();
    let next = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Next, at).unwrap();
    store.create_initial_signing_keys(&t.id, &active, &next).await.unwrap();
    let until = at + Duration::minutes(15);
    let fresh = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Next, at).unwrap();
    let not_due =
        store.rotate_signing_keys(&t.id, &fresh, until, Some(at - Duration::days(1)), &event("x", Some(&t.id))).await;
    assert_eq!(not_due, Ok(None));

    let later = at + Duration::days(100);
    let cutoff = later - Duration::days(90);
    let attempts = (0..6).map(|_| {
        let mut candidate = generate_key(&sealer, &t.id, t.settings.signing_alg, KeyStatus::Next, later).unwrap();
        candidate.created_at = later;
        let tenant_id = t.id.clone();
        async move {
            store
                .rotate_signing_keys(
                    &tenant_id,
                    &candidate,
                    later + Duration::minutes(15),
                    Some(cutoff),
                    &event("signing_key.rotate", Some(&tenant_id)),
                )
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let rotated: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok().cloned().flatten()).collect();
    assert_eq!(rotated, vec![next.id.clone()], "{results:?}");
    let keys = store.published_signing_keys(&t.id, later).await.unwrap();
    let active_now = keys.iter().find(|k| k.status == KeyStatus::Active).unwrap();
    assert_eq!(active_now.id, next.id);
    assert_eq!(active_now.activated_at, Some(later));
}
