//! Messaging conformance: one-time secrets, the outbox and templates behave alike on
//! every backend.

use super::store::{event, now, tenant, user};
use crate::ids::{MessageId, OneTimeId, TenantId, UserId};
use crate::messaging::{
    Channel, DeliveryOutcome, DeliveryStatus, MessageKind, OneTimeSecret, OutboxMessage, Purpose, Redemption, SignUp,
    SignUpStart, TemplateOverride, UserWrite,
};
use crate::page::PageRequest;
use crate::secret::generate_secret;
use crate::store::{Store, StoreError};
use time::Duration;

fn secret(tenant_id: &TenantId, user_id: Option<&UserId>, purpose: Purpose, target: &str) -> (OneTimeSecret, String) {
    let token = generate_secret("ot_");
    let at = now();
    let s = OneTimeSecret {
        id: OneTimeId::generate(),
        tenant_id: tenant_id.clone(),
        purpose,
        target: target.into(),
        user_id: user_id.cloned(),
        token_hash: Some(token.hash),
        code_hash: Some("c0de".into()),
        attempts: 0,
        max_attempts: 3,
        data: serde_json::json!({ "redirect_uri": "https://app.example/ü" }),
        created_at: at,
        expires_at: at + Duration::minutes(10),
        consumed_at: None,
    };
    (s, token.value.expose().to_owned())
}

fn message(tenant_id: &TenantId, to: &str) -> OutboxMessage {
    OutboxMessage {
        id: MessageId::generate(),
        tenant_id: tenant_id.clone(),
        channel: Channel::Email,
        recipient: to.into(),
        kind: MessageKind::VerifyEmail,
        sealed: vec![1, 2, 3, 0, 255],
        created_at: now(),
    }
}

async fn setup(store: &dyn Store, name: &str) -> (crate::tenant::Tenant, crate::user::User) {
    let t = tenant(name);
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let u = user(&t.id, &format!("{name}@example.com"));
    store.create_user(&t.id, &u, &event("user.create", Some(&t.id))).await.unwrap();
    (t, u)
}

fn redemption<'a>(id: &'a OneTimeId, ev: &'a crate::audit::AuditEvent) -> Redemption<'a> {
    Redemption {
        secret_id: id,
        now: now(),
        user: UserWrite::None,
        revoke_sessions: None,
        session: None,
        issue: None,
        messages: &[],
        event: ev,
    }
}

