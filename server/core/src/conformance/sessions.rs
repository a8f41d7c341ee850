//! Session conformance: refresh tokens rotate once, reuse revokes, sign-ins are
//! recorded whole, and sessions stay within their tenant and user.

use super::store::{created, event, now, user};
use crate::audit::AuditQuery;
use crate::page::PageRequest;
use crate::secret::{SecretHash, generate_secret};
use crate::session::{RefreshOutcome, RefreshToken, Session};
use crate::store::{RotationEvent, Store, StoreError};
use crate::tenant::Tenant;
use crate::user::User;
use time::Duration;

/// The event a rotation in `tenant_id` records (the service's `refresh_token.rotated`).
fn rotated(tenant_id: &crate::ids::TenantId) -> RotationEvent {
    let context = crate::audit::RequestContext {
        ip: Some("203.0.113.9".into()),
        user_agent: Some("conformance".into()),
        request_id: Some("req_rotation".into()),
        accept_language: None,
    };
    RotationEvent::new(now(), &context, tenant_id, false)
}

fn refresh(expires_in: Duration) -> (RefreshToken, SecretHash) {
    let secret = generate_secret("rt_");
    let at = now();
    (RefreshToken { hash: secret.hash.clone(), created_at: at, expires_at: at + expires_in }, secret.hash)
}

/// A password session of `user_id`, started at `at` and ending at `expires_at`, live
/// (no device recorded).
pub(crate) fn session_of(
    tenant_id: &crate::ids::TenantId,
    user_id: &crate::ids::UserId,
    at: time::OffsetDateTime,
    expires_at: time::OffsetDateTime,
) -> Session {
    Session {
        id: crate::ids::SessionId::generate(),
        tenant_id: tenant_id.clone(),
        user_id: user_id.clone(),
        created_at: at,
        last_seen_at: at,
        expires_at,
        auth_time: at,
        amr: vec!["pwd".into()],
        ip: None,
        user_agent: None,
        revoked_at: None,
        org_id: None,
    }
}

async fn signed_in(store: &dyn Store, name: &str) -> (Tenant, User, Session, SecretHash) {
    let t = created(store, name).await;
    let u = user(&t.id, &format!("{name}@example.com"));
    store.create_user(&t.id, &u, &event("user.create", Some(&t.id))).await.unwrap();
    let at = now();
    let session = Session {
        id: crate::ids::SessionId::generate(),
        tenant_id: t.id.clone(),
        user_id: u.id.clone(),
        created_at: at,
        last_seen_at: at,
        expires_at: at + Duration::days(30),
        auth_time: at,
        amr: vec!["pwd".into()],
        ip: Some("198.51.100.7".into()),
        user_agent: Some("Firefox ✓".into()),
        revoked_at: None,
        org_id: None,
    };
    let (first, hash) = refresh(Duration::days(7));
    store.create_session(&t.id, &session, &first, &event("login.success", Some(&t.id))).await.unwrap();
    (t, u, session, hash)
}

