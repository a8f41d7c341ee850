//! Storage conformance: the semantics every backend must share.

use crate::audit::{ActorType, AuditEvent, AuditQuery};
use crate::clock::truncate_to_micros;
use crate::credentials::{AdminTokenRecord, SecretKeyRecord};
use crate::ids::{AdminTokenId, EventId, SecretKeyId, TenantId, UserId};
use crate::page::PageRequest;
use crate::secret::{SecretHash, generate_secret};
use crate::store::{Rotation, Store, StoreError};
use crate::tenant::{Tenant, TenantSettings, TenantSlug};
use crate::user::{Email, User, UserFilter, UserStatus};
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};

pub(crate) fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

fn unique_slug(base: &str) -> TenantSlug {
    let id = TenantId::generate();
    let suffix = id.as_str()[id.as_str().len() - 12..].to_owned();
    TenantSlug::parse(&format!("{base}-{suffix}")).unwrap()
}

pub(crate) fn tenant(name: &str) -> Tenant {
    let at = now();
    Tenant {
        id: TenantId::generate(),
        slug: unique_slug("t"),
        name: name.to_owned(),
        settings: TenantSettings::default(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

pub(crate) fn event(action: &str, tenant_id: Option<&TenantId>) -> AuditEvent {
    AuditEvent {
        id: EventId::generate(),
        tenant_id: tenant_id.cloned(),
        actor_type: ActorType::System,
        actor_id: Some("conformance".into()),
        action: action.into(),
        target_type: None,
        target_id: None,
        ip: Some("203.0.113.9".into()),
        user_agent: Some("conformance/1.0".into()),
        request_id: Some("req-1".into()),
        data: serde_json::json!({ "note": "Grüße ✓" }),
        created_at: now(),
    }
}

fn key_for(tenant_id: &TenantId) -> (SecretKeyRecord, String) {
    let generated = generate_secret("sk_");
    let record = SecretKeyRecord {
        id: SecretKeyId::generate(),
        tenant_id: tenant_id.clone(),
        name: "ci".into(),
        display_prefix: generated.display_prefix,
        hash: generated.hash,
        created_at: now(),
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
    };
    (record, generated.value.expose().to_owned())
}

fn admin_token(scope: Option<Vec<TenantId>>) -> (AdminTokenRecord, String) {
    let generated = generate_secret("gh_admin_");
    let record = AdminTokenRecord {
        role: crate::access::OperatorRole::Owner,
        id: AdminTokenId::generate(),
        name: "automation".into(),
        display_prefix: generated.display_prefix,
        hash: generated.hash,
        tenant_scope: scope,
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    (record, generated.value.expose().to_owned())
}

pub(crate) async fn created(store: &dyn Store, name: &str) -> Tenant {
    let t = tenant(name);
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    t
}

/// Tenants come back exactly as written, Unicode names and settings included.
pub async fn tenant_crud_round_trips_unicode(store: &dyn Store) {
    let mut t = tenant("Zürich Öl 東京 🚀");
    t.settings.allowed_origins = vec!["https://app.example.com".into()];
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), t);
    assert_eq!(store.get_tenant_by_slug(&t.slug).await.unwrap(), t);

    let mut changed = t.clone();
    changed.name = "Ålesund".into();
    changed.version = 2;
    changed.updated_at = now();
    changed.settings.access_token_ttl_seconds = 300;
    store.update_tenant(&changed, &event("tenant.update", Some(&t.id))).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), changed);

    store.delete_tenant(&t.id, now(), &event("tenant.delete", Some(&t.id))).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await, Err(StoreError::NotFound));
    assert_eq!(store.get_tenant_by_slug(&t.slug).await, Err(StoreError::NotFound));
}