/// A secret is found by its token only while live, for its purpose and tenant; a newer
/// secret of the same purpose and target supersedes it; redemption consumes it once.
pub async fn one_time_secrets_are_single_use_and_superseded(store: &dyn Store) {
    let (t, u) = setup(store, "ots").await;
    let (other, _) = setup(store, "ots-other").await;
    let (s1, token1) = secret(&t.id, Some(&u.id), Purpose::PasswordReset, "ots@example.com");
    let ev = event("x", Some(&t.id));
    store.issue_one_time(&t.id, &s1, &[message(&t.id, "ots@example.com")], &ev).await.unwrap();
    let hash1 = crate::secret::SecretHash::of(&token1);
    let found = store.find_one_time_by_token(&t.id, Purpose::PasswordReset, &hash1, now()).await.unwrap().unwrap();
    assert_eq!(found, s1);
    let by_target = store.find_one_time_by_target(&t.id, Purpose::PasswordReset, "ots@example.com", now()).await;
    assert_eq!(by_target.unwrap(), Some(s1.clone()));
    assert!(
        store
            .find_one_time_by_target(&other.id, Purpose::PasswordReset, "ots@example.com", now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.find_one_time_by_token(&t.id, Purpose::MagicLink, &hash1, now()).await.unwrap().is_none());
    assert!(store.find_one_time_by_token(&other.id, Purpose::PasswordReset, &hash1, now()).await.unwrap().is_none());
    let later = now() + Duration::minutes(11);
    assert!(store.find_one_time_by_token(&t.id, Purpose::PasswordReset, &hash1, later).await.unwrap().is_none());
    // A second reset supersedes the first.
    let (s2, token2) = secret(&t.id, Some(&u.id), Purpose::PasswordReset, "ots@example.com");
    store.issue_one_time(&t.id, &s2, &[], &event("y", Some(&t.id))).await.unwrap();
    assert!(store.find_one_time_by_token(&t.id, Purpose::PasswordReset, &hash1, now()).await.unwrap().is_none());
    assert_eq!(
        store.redeem_one_time(&t.id, &redemption(&s1.id, &event("z", Some(&t.id)))).await,
        Err(StoreError::NotFound)
    );
    let hash2 = crate::secret::SecretHash::of(&token2);
    assert!(store.find_one_time_by_token(&t.id, Purpose::PasswordReset, &hash2, now()).await.unwrap().is_some());
    // Another tenant cannot redeem it.
    assert_eq!(
        store.redeem_one_time(&other.id, &redemption(&s2.id, &event("z", Some(&other.id)))).await,
        Err(StoreError::NotFound)
    );
    store.redeem_one_time(&t.id, &redemption(&s2.id, &event("z", Some(&t.id)))).await.unwrap();
    assert!(store.find_one_time_by_token(&t.id, Purpose::PasswordReset, &hash2, now()).await.unwrap().is_none());
}

/// Of parallel redemptions of one secret exactly one succeeds, and only its effects
/// (a session, a changed user) are written.
pub async fn parallel_redemptions_have_exactly_one_winner(store: &dyn Store) {
    let (t, u) = setup(store, "ots-race").await;
    let (s, _) = secret(&t.id, Some(&u.id), Purpose::MagicLink, "ots-race@example.com");
    store.issue_one_time(&t.id, &s, &[], &event("x", Some(&t.id))).await.unwrap();
    let attempts = (0..10).map(|i| {
        let (t, u, s) = (t.clone(), u.clone(), s.clone());
        async move {
            let mut changed = u.clone();
            changed.name = Some(format!("winner {i}"));
            let session = crate::session::Session {
                id: crate::ids::SessionId::generate(),
                tenant_id: t.id.clone(),
                user_id: u.id.clone(),
                created_at: now(),
                last_seen_at: now(),
                expires_at: now() + Duration::days(1),
                auth_time: now(),
                amr: vec!["email".into()],
                ip: None,
                user_agent: None,
                revoked_at: None,
                org_id: None,
            };
            let refresh = crate::session::RefreshToken {
                hash: generate_secret("rt_").hash,
                created_at: now(),
                expires_at: now() + Duration::days(1),
            };
            let ev = event("login.success", Some(&t.id));
            let r = Redemption {
                user: UserWrite::Update(&changed),
                session: Some((&session, &refresh)),
                ..redemption(&s.id, &ev)
            };
            store.redeem_one_time(&t.id, &r).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::NotFound))));
    let sessions = store.list_user_sessions(&t.id, &u.id, now()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(store.get_user(&t.id, &u.id).await.unwrap().name.unwrap().starts_with("winner"));
}

/// Code attempts are counted atomically: parallel guesses never exceed the limit, and a
/// failed user write rolls the redemption back.
pub async fn code_attempts_are_capped_and_redemption_is_atomic(store: &dyn Store) {
    let (t, u) = setup(store, "ots-code").await;
    let (s, _) = secret(&t.id, Some(&u.id), Purpose::EmailLogin, "ots-code@example.com");
    store.issue_one_time(&t.id, &s, &[], &event("x", Some(&t.id))).await.unwrap();
    let guesses =
        (0..8).map(|_| store.attempt_one_time_code(&t.id, Purpose::EmailLogin, "ots-code@example.com", now()));
    let results = futures::future::join_all(guesses).await;
    let counted: Vec<u32> = results.iter().filter_map(|r| r.as_ref().unwrap().as_ref().map(|s| s.attempts)).collect();
    assert_eq!(counted.len(), 3, "{counted:?}");
    assert!(counted.contains(&1) && counted.contains(&2) && counted.contains(&3));
    assert!(
        store.attempt_one_time_code(&t.id, Purpose::EmailLogin, "ots-code@example.com", now()).await.unwrap().is_none()
    );
    // Rollback: inserting a user whose email exists fails, and the secret stays live.
    let (s2, _) = secret(&t.id, None, Purpose::EmailLogin, "ots-code@example.com");
    store.issue_one_time(&t.id, &s2, &[], &event("x", Some(&t.id))).await.unwrap();
    let duplicate = user(&t.id, "OTS-code@example.com");
    let ev = event("login.success", Some(&t.id));
    let r = Redemption { user: UserWrite::Insert(&duplicate), ..redemption(&s2.id, &ev) };
    assert!(matches!(store.redeem_one_time(&t.id, &r).await, Err(StoreError::Conflict { .. })));
    let again = store.attempt_one_time_code(&t.id, Purpose::EmailLogin, "ots-code@example.com", now()).await.unwrap();
    assert_eq!(again.map(|s| s.id), Some(s2.id));
}

/// Due messages are claimed once under a lease, re-claimed only after it lapses, and
/// finished with their status; each tenant lists only its own. A message sent or given
/// up keeps no content, unless the transport asked to keep it (the dev outbox's).
pub async fn outbox_messages_are_claimed_once_and_finished(store: &dyn Store) {
    let (t, _) = setup(store, "outbox").await;
    let (other, _) = setup(store, "outbox-other").await;
    let m1 = message(&t.id, "a@example.com");
    let m2 = message(&other.id, "b@example.com");
    store.enqueue_messages(&t.id, std::slice::from_ref(&m1), &event("q", Some(&t.id))).await.unwrap();
    store.enqueue_messages(&other.id, std::slice::from_ref(&m2), &event("q", Some(&other.id))).await.unwrap();
    let at = now() + Duration::seconds(1);
    // Claims race: every message goes to exactly one claimer.
    let claims = (0..4).map(|_| store.claim_due_messages(at, at + Duration::seconds(60), 100));
    let claimed: Vec<MessageId> = futures::future::join_all(claims)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .filter(|r| r.message.id == m1.id || r.message.id == m2.id)
        .map(|r| r.message.id)
        .collect();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    let mine: Vec<_> = store.list_messages(&t.id, &PageRequest::first(10)).await.unwrap().data;
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].status, mine[0].attempts, &mine[0].message.sealed), (DeliveryStatus::Sending, 1, &m1.sealed));
    // The lease lapses: claimed again, attempt two.
    let lapsed = at + Duration::seconds(61);
    let again = store.claim_due_messages(lapsed, lapsed + Duration::seconds(60), 100).await.unwrap();
    let again: Vec<_> = again.into_iter().filter(|r| r.message.id == m1.id).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let retry = DeliveryOutcome::Retry { next_attempt_at: lapsed + Duration::seconds(4), error: "421 busy".into() };
    store.finish_delivery(&t.id, &m1.id, &retry, &event("message.retry", Some(&t.id))).await.unwrap();
    // Finishing twice (a worker whose lease ran out) is refused.
    assert_eq!(
        store.finish_delivery(&t.id, &m1.id, &retry, &event("message.retry", Some(&t.id))).await,
        Err(StoreError::NotFound)
    );
    let early = store.claim_due_messages(lapsed, lapsed + Duration::seconds(60), 100).await.unwrap();
    assert!(early.iter().all(|r| r.message.id != m1.id));
    let due = lapsed + Duration::seconds(5);
    let third = store.claim_due_messages(due, due + Duration::seconds(60), 100).await.unwrap();
    assert!(
        third.iter().any(|r| r.message.id == m1.id
            && r.attempts == 3
            && r.last_error.as_deref() == Some("421 busy")
            && r.message.sealed == m1.sealed),
        "a message to retry keeps its content"
    );
    store
        .finish_delivery(
            &t.id,
            &m1.id,
            &DeliveryOutcome::Sent { at: due, keep_content: false },
            &event("message.sent", Some(&t.id)),
        )
        .await
        .unwrap();
    let done = &store.list_messages(&t.id, &PageRequest::first(10)).await.unwrap().data[0];
    assert_eq!((done.status, done.sent_at), (DeliveryStatus::Sent, Some(due)));
    assert!(done.message.sealed.is_empty(), "a sent message keeps no content");
    // A message given up keeps no content either, and the other tenant's is untouched
    // until then.
    let theirs = &store.list_messages(&other.id, &PageRequest::first(10)).await.unwrap().data[0];
    assert_eq!((theirs.status, &theirs.message.sealed), (DeliveryStatus::Sending, &m2.sealed));
    let failed = DeliveryOutcome::Failed { error: "550 no such user".into() };
    store.finish_delivery(&other.id, &m2.id, &failed, &event("message.failed", Some(&other.id))).await.unwrap();
    let theirs = &store.list_messages(&other.id, &PageRequest::first(10)).await.unwrap().data[0];
    assert_eq!(theirs.status, DeliveryStatus::Failed);
    assert!(theirs.message.sealed.is_empty(), "a message given up keeps no content");
    let later = due + Duration::hours(2);
    assert!(store.claim_due_messages(later, later, 100).await.unwrap().iter().all(|r| r.message.id != m1.id));
    // What the development transport "sent" stays readable: the dev outbox shows it.
    let m3 = message(&t.id, "c@example.com");
    store.enqueue_messages(&t.id, std::slice::from_ref(&m3), &event("q", Some(&t.id))).await.unwrap();
    let claimed = store.claim_due_messages(later, later + Duration::seconds(60), 100).await.unwrap();
    assert!(claimed.iter().any(|r| r.message.id == m3.id));
    let kept = DeliveryOutcome::Sent { at: later, keep_content: true };
    store.finish_delivery(&t.id, &m3.id, &kept, &event("message.sent", Some(&t.id))).await.unwrap();
    let mine = store.list_messages(&t.id, &PageRequest::first(10)).await.unwrap().data;
    let m3_record = mine.iter().find(|r| r.message.id == m3.id).unwrap();
    assert_eq!((m3_record.status, &m3_record.message.sealed), (DeliveryStatus::Sent, &m3.sealed));
}