/// Each refresh token works once; presenting a spent one revokes the whole session, after
/// which no token of that session works.
pub async fn refresh_tokens_rotate_once_and_reuse_revokes_the_session(store: &dyn Store) {
    let (t, u, session, r1) = signed_in(store, "rotate").await;
    assert_eq!(store.get_session(&t.id, &session.id).await.unwrap(), session);
    let (r2, r2_hash) = refresh(Duration::days(7));
    let rotated_at = now() + Duration::seconds(3);
    let RefreshOutcome::Rotated { session: s, user } = store
        .rotate_refresh_token(&t.id, &r1, &r2, b"sealed", rotated_at, Duration::ZERO, &rotated(&t.id))
        .await
        .unwrap()
    else {
        panic!("first use must rotate")
    };
    assert_eq!(s.id, session.id);
    // The session's user comes with the rotation, exactly as stored.
    assert_eq!(*user, store.get_user(&t.id, &u.id).await.unwrap());
    // The rotation touched the session, and what it returned is what was stored.
    assert_eq!(s.last_seen_at, rotated_at);
    assert_eq!(store.get_session(&t.id, &session.id).await.unwrap(), s);
    let (r3, r3_hash) = refresh(Duration::days(7));
    assert!(matches!(
        store
            .rotate_refresh_token(&t.id, &r2_hash, &r3, b"sealed", now(), Duration::ZERO, &rotated(&t.id))
            .await
            .unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
    let (r4, _) = refresh(Duration::days(7));
    let reuse =
        store.rotate_refresh_token(&t.id, &r1, &r4, b"sealed", now(), Duration::ZERO, &rotated(&t.id)).await.unwrap();
    assert!(matches!(reuse, RefreshOutcome::Reused(ref s) if s.revoked_at.is_some()), "{reuse:?}");
    let (r5, _) = refresh(Duration::days(7));
    assert_eq!(
        store
            .rotate_refresh_token(&t.id, &r3_hash, &r5, b"sealed", now(), Duration::ZERO, &rotated(&t.id))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(store.get_session(&t.id, &session.id).await.unwrap().revoked_at.is_some());
    let (r6, _) = refresh(Duration::days(7));
    let unknown = generate_secret("rt_").hash;
    assert_eq!(
        store
            .rotate_refresh_token(&t.id, &unknown, &r6, b"sealed", now(), Duration::ZERO, &rotated(&t.id))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    // Each of the two rotations recorded its event, for this session; the reuse and the
    // invalid presentations recorded none.
    let query = AuditQuery {
        tenant_id: Some(t.id.clone()),
        action: Some("refresh_token.rotated".into()),
        ..Default::default()
    };
    let events = store.list_audit_events(&query, &PageRequest::first(100)).await.unwrap().data;
    assert_eq!(events.len(), 2, "{events:?}");
    // Each is the caller's event completed for the session: its user as actor and
    // target, the session's id added to the caller's data, the rest as given.
    for recorded in &events {
        let mut expected = rotated(&t.id).for_session(&session);
        expected.id = recorded.id.clone();
        expected.created_at = recorded.created_at;
        assert_eq!(*recorded, expected);
        assert_eq!(recorded.actor_id.as_deref(), Some(u.id.as_str()));
        assert_eq!(recorded.data["session_id"], session.id.as_str());
        assert_eq!(recorded.data["raced"], false);
    }
}

/// Of twelve concurrent presentations of one refresh token, at most one rotates.
pub async fn parallel_refreshes_of_one_token_rotate_at_most_once(store: &dyn Store) {
    let (t, _, _, r1) = signed_in(store, "race-refresh").await;
    let attempts = (0..12).map(|_| {
        let (successor, _) = refresh(Duration::days(7));
        let (tenant_id, presented) = (t.id.clone(), r1.clone());
        async move {
            store
                .rotate_refresh_token(
                    &tenant_id,
                    &presented,
                    &successor,
                    b"sealed",
                    now(),
                    Duration::ZERO,
                    &rotated(&tenant_id),
                )
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let rotated = results.iter().filter(|r| matches!(r, Ok(RefreshOutcome::Rotated { .. }))).count();
    assert_eq!(rotated, 1, "{results:?}");
    assert!(results.iter().all(Result::is_ok));
}

/// Refresh tokens and sessions expire by the time passed in.
pub async fn refresh_tokens_and_sessions_expire_by_the_given_time(store: &dyn Store) {
    let (t, _, session, r1) = signed_in(store, "expire-refresh").await;
    let (r2, r2_hash) = refresh(Duration::days(7));
    let later = now() + Duration::days(8);
    assert_eq!(
        store.rotate_refresh_token(&t.id, &r1, &r2, b"sealed", later, Duration::ZERO, &rotated(&t.id)).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(matches!(
        store.rotate_refresh_token(&t.id, &r1, &r2, b"sealed", now(), Duration::ZERO, &rotated(&t.id)).await.unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
    let (r3, _) = refresh(Duration::days(60));
    let past_session = session.expires_at + Duration::seconds(1);
    assert_eq!(
        store
            .rotate_refresh_token(&t.id, &r2_hash, &r3, b"sealed", past_session, Duration::ZERO, &rotated(&t.id))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
}

/// A tenant cannot read, refresh or revoke another tenant's sessions.
pub async fn sessions_are_isolated_by_tenant(store: &dyn Store) {
    let (t, _, session, r1) = signed_in(store, "iso-a").await;
    let other = created(store, "iso-b").await;
    assert_eq!(store.get_session(&other.id, &session.id).await, Err(StoreError::NotFound));
    let (r2, _) = refresh(Duration::days(7));
    assert_eq!(
        store
            .rotate_refresh_token(&other.id, &r1, &r2, b"sealed", now(), Duration::ZERO, &rotated(&other.id))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(store.revoke_session_by_refresh_token(&other.id, &r1, now(), "logout").await.unwrap(), None);
    assert_eq!(store.revoke_user_sessions(&other.id, &session.user_id, None, now(), "x").await.unwrap(), 0);
    assert!(store.get_session(&t.id, &session.id).await.unwrap().revoked_at.is_none());
}

/// Sign-out revokes the session; revoking a user's sessions counts them; deleting a user
/// deletes their sessions.
pub async fn sign_out_and_user_deletion_end_sessions(store: &dyn Store) {
    let (t, u, session, r1) = signed_in(store, "signout").await;
    let revoked = store.revoke_session_by_refresh_token(&t.id, &r1, now(), "logout").await.unwrap().unwrap();
    assert_eq!(revoked.id, session.id);
    assert!(revoked.revoked_at.is_some());
    let (r2, _) = refresh(Duration::days(7));
    assert_eq!(
        store.rotate_refresh_token(&t.id, &r1, &r2, b"sealed", now(), Duration::ZERO, &rotated(&t.id)).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(store.revoke_user_sessions(&t.id, &u.id, None, now(), "disabled").await.unwrap(), 0);
    // Of two further sessions, `except` keeps one.
    let mut kept = session.clone();
    kept.id = crate::ids::SessionId::generate();
    let (k1, _) = refresh(Duration::days(7));
    store.create_session(&t.id, &kept, &k1, &event("login.success", Some(&t.id))).await.unwrap();
    let mut other = session.clone();
    other.id = crate::ids::SessionId::generate();
    let (k2, _) = refresh(Duration::days(7));
    store.create_session(&t.id, &other, &k2, &event("login.success", Some(&t.id))).await.unwrap();
    assert_eq!(store.revoke_user_sessions(&t.id, &u.id, Some(&kept.id), now(), "password_change").await.unwrap(), 1);
    assert!(store.get_session(&t.id, &kept.id).await.unwrap().revoked_at.is_none());
    assert!(store.get_session(&t.id, &other.id).await.unwrap().revoked_at.is_some());
    store.delete_user(&t.id, &u.id, &event("user.delete", Some(&t.id))).await.unwrap();
    assert_eq!(store.get_session(&t.id, &session.id).await, Err(StoreError::NotFound));
}

/// A user lists only their live sessions and can revoke only their own.
pub async fn users_list_and_revoke_only_their_own_sessions(store: &dyn Store) {
    let (t, u, session, _) = signed_in(store, "own-sessions").await;
    let mut second = session.clone();
    second.id = crate::ids::SessionId::generate();
    let (r, _) = refresh(Duration::days(7));
    store.create_session(&t.id, &second, &r, &event("login.success", Some(&t.id))).await.unwrap();
    let stranger = user(&t.id, "stranger@example.com");
    store.create_user(&t.id, &stranger, &event("user.create", Some(&t.id))).await.unwrap();

    let live = store.list_user_sessions(&t.id, &u.id, now()).await.unwrap();
    assert_eq!(live.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![session.id.clone(), second.id.clone()]);
    assert!(store.list_user_sessions(&t.id, &stranger.id, now()).await.unwrap().is_empty());
    assert_eq!(
        store.revoke_user_session(&t.id, &stranger.id, &session.id, now(), "x").await,
        Err(StoreError::NotFound),
        "a session belongs to its user"
    );
    store.revoke_user_session(&t.id, &u.id, &session.id, now(), "revoked_by_user").await.unwrap();
    assert_eq!(store.revoke_user_session(&t.id, &u.id, &session.id, now(), "again").await, Err(StoreError::NotFound));
    let live = store.list_user_sessions(&t.id, &u.id, now()).await.unwrap();
    assert_eq!(live.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![second.id.clone()]);
    assert!(
        store.list_user_sessions(&t.id, &u.id, second.expires_at).await.unwrap().is_empty(),
        "expired ones are not listed"
    );
}

/// Within the grace window a spent token answers with the sealed successor and the
/// session lives; after it, the same presentation is reuse and ends the session.
pub async fn a_spent_refresh_token_within_the_grace_window_returns_the_same_successor(store: &dyn Store) {
    let (t, _, session, r1) = signed_in(store, "grace").await;
    let t0 = now();
    let grace = Duration::seconds(2);
    let (r2, _) = refresh(Duration::days(7));
    let first =
        store.rotate_refresh_token(&t.id, &r1, &r2, b"successor-one", t0, grace, &rotated(&t.id)).await.unwrap();
    assert!(matches!(first, RefreshOutcome::Rotated { .. }));
    let (r3, _) = refresh(Duration::days(7));
    let raced = store
        .rotate_refresh_token(&t.id, &r1, &r3, b"successor-two", t0 + Duration::seconds(1), grace, &rotated(&t.id))
        .await
        .unwrap();
    let RefreshOutcome::Raced { session: s, successor_sealed, .. } = raced else {
        panic!("expected Raced, got {raced:?}")
    };
    assert_eq!(successor_sealed, b"successor-one");
    assert_eq!(s.id, session.id);
    assert!(store.get_session(&t.id, &session.id).await.unwrap().revoked_at.is_none());
    let (r4, _) = refresh(Duration::days(7));
    let late = store
        .rotate_refresh_token(&t.id, &r1, &r4, b"x", t0 + Duration::seconds(3), grace, &rotated(&t.id))
        .await
        .unwrap();
    assert!(matches!(late, RefreshOutcome::Reused(_)), "{late:?}");
}

/// A sign-in is recorded whole: the user's sign-in time and hash with the session, or,
/// for a user who is gone, nothing at all.
pub async fn sign_ins_are_recorded_in_one_transaction(store: &dyn Store) {
    let (t, mut u, session, _) = signed_in(store, "record-login").await;
    let sign_in_events = || async {
        let query =
            AuditQuery { tenant_id: Some(t.id.clone()), action: Some("login.success".into()), ..Default::default() };
        store.list_audit_events(&query, &PageRequest::first(100)).await.unwrap().data.len()
    };
    let before = sign_in_events().await;
    let mut second = session.clone();
    second.id = crate::ids::SessionId::generate();
    let (r, r_hash) = refresh(Duration::days(7));
    let at = now();
    u.last_login_at = Some(at);
    u.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaG5ld2hhc2g".into());
    store.record_login(&t.id, &u, &second, &r, &event("login.success", Some(&t.id))).await.unwrap();
    let stored = store.get_user(&t.id, &u.id).await.unwrap();
    assert_eq!((stored.last_login_at, stored.password_hash.clone()), (Some(at), u.password_hash.clone()));
    assert_eq!(store.get_session(&t.id, &second.id).await.unwrap(), second);
    assert_eq!(sign_in_events().await, before + 1, "the event is written with the sign-in");

    let ghost = user(&t.id, "ghost@example.com");
    let mut third = session.clone();
    third.id = crate::ids::SessionId::generate();
    third.user_id = ghost.id.clone();
    let (r3, r3_hash) = refresh(Duration::days(7));
    assert_eq!(
        store.record_login(&t.id, &ghost, &third, &r3, &event("login.success", Some(&t.id))).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.get_session(&t.id, &third.id).await, Err(StoreError::NotFound), "no half-written sign-in");
    assert_eq!(sign_in_events().await, before + 1, "no event for the sign-in that was not recorded");
    let (r4, _) = refresh(Duration::days(7));
    assert_eq!(
        store.rotate_refresh_token(&t.id, &r3_hash, &r4, b"s", now(), Duration::ZERO, &rotated(&t.id)).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(matches!(
        store.rotate_refresh_token(&t.id, &r_hash, &r4, b"s", now(), Duration::ZERO, &rotated(&t.id)).await.unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
}

/// Sessions that ended before the cut-off — expired, or revoked — are deleted with their
/// refresh tokens, at most `limit` rows per call and in every tenant; live sessions and
/// those that ended after the cut-off stay.
pub async fn ended_sessions_are_swept_with_their_tokens(store: &dyn Store) {
    let t = created(store, "sweep").await;
    let other = created(store, "sweep-other").await;
    let (u, w) = (user(&t.id, "sweep@example.com"), user(&other.id, "sweep@example.com"));
    store.create_user(&t.id, &u, &event("user.create", Some(&t.id))).await.unwrap();
    store.create_user(&other.id, &w, &event("user.create", Some(&other.id))).await.unwrap();
    let start = |tenant: &Tenant, user: &User, created: i64, expires: i64| {
        let (tenant, user) = (tenant.clone(), user.clone());
        async move {
            let at = now() + Duration::days(created);
            let session = session_of(&tenant.id, &user.id, at, now() + Duration::days(expires));
            let (first, hash) = refresh(Duration::days(60));
            store
                .create_session(&tenant.id, &session, &first, &event("login.success", Some(&tenant.id)))
                .await
                .unwrap();
            (session, hash)
        }
    };
    let live = start(&t, &u, 0, 30).await;
    let expired_long_ago = start(&t, &u, -40, -10).await;
    let expired_lately = start(&t, &u, -31, -1).await;
    let revoked_long_ago = start(&t, &u, -20, 10).await;
    let revoked_lately = start(&t, &u, -20, 10).await;
    let elsewhere = start(&other, &w, -40, -10).await;
    for ((session, hash), days_ago) in [(&revoked_long_ago, 8), (&revoked_lately, 1)] {
        let at = now() - Duration::days(days_ago);
        let revoked = store.revoke_session_by_refresh_token(&session.tenant_id, hash, at, "sign_out").await.unwrap();
        assert_eq!(revoked.map(|s| s.id), Some(session.id.clone()));
    }

    // Three sessions ended more than seven days ago, one of them in the other tenant:
    // their three tokens, then the three sessions, at most two rows a call.
    let cutoff = now() - Duration::days(7);
    let mut calls = Vec::new();
    while calls.len() < 10 {
        let swept = store.sweep_ended_sessions(cutoff, 2).await.unwrap();
        calls.push(swept);
        if swept < 2 {
            break;
        }
    }
    assert!(calls.iter().all(|n| *n <= 2), "{calls:?}");
    assert_eq!(calls.iter().sum::<u64>(), 6, "{calls:?}");
    assert_eq!(store.sweep_ended_sessions(cutoff, 2).await.unwrap(), 0);
    for (session, hash) in [&expired_long_ago, &revoked_long_ago, &elsewhere] {
        assert_eq!(store.get_session(&session.tenant_id, &session.id).await, Err(StoreError::NotFound));
        let (next, _) = refresh(Duration::days(7));
        let outcome = store
            .rotate_refresh_token(
                &session.tenant_id,
                hash,
                &next,
                b"sealed",
                now(),
                Duration::ZERO,
                &rotated(&session.tenant_id),
            )
            .await
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Invalid), "{outcome:?}");
    }
    for (session, _) in [&live, &expired_lately, &revoked_lately] {
        assert_eq!(store.get_session(&t.id, &session.id).await.unwrap().id, session.id);
    }
    let (next, _) = refresh(Duration::days(7));
    let outcome = store
        .rotate_refresh_token(&t.id, &live.1, &next, b"sealed", now(), Duration::ZERO, &rotated(&t.id))
        .await
        .unwrap();
    assert!(matches!(outcome, RefreshOutcome::Rotated { .. }), "{outcome:?}");
}