/// Reads and writes of rows that do not exist report `NotFound`, never success.
pub async fn missing_rows_are_not_found(store: &dyn Store) {
    let ghost = tenant("ghost");
    assert_eq!(store.get_tenant(&ghost.id).await, Err(StoreError::NotFound));
    let mut update = ghost.clone();
    update.version = 2;
    assert_eq!(store.update_tenant(&update, &event("x", Some(&ghost.id))).await, Err(StoreError::NotFound));
    assert_eq!(store.delete_tenant(&ghost.id, now(), &event("x", Some(&ghost.id))).await, Err(StoreError::NotFound));
    let (key, _) = key_for(&ghost.id);
    assert_eq!(store.create_secret_key(&ghost.id, &key, &event("x", Some(&ghost.id))).await, Err(StoreError::NotFound));
    assert_eq!(store.get_secret_key(&ghost.id, &key.id).await, Err(StoreError::NotFound));
    assert_eq!(
        store.revoke_secret_key(&ghost.id, &key.id, now(), &event("x", Some(&ghost.id))).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.revoke_admin_token(&AdminTokenId::generate(), now(), &event("x", None)).await,
        Err(StoreError::NotFound)
    );
}

/// A slug is unique for ever: reusing it conflicts with `tenants_slug_key`, also after
/// the first holder was deleted.
pub async fn duplicate_slug_conflicts_with_the_constraint_name_even_after_delete(store: &dyn Store) {
    let first = created(store, "first").await;
    let mut second = tenant("second");
    second.slug = first.slug.clone();
    let conflict = Err(StoreError::Conflict { constraint: "tenants_slug_key".into() });
    assert_eq!(store.create_tenant(&second, &event("tenant.create", Some(&second.id))).await, conflict);
    store.delete_tenant(&first.id, now(), &event("tenant.delete", Some(&first.id))).await.unwrap();
    assert_eq!(store.create_tenant(&second, &event("tenant.create", Some(&second.id))).await, conflict);
    assert_eq!(store.get_tenant(&second.id).await, Err(StoreError::NotFound));
}

/// Two writers starting from the same version: one wins, the other is told to retry.
pub async fn concurrent_updates_never_lose_a_change(store: &dyn Store) {
    let t = created(store, "versioned").await;
    let attempts = (0..8).map(|i| {
        let mut next = t.clone();
        next.version = 2;
        next.name = format!("writer {i}");
        async move { store.update_tenant(&next, &event("tenant.update", Some(&next.id))).await }
    });
    let results = futures::future::join_all(attempts).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1);
    for r in results.iter().filter(|r| r.is_err()) {
        assert_eq!(r, &Err(StoreError::Conflict { constraint: "tenants_version".into() }));
    }
    assert_eq!(store.get_tenant(&t.id).await.unwrap().version, 2);
}

/// Walking pages while new rows arrive never repeats or skips a row that existed when
/// the walk began.
pub async fn pagination_is_stable_while_rows_are_inserted(store: &dyn Store) {
    let mut mine = Vec::new();
    for i in 0..7 {
        mine.push(created(store, &format!("page {i}")).await.id);
    }
    let scope: Vec<TenantId> = mine.clone();
    let mut seen = Vec::new();
    let mut request = PageRequest::first(3);
    let mut pages = 0;
    loop {
        let page = store.list_tenants(Some(&scope), &request).await.unwrap();
        assert!(page.data.len() <= 3);
        seen.extend(page.data.iter().map(|t| t.id.clone()));
        // Rows inserted mid-walk must not disturb it.
        created(store, "late arrival").await;
        pages += 1;
        match page.next_cursor {
            Some(cursor) => request = PageRequest::parse(Some(3), Some(&cursor)).unwrap(),
            None => break,
        }
        assert!(pages < 10, "pagination did not terminate");
    }
    assert_eq!(seen, mine);
    assert_eq!(pages, 3);
}

/// A scoped listing shows only the scoped tenants.
pub async fn listing_respects_the_tenant_scope(store: &dyn Store) {
    let a = created(store, "a").await;
    let _b = created(store, "b").await;
    let page = store.list_tenants(Some(std::slice::from_ref(&a.id)), &PageRequest::first(100)).await.unwrap();
    assert_eq!(page.data.iter().map(|t| &t.id).collect::<Vec<_>>(), [&a.id]);
    assert!(store.count_tenants().await.unwrap() >= 2);
}