/// Template overrides are stored per tenant, kind and locale, replaced, and removed.
pub async fn template_overrides_round_trip_per_tenant(store: &dyn Store) {
    let (t, _) = setup(store, "tpl").await;
    let (other, _) = setup(store, "tpl-other").await;
    let mut o = TemplateOverride {
        kind: MessageKind::MagicLink,
        locale: "de".into(),
        subject: "Anmelden bei {{ product_name }} ✓".into(),
        html: "<p>{{ link }}</p>".into(),
        text: "{{ link }}".into(),
        updated_at: now(),
    };
    store.put_template(&t.id, &o, &event("template.put", Some(&t.id))).await.unwrap();
    o.subject = "Neu".into();
    store.put_template(&t.id, &o, &event("template.put", Some(&t.id))).await.unwrap();
    assert_eq!(store.get_template(&t.id, MessageKind::MagicLink, "de").await.unwrap(), Some(o.clone()));
    assert_eq!(store.list_templates(&t.id).await.unwrap(), vec![o.clone()]);
    assert!(store.get_template(&other.id, MessageKind::MagicLink, "de").await.unwrap().is_none());
    assert!(store.get_template(&t.id, MessageKind::MagicLink, "en").await.unwrap().is_none());
    assert_eq!(
        store.delete_template(&other.id, MessageKind::MagicLink, "de", &event("d", Some(&other.id))).await,
        Err(StoreError::NotFound)
    );
    store.delete_template(&t.id, MessageKind::MagicLink, "de", &event("d", Some(&t.id))).await.unwrap();
    assert!(store.list_templates(&t.id).await.unwrap().is_empty());
}