/// One tenant can neither read, list, revoke nor rotate another tenant's keys.
pub async fn secret_keys_are_isolated_by_tenant(store: &dyn Store) {
    let a = created(store, "a").await;
    let b = created(store, "b").await;
    let (key, secret) = key_for(&a.id);
    store.create_secret_key(&a.id, &key, &event("secret_key.create", Some(&a.id))).await.unwrap();

    assert_eq!(store.get_secret_key(&b.id, &key.id).await, Err(StoreError::NotFound));
    assert!(store.list_secret_keys(&b.id, &PageRequest::first(10)).await.unwrap().data.is_empty());
    assert_eq!(
        store.revoke_secret_key(&b.id, &key.id, now(), &event("x", Some(&b.id))).await,
        Err(StoreError::NotFound)
    );
    let (successor, _) = key_for(&b.id);
    let rotation = Rotation { old_expires_at: now() };
    assert_eq!(
        store.rotate_secret_key(&b.id, &key.id, rotation, &successor, &event("x", Some(&b.id))).await,
        Err(StoreError::NotFound)
    );
    // A key record claiming another tenant is refused.
    let (foreign, _) = key_for(&a.id);
    assert_eq!(store.create_secret_key(&b.id, &foreign, &event("x", Some(&b.id))).await, Err(StoreError::NotFound));

    let listed = store.list_secret_keys(&a.id, &PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.data, vec![key.clone()]);
    let found = store.find_active_secret_key(&SecretHash::of(&secret), now()).await.unwrap();
    assert_eq!(found.map(|k| k.tenant_id), Some(a.id));
}

/// Rotation gives the old key an expiry that is judged against the time passed in.
pub async fn secret_key_expiry_follows_the_given_time(store: &dyn Store) {
    let t = created(store, "expiry").await;
    let (old, old_secret) = key_for(&t.id);
    store.create_secret_key(&t.id, &old, &event("secret_key.create", Some(&t.id))).await.unwrap();
    let t0 = now();
    let (successor, new_secret) = key_for(&t.id);
    let rotation = Rotation { old_expires_at: t0 + Duration::seconds(60) };
    store
        .rotate_secret_key(&t.id, &old.id, rotation, &successor, &event("secret_key.rotate", Some(&t.id)))
        .await
        .unwrap();

    let old_hash = SecretHash::of(&old_secret);
    assert!(store.find_active_secret_key(&old_hash, t0 + Duration::seconds(59)).await.unwrap().is_some());
    assert!(store.find_active_secret_key(&old_hash, t0 + Duration::seconds(60)).await.unwrap().is_none());
    let new_hash = SecretHash::of(&new_secret);
    assert!(store.find_active_secret_key(&new_hash, t0 + Duration::days(365)).await.unwrap().is_some());

    let later = t0 + Duration::seconds(5);
    store.touch_secret_key(&t.id, &successor.id, later).await.unwrap();
    assert_eq!(store.get_secret_key(&t.id, &successor.id).await.unwrap().last_used_at, Some(later));
    store.revoke_secret_key(&t.id, &successor.id, later, &event("secret_key.revoke", Some(&t.id))).await.unwrap();
    assert!(store.find_active_secret_key(&new_hash, later).await.unwrap().is_none());
    assert_eq!(
        store.revoke_secret_key(&t.id, &successor.id, later, &event("x", Some(&t.id))).await,
        Err(StoreError::NotFound)
    );
}