/// A sign-up writes the account, its verification secret, message and event, and the
/// session (or second-factor challenge) that follows, in one transaction: a taken email
/// or a session of another user writes none of it, and nothing of one account's sign-up
/// reaches another tenant.
pub async fn a_sign_up_is_stored_whole_or_not_at_all(store: &dyn Store) {
    use crate::audit::AuditQuery;
    use crate::secret::SecretHash;
    use crate::session::RefreshToken;
    let t = super::store::created(store, "signup-whole").await;
    let start = |u: &crate::user::User| {
        let at = now();
        let session = super::sessions::session_of(&t.id, &u.id, at, at + Duration::days(30));
        let token = generate_secret("rt_");
        (session, RefreshToken { hash: token.hash, created_at: at, expires_at: at + Duration::days(30) })
    };
    let events = |action: &'static str| {
        let query = AuditQuery { tenant_id: Some(t.id.clone()), action: Some(action.into()), ..AuditQuery::default() };
        async move { store.list_audit_events(&query, &PageRequest::first(50)).await.unwrap().data.len() }
    };

    // With a session.
    let u = user(&t.id, "whole@example.com");
    let (verification, token) = secret(&t.id, Some(&u.id), Purpose::VerifyEmail, "whole@example.com");
    let (session, first) = start(&u);
    let (signed_up, signed_in) = (event("user.signup", Some(&t.id)), event("login.success", Some(&t.id)));
    let messages = [message(&t.id, "whole@example.com")];
    let sign_up = SignUp {
        user: &u,
        verification: &verification,
        messages: &messages,
        event: &signed_up,
        then: SignUpStart::Session(&session, &first, &signed_in),
    };
    store.sign_up(&t.id, &sign_up).await.unwrap();
    assert_eq!(store.get_user(&t.id, &u.id).await.unwrap(), u);
    let found = store.find_one_time_by_token(&t.id, Purpose::VerifyEmail, &SecretHash::of(&token), now()).await;
    assert_eq!(found.unwrap(), Some(verification.clone()));
    assert_eq!(store.get_session(&t.id, &session.id).await.unwrap().user_id, u.id);
    assert_eq!(store.list_messages(&t.id, &PageRequest::first(50)).await.unwrap().data.len(), 1);
    assert_eq!((events("user.signup").await, events("login.success").await), (1, 1));

    // The same address again (another case): nothing of it is written.
    let again = user(&t.id, "WHOLE@example.com");
    let (verification2, token2) = secret(&t.id, Some(&again.id), Purpose::VerifyEmail, "WHOLE@example.com");
    let (session2, first2) = start(&again);
    let messages2 = [message(&t.id, "WHOLE@example.com")];
    let (signed_up2, signed_in2) = (event("user.signup", Some(&t.id)), event("login.success", Some(&t.id)));
    let taken = SignUp {
        user: &again,
        verification: &verification2,
        messages: &messages2,
        event: &signed_up2,
        then: SignUpStart::Session(&session2, &first2, &signed_in2),
    };
    assert!(matches!(store.sign_up(&t.id, &taken).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.get_session(&t.id, &session2.id).await, Err(StoreError::NotFound));
    let found = store.find_one_time_by_token(&t.id, Purpose::VerifyEmail, &SecretHash::of(&token2), now()).await;
    assert_eq!(found.unwrap(), None);
    assert_eq!(store.list_messages(&t.id, &PageRequest::first(50)).await.unwrap().data.len(), 1);
    assert_eq!((events("user.signup").await, events("login.success").await), (1, 1));

    // A session that is not the new user's: refused, and the account is not stored.
    let other = user(&t.id, "other@example.com");
    let (verification3, _) = secret(&t.id, Some(&other.id), Purpose::VerifyEmail, "other@example.com");
    let signed_up3 = event("user.signup", Some(&t.id));
    let mismatched = SignUp {
        user: &other,
        verification: &verification3,
        messages: &[],
        event: &signed_up3,
        then: SignUpStart::Session(&session2, &first2, &signed_in2),
    };
    assert_eq!(store.sign_up(&t.id, &mismatched).await, Err(StoreError::NotFound));
    assert_eq!(store.get_user(&t.id, &other.id).await, Err(StoreError::NotFound));

    // With a second-factor challenge instead, or with nothing yet.
    let (challenge, challenge_token) = secret(&t.id, Some(&other.id), Purpose::MfaChallenge, "other@example.com");
    let enrol = event("login.mfa_required", Some(&t.id));
    let with_challenge = SignUp { then: SignUpStart::Challenge(&challenge, &enrol), ..mismatched };
    store.sign_up(&t.id, &with_challenge).await.unwrap();
    let hash = SecretHash::of(&challenge_token);
    assert!(store.find_one_time_by_token(&t.id, Purpose::MfaChallenge, &hash, now()).await.unwrap().is_some());
    assert_eq!(events("login.mfa_required").await, 1);
    let quiet = user(&t.id, "quiet@example.com");
    let (verification4, _) = secret(&t.id, Some(&quiet.id), Purpose::VerifyEmail, "quiet@example.com");
    let signed_up4 = event("user.signup", Some(&t.id));
    let nothing = SignUp {
        user: &quiet,
        verification: &verification4,
        messages: &[],
        event: &signed_up4,
        then: SignUpStart::Nothing,
    };
    store.sign_up(&t.id, &nothing).await.unwrap();
    assert_eq!(store.get_user(&t.id, &quiet.id).await.unwrap(), quiet);
    assert_eq!((events("user.signup").await, events("login.success").await), (3, 1));

    // Another tenant sees none of it.
    let elsewhere = super::store::created(store, "signup-elsewhere").await;
    assert_eq!(store.get_user(&elsewhere.id, &u.id).await, Err(StoreError::NotFound));
    assert_eq!(store.get_session(&elsewhere.id, &session.id).await, Err(StoreError::NotFound));
}

/// One-time secrets that expired before the cut-off — consumed or not — are deleted, at
/// most `limit` per call and in every tenant; live ones and those that expired after the
/// cut-off stay, and a deleted one's token is simply unknown.
pub async fn expired_one_time_secrets_are_swept(store: &dyn Store) {
    use crate::secret::SecretHash;
    let (t, u) = setup(store, "ots-sweep").await;
    let (other, w) = setup(store, "ots-sweep-other").await;
    let issued = |tenant: &crate::tenant::Tenant, user: &crate::user::User, target: &str, expired_days_ago: i64| {
        let (mut s, token) = secret(&tenant.id, Some(&user.id), Purpose::MagicLink, target);
        s.created_at = now() - Duration::days(expired_days_ago + 1);
        s.expires_at = now() - Duration::days(expired_days_ago);
        (s, token)
    };
    let live = secret(&t.id, Some(&u.id), Purpose::MagicLink, "live@example.com");
    let lately = issued(&t, &u, "lately@example.com", 1);
    let long_ago = [
        issued(&t, &u, "old1@example.com", 10),
        issued(&t, &u, "old2@example.com", 30),
        issued(&other, &w, "old3@example.com", 10),
    ];
    for (s, _) in [&live, &lately].into_iter().chain(&long_ago) {
        store.issue_one_time(&s.tenant_id, s, &[], &event("x", Some(&s.tenant_id))).await.unwrap();
    }
    let cutoff = now() - Duration::days(7);
    assert_eq!(store.sweep_expired_one_time(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.sweep_expired_one_time(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.sweep_expired_one_time(cutoff, 2).await.unwrap(), 0);
    let ever = now() - Duration::days(60);
    for (s, token) in &long_ago {
        let hash = SecretHash::of(token);
        assert_eq!(store.find_one_time_by_token(&s.tenant_id, Purpose::MagicLink, &hash, ever).await.unwrap(), None);
    }
    for (s, token) in [&live, &lately] {
        let hash = SecretHash::of(token);
        let found = store.find_one_time_by_token(&t.id, Purpose::MagicLink, &hash, ever).await.unwrap();
        assert_eq!(found.map(|f| f.id), Some(s.id.clone()));
    }
}

/// The delivery records of messages that were sent or given up, queued before the
/// cut-off, are deleted — at most `limit` per call and in every tenant — while a message
/// waiting for its retry or leased to a worker stays whatever its age, as does a lately
/// finished one; the leased one can still be finished afterwards.
pub async fn finished_messages_are_swept(store: &dyn Store) {
    let (t, _) = setup(store, "outbox-sweep").await;
    let (other, _) = setup(store, "outbox-sweep-other").await;
    let queued = |tenant: &TenantId, to: &str, days_ago: i64| {
        let mut m = message(tenant, to);
        m.created_at = now() - Duration::days(days_ago);
        m
    };
    let old_sent = queued(&t.id, "sent@example.com", 40);
    let old_failed = queued(&other.id, "failed@example.com", 45);
    let old_retrying = queued(&t.id, "retrying@example.com", 40);
    let old_leased = queued(&t.id, "leased@example.com", 40);
    let lately_sent = queued(&t.id, "lately@example.com", 1);
    for m in [&old_sent, &old_failed, &old_retrying, &old_leased, &lately_sent] {
        store.enqueue_messages(&m.tenant_id, std::slice::from_ref(m), &event("q", Some(&m.tenant_id))).await.unwrap();
    }
    let at = now() + Duration::seconds(1);
    let claimed = store.claim_due_messages(at, at + Duration::seconds(60), 100).await.unwrap();
    let ours = [&old_sent, &old_failed, &old_retrying, &old_leased, &lately_sent];
    assert_eq!(claimed.iter().filter(|r| ours.iter().any(|m| m.id == r.message.id)).count(), 5);
    let finish = |m: &OutboxMessage, outcome: DeliveryOutcome| {
        let (tenant, id) = (m.tenant_id.clone(), m.id.clone());
        async move { store.finish_delivery(&tenant, &id, &outcome, &event("message.x", Some(&tenant))).await.unwrap() }
    };
    finish(&old_sent, DeliveryOutcome::Sent { at, keep_content: false }).await;
    finish(&lately_sent, DeliveryOutcome::Sent { at, keep_content: false }).await;
    finish(&old_failed, DeliveryOutcome::Failed { error: "550 no such user".into() }).await;
    let later = at + Duration::days(1);
    finish(&old_retrying, DeliveryOutcome::Retry { next_attempt_at: later, error: "421 busy".into() }).await;

    let cutoff = now() - Duration::days(30);
    assert_eq!(store.sweep_finished_messages(cutoff, 1).await.unwrap(), 1);
    assert_eq!(store.sweep_finished_messages(cutoff, 1).await.unwrap(), 1);
    assert_eq!(store.sweep_finished_messages(cutoff, 1).await.unwrap(), 0);
    let ids = |tenant: TenantId| async move {
        let page = store.list_messages(&tenant, &PageRequest::first(10)).await.unwrap();
        let mut ids: Vec<MessageId> = page.data.into_iter().map(|r| r.message.id).collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids
    };
    let mut kept = vec![old_retrying.id.clone(), old_leased.id.clone(), lately_sent.id.clone()];
    kept.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(ids(t.id.clone()).await, kept);
    assert_eq!(ids(other.id.clone()).await, Vec::<MessageId>::new());
    // What stayed is still a message in flight: the leased one is finished, the retried
    // one claimed when due.
    finish(&old_leased, DeliveryOutcome::Sent { at, keep_content: false }).await;
    let due = store.claim_due_messages(later, later + Duration::seconds(60), 100).await.unwrap();
    assert!(due.iter().any(|r| r.message.id == old_retrying.id && r.message.sealed == old_retrying.sealed));
}