/// Twelve concurrent rotations of one key: exactly one succeeds, the rest conflict, and
/// exactly one successor exists.
pub async fn parallel_rotations_of_one_key_have_exactly_one_winner(store: &dyn Store) {
    let t = created(store, "race").await;
    let (old, _) = key_for(&t.id);
    store.create_secret_key(&t.id, &old, &event("secret_key.create", Some(&t.id))).await.unwrap();
    let attempts = (0..12).map(|_| {
        let (successor, _) = key_for(&t.id);
        let rotation = Rotation { old_expires_at: now() + Duration::hours(1) };
        let (tenant_id, old_id) = (t.id.clone(), old.id.clone());
        async move {
            store
                .rotate_secret_key(
                    &tenant_id,
                    &old_id,
                    rotation,
                    &successor,
                    &event("secret_key.rotate", Some(&tenant_id)),
                )
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert_eq!(r, &Err(StoreError::Conflict { constraint: "secret_keys_rotated".into() }));
    }
    let keys = store.list_secret_keys(&t.id, &PageRequest::first(100)).await.unwrap();
    assert_eq!(keys.data.len(), 2);
    let rotations = store
        .list_audit_events(
            &AuditQuery {
                tenant_id: Some(t.id.clone()),
                action: Some("secret_key.rotate".into()),
                ..Default::default()
            },
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(rotations.data.len(), 1);
}

/// A deleted tenant's keys stop authenticating at once and are marked revoked.
pub async fn deleting_a_tenant_stops_its_keys(store: &dyn Store) {
    let t = created(store, "doomed").await;
    let (key, secret) = key_for(&t.id);
    store.create_secret_key(&t.id, &key, &event("secret_key.create", Some(&t.id))).await.unwrap();
    store.delete_tenant(&t.id, now(), &event("tenant.delete", Some(&t.id))).await.unwrap();
    assert!(store.find_active_secret_key(&SecretHash::of(&secret), now()).await.unwrap().is_none());
    assert!(store.get_secret_key(&t.id, &key.id).await.unwrap().revoked_at.is_some());
}

/// Several replicas starting at once create one bootstrap token between them.
pub async fn parallel_first_starts_create_one_bootstrap_token(store: &dyn Store) {
    let attempts = (0..8).map(|_| {
        let (token, _) = admin_token(None);
        async move { store.create_first_admin_token(&token, &event("admin_token.bootstrap", None)).await }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r == &&Ok(true)).count(), 1, "{results:?}");
    assert!(results.iter().all(Result::is_ok));
    let (later, _) = admin_token(None);
    assert_eq!(store.create_first_admin_token(&later, &event("admin_token.bootstrap", None)).await, Ok(false));
}

/// Operator tokens are found by hash until revoked; their scope round-trips.
pub async fn revoked_admin_tokens_are_not_found(store: &dyn Store) {
    let t = created(store, "scoped").await;
    let (token, secret) = admin_token(Some(vec![t.id.clone()]));
    store.create_admin_token(&token, &event("admin_token.create", None)).await.unwrap();
    let found = store.find_active_admin_token(&SecretHash::of(&secret)).await.unwrap();
    assert_eq!(found, Some(token.clone()));
    let when = now();
    store.touch_admin_token(&token.id, when).await.unwrap();
    store.revoke_admin_token(&token.id, when, &event("admin_token.revoke", None)).await.unwrap();
    assert_eq!(store.find_active_admin_token(&SecretHash::of(&secret)).await.unwrap(), None);
    let mut all = Vec::new();
    let mut request = PageRequest::first(100);
    loop {
        let page = store.list_admin_tokens(&request).await.unwrap();
        all.extend(page.data);
        match page.next_cursor {
            Some(c) => request = PageRequest::parse(Some(100), Some(&c)).unwrap(),
            None => break,
        }
    }
    let listed = all.into_iter().find(|t| t.id == token.id).unwrap();
    assert_eq!(listed.revoked_at, Some(when));
    assert_eq!(listed.last_used_at, Some(when));
}

/// Audit events filter by tenant, scope, action and actor, and page in id order.
pub async fn audit_events_filter_and_paginate(store: &dyn Store) {
    let a = created(store, "audited").await;
    let b = created(store, "other").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut e = event("widget.poke", Some(&a.id));
        e.actor_id = Some(format!("actor-{}", i % 2));
        store.append_audit_events(std::slice::from_ref(&e)).await.unwrap();
        ids.push(e.id);
    }
    store.append_audit_events(&[event("widget.poke", Some(&b.id))]).await.unwrap();

    let query = AuditQuery { tenant_id: Some(a.id.clone()), action: Some("widget.poke".into()), ..Default::default() };
    let first = store.list_audit_events(&query, &PageRequest::first(3)).await.unwrap();
    let cursor = first.next_cursor.clone().unwrap();
    let second = store.list_audit_events(&query, &PageRequest::parse(Some(3), Some(&cursor)).unwrap()).await.unwrap();
    let got: Vec<_> = first.data.iter().chain(&second.data).map(|e| e.id.clone()).collect();
    assert_eq!(got, ids);
    assert_eq!(second.next_cursor, None);
    assert_eq!(first.data[0].data, serde_json::json!({ "note": "Grüße ✓" }));
    assert_eq!(first.data[0].ip.as_deref(), Some("203.0.113.9"));

    let by_actor = AuditQuery { actor_id: Some("actor-1".into()), ..query.clone() };
    assert_eq!(store.list_audit_events(&by_actor, &PageRequest::first(100)).await.unwrap().data.len(), 2);

    let scoped =
        AuditQuery { tenant_scope: Some(vec![b.id.clone()]), action: Some("widget.poke".into()), ..Default::default() };
    let seen = store.list_audit_events(&scoped, &PageRequest::first(100)).await.unwrap();
    let tenants: HashSet<_> = seen.data.iter().map(|e| e.tenant_id.clone()).collect();
    assert_eq!(tenants, HashSet::from([Some(b.id.clone())]));
}

/// A batch of events is stored whole or not at all.
pub async fn audit_batches_are_all_or_nothing(store: &dyn Store) {
    let t = created(store, "batch").await;
    let good = event("batch.ok", Some(&t.id));
    let mut batch = vec![good.clone(), event("batch.ok", Some(&t.id))];
    batch.push(good.clone()); // duplicate id: the whole batch must fail
    assert!(store.append_audit_events(&batch).await.is_err());
    let query = AuditQuery { action: Some("batch.ok".into()), ..Default::default() };
    assert!(store.list_audit_events(&query, &PageRequest::first(10)).await.unwrap().data.is_empty());
    store.append_audit_events(&batch[..2]).await.unwrap();
    assert_eq!(store.list_audit_events(&query, &PageRequest::first(10)).await.unwrap().data.len(), 2);
}

/// A write that fails records no audit event: change and event commit together.
pub async fn failed_writes_leave_no_audit_event(store: &dyn Store) {
    let first = created(store, "first").await;
    let mut dup = tenant("dup");
    dup.slug = first.slug.clone();
    let e = event("tenant.create", Some(&dup.id));
    assert!(store.create_tenant(&dup, &e).await.is_err());
    let query = AuditQuery { tenant_id: Some(dup.id.clone()), ..Default::default() };
    assert!(store.list_audit_events(&query, &PageRequest::first(10)).await.unwrap().data.is_empty());
}

pub(crate) fn user(tenant_id: &TenantId, email: &str) -> User {
    let at = now();
    User {
        id: UserId::generate(),
        tenant_id: tenant_id.clone(),
        email: Email::parse(email).unwrap(),
        email_verified: false,
        name: None,
        status: UserStatus::Active,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into()),
        created_at: at,
        updated_at: at,
        last_login_at: None,
        profile: Default::default(),
        public_metadata: serde_json::json!({}),
        private_metadata: serde_json::json!({}),
    }
}

/// Emails are unique per tenant regardless of case; another tenant may reuse one.
pub async fn user_emails_are_unique_per_tenant_ignoring_case(store: &dyn Store) {
    let a = created(store, "users-a").await;
    let b = created(store, "users-b").await;
    let alice = user(&a.id, "Alice@Example.COM");
    store.create_user(&a.id, &alice, &event("user.create", Some(&a.id))).await.unwrap();
    let twin = user(&a.id, "alice@example.com");
    assert_eq!(
        store.create_user(&a.id, &twin, &event("user.create", Some(&a.id))).await,
        Err(StoreError::Conflict { constraint: "users_tenant_id_email_normalized_key".into() })
    );
    let elsewhere = user(&b.id, "ALICE@example.com");
    store.create_user(&b.id, &elsewhere, &event("user.create", Some(&b.id))).await.unwrap();
    let found = store.find_user_by_email(&a.id, "alice@example.com").await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(found.email.as_str(), "Alice@Example.COM", "the address is kept as typed");
    // Changing another user's email onto a taken one conflicts too.
    let mut bob = user(&a.id, "bob@example.com");
    store.create_user(&a.id, &bob, &event("user.create", Some(&a.id))).await.unwrap();
    bob.email = Email::parse("ALICE@EXAMPLE.COM").unwrap();
    assert_eq!(
        store.update_user(&a.id, &bob, &event("user.update", Some(&a.id))).await,
        Err(StoreError::Conflict { constraint: "users_tenant_id_email_normalized_key".into() })
    );
}

/// Unicode addresses and names round-trip; one tenant cannot read, change or delete
/// another tenant's users.
pub async fn users_round_trip_unicode_and_are_isolated_by_tenant(store: &dyn Store) {
    let a = created(store, "uni-a").await;
    let b = created(store, "uni-b").await;
    let mut u = user(&a.id, "Jürgen@Bücher.de");
    u.name = Some("Jürgen Groß 🎉".into());
    u.profile = crate::user::UserProfile {
        username: Some("juergen".into()),
        phone: Some("+4930123456".into()),
        picture: Some("https://cdn.example.com/j.png".into()),
        locale: Some("de-CH".into()),
        phone_verified: true,
    };
    u.public_metadata = serde_json::json!({ "plan": "pro", "flags": ["ä", 1] });
    u.private_metadata = serde_json::json!({ "crm_id": 42 });
    store.create_user(&a.id, &u, &event("user.create", Some(&a.id))).await.unwrap();
    assert_eq!(store.get_user(&a.id, &u.id).await.unwrap(), u);
    let upper = Email::parse("JÜRGEN@BÜCHER.DE").unwrap();
    assert_eq!(store.find_user_by_email(&a.id, upper.normalized()).await.unwrap(), Some(u.clone()));

    assert_eq!(store.get_user(&b.id, &u.id).await, Err(StoreError::NotFound));
    assert_eq!(store.find_user_by_email(&b.id, upper.normalized()).await.unwrap(), None);
    assert!(store.list_users(&b.id, &UserFilter::default(), &PageRequest::first(10)).await.unwrap().data.is_empty());
    let mut hijack = u.clone();
    hijack.name = Some("pwned".into());
    assert_eq!(store.update_user(&b.id, &hijack, &event("x", Some(&b.id))).await, Err(StoreError::NotFound));
    assert_eq!(store.delete_user(&b.id, &u.id, &event("x", Some(&b.id))).await, Err(StoreError::NotFound));
    let mut foreign = user(&a.id, "x@example.com");
    foreign.tenant_id = a.id.clone();
    assert_eq!(store.create_user(&b.id, &foreign, &event("x", Some(&b.id))).await, Err(StoreError::NotFound));

    let mut changed = u.clone();
    changed.status = UserStatus::Disabled;
    changed.email_verified = true;
    changed.last_login_at = Some(now());
    changed.updated_at = now();
    store.update_user(&a.id, &changed, &event("user.update", Some(&a.id))).await.unwrap();
    assert_eq!(store.get_user(&a.id, &u.id).await.unwrap(), changed);
    store.delete_user(&a.id, &u.id, &event("user.delete", Some(&a.id))).await.unwrap();
    assert_eq!(store.get_user(&a.id, &u.id).await, Err(StoreError::NotFound));
    assert_eq!(store.delete_user(&a.id, &u.id, &event("x", Some(&a.id))).await, Err(StoreError::NotFound));
}

/// Listing filters by normalised email prefix (wildcards are literal), status and
/// creation time; usernames are unique per tenant when set.
pub async fn users_list_filters_by_email_prefix_and_status(store: &dyn Store) {
    let t = created(store, "filters").await;
    let mut named = user(&t.id, "named@example.com");
    named.profile.username = Some("taken".into());
    named.created_at -= Duration::days(10);
    store.create_user(&t.id, &named, &event("user.create", Some(&t.id))).await.unwrap();
    let mut clash = user(&t.id, "clash@example.com");
    clash.profile.username = Some("taken".into());
    assert_eq!(
        store.create_user(&t.id, &clash, &event("user.create", Some(&t.id))).await,
        Err(StoreError::Conflict { constraint: "users_tenant_id_username_key".into() })
    );
    let old = UserFilter { created_before: Some(now() - Duration::days(1)), ..Default::default() };
    let listed = store.list_users(&t.id, &old, &PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), vec![named.id.clone()]);
    let recent = UserFilter { created_after: Some(now() - Duration::days(1)), ..Default::default() };
    assert!(
        store.list_users(&t.id, &recent, &PageRequest::first(10)).await.unwrap().data.iter().all(|u| u.id != named.id)
    );
    store.delete_user(&t.id, &named.id, &event("user.delete", Some(&t.id))).await.unwrap();
    for email in ["ann@example.com", "anna@example.com", "bob@example.com", "a%b@example.com"] {
        store.create_user(&t.id, &user(&t.id, email), &event("user.create", Some(&t.id))).await.unwrap();
    }
    let mut disabled = user(&t.id, "annika@example.com");
    disabled.status = UserStatus::Disabled;
    store.create_user(&t.id, &disabled, &event("user.create", Some(&t.id))).await.unwrap();
    let emails = |page: crate::page::Page<User>| {
        page.data.into_iter().map(|u| u.email.normalized().to_owned()).collect::<Vec<_>>()
    };
    let by_prefix = UserFilter { email_prefix: Some("ann".into()), ..Default::default() };
    assert_eq!(
        emails(store.list_users(&t.id, &by_prefix, &PageRequest::first(10)).await.unwrap()),
        ["ann@example.com", "anna@example.com", "annika@example.com"]
    );
    let active =
        UserFilter { email_prefix: Some("ann".into()), status: Some(UserStatus::Active), ..Default::default() };
    assert_eq!(
        emails(store.list_users(&t.id, &active, &PageRequest::first(10)).await.unwrap()),
        ["ann@example.com", "anna@example.com"]
    );
    let wildcard = UserFilter { email_prefix: Some("a%".into()), ..Default::default() };
    assert_eq!(emails(store.list_users(&t.id, &wildcard, &PageRequest::first(10)).await.unwrap()), ["a%b@example.com"]);
}

/// A bulk import is stored whole or not at all.
pub async fn bulk_user_imports_are_all_or_nothing(store: &dyn Store) {
    let t = created(store, "import").await;
    store.create_user(&t.id, &user(&t.id, "existing@example.com"), &event("user.create", Some(&t.id))).await.unwrap();
    let batch =
        vec![user(&t.id, "one@example.com"), user(&t.id, "EXISTING@example.com"), user(&t.id, "two@example.com")];
    assert_eq!(
        store.create_users(&t.id, &batch, &event("user.import", Some(&t.id))).await,
        Err(StoreError::Conflict { constraint: "users_tenant_id_email_normalized_key".into() })
    );
    assert_eq!(store.find_user_by_email(&t.id, "one@example.com").await.unwrap(), None, "nothing of a failed batch");
    let good = vec![user(&t.id, "one@example.com"), user(&t.id, "two@example.com")];
    store.create_users(&t.id, &good, &event("user.import", Some(&t.id))).await.unwrap();
    assert_eq!(store.list_users(&t.id, &UserFilter::default(), &PageRequest::first(10)).await.unwrap().data.len(), 3);
}

/// Batched reads return the tenant's users among the ids, skipping unknown ones and
/// other tenants' users.
pub async fn users_are_read_in_batches_within_the_tenant(store: &dyn Store) {
    let t = tenant("batch");
    let other = tenant("batch-other");
    for x in [&t, &other] {
        store.create_tenant(x, &event("tenant.create", Some(&x.id))).await.unwrap();
    }
    let mine: Vec<User> = (0..3).map(|i| user(&t.id, &format!("b{i}@example.com"))).collect();
    for u in &mine {
        store.create_user(&t.id, u, &event("user.create", Some(&t.id))).await.unwrap();
    }
    let stranger = user(&other.id, "s@example.com");
    store.create_user(&other.id, &stranger, &event("user.create", Some(&other.id))).await.unwrap();
    let ids = vec![mine[2].id.clone(), UserId::generate(), stranger.id.clone(), mine[0].id.clone()];
    let found: Vec<UserId> = store.get_users(&t.id, &ids).await.unwrap().into_iter().map(|u| u.id).collect();
    let mut expected = vec![mine[0].id.clone(), mine[2].id.clone()];
    expected.sort();
    assert_eq!(found, expected);
    assert!(store.get_users(&t.id, &[]).await.unwrap().is_empty());
}
