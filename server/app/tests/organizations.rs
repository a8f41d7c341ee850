//! Organizations, black-box over HTTP on SQLite and Postgres: nesting, roles and the
//! permission check, the last-owner rule, org-scoped tokens that end with the membership,
//! and invitations accepted by an existing user or by signing up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::{Backend, Reply, TestServer};

on_both_backends!(
    organizations_nest_list_update_and_delete,
    roles_members_permission_checks_and_the_last_owner,
    org_tokens_carry_the_membership_and_end_with_it,
    invitations_are_accepted_once_by_the_invited_address,
    organizations_are_isolated_between_tenants,
);

const PASSWORD: &str = "violet kettle drums";

type Tenant = support::AuthTenant;

fn orgs(t: &Tenant) -> String {
    format!("/v1/tenants/{}/organizations", t.id)
}

async fn create_org(s: &TestServer, t: &Tenant, body: Value) -> Reply {
    s.post(&orgs(t), &s.admin, body).await
}

async fn org(s: &TestServer, t: &Tenant, slug: &str, parent: Option<&str>) -> String {
    let r = create_org(s, t, json!({"slug": slug, "name": slug.to_uppercase(), "parent_id": parent})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Signs up; (user id, access token, refresh token).
async fn user(s: &TestServer, t: &Tenant, email: &str) -> (String, String, String) {
    let r = s.auth(t, "signup", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = &r.body;
    (
        b["user"]["id"].as_str().unwrap().to_owned(),
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn add(s: &TestServer, t: &Tenant, org_id: &str, user_id: &str, role: &str) -> Reply {
    s.post(&format!("{}/{org_id}/members", orgs(t)), &s.admin, json!({"user_id": user_id, "role": role})).await
}

async fn check(s: &TestServer, t: &Tenant, org_id: &str, user_id: &str, permission: &str) -> Value {
    let body = json!({"user_id": user_id, "permission": permission});
    let r = s.post(&format!("{}/{org_id}/check", orgs(t)), &s.admin, body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The invitation token in the newest message to `to`.
async fn invitation_token(s: &TestServer, t: &Tenant, to: &str) -> String {
    let r = s.get(&format!("/v1/tenants/{}/dev/outbox?limit=100", t.id), &s.admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let messages: Vec<&Value> = r.body["data"].as_array().unwrap().iter().filter(|m| m["recipient"] == to).collect();
    let last = messages.last().unwrap_or_else(|| panic!("no message to {to}"));
    assert_eq!(last["kind"], "invitation");
    let text = last["text"].as_str().unwrap();
    let start = text.find("token=").unwrap() + 6;
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

async fn organizations_nest_list_update_and_delete(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.auth_tenant("org", Value::Null).await;
    let root = org(&s, &t, "acme", None).await;
    create_org(&s, &t, json!({"slug": "acme", "name": "Again"})).await.assert_problem(409, "conflict");
    for bad in [
        json!({"slug": "A", "name": "x"}),
        json!({"slug": "ok-slug", "name": ""}),
        json!({"slug": "ok-slug", "name": "x", "logo_url": "http://plain.example.com/a.png"}),
        json!({"slug": "ok-slug", "name": "x", "metadata": [1]}),
        json!({"slug": "ok-slug", "name": "x", "parent_id": "org_01jq3v6m8k2r7x0a9b4c5d6e7f"}),
        json!({"slug": "ok-slug", "name": "x", "owner_user_id": "usr_01jq3v6m8k2r7x0a9b4c5d6e7f"}),
    ] {
        create_org(&s, &t, bad.clone()).await.assert_problem(422, "validation_failed");
    }
    // Five levels: depth 0 … 4; a sixth is refused.
    let mut parent = root.clone();
    let mut chain = vec![root.clone()];
    for level in 1..=4 {
        parent = org(&s, &t, &format!("level-{level}"), Some(&parent)).await;
        chain.push(parent.clone());
    }
    let r = create_org(&s, &t, json!({"slug": "too-deep", "name": "x", "parent_id": parent})).await;
    r.assert_problem(422, "validation_failed");
    let sibling = org(&s, &t, "sibling", Some(&root)).await;
    let children = s.get(&format!("{}?parent_id={root}", orgs(&t)), &s.admin).await;
    let ids: Vec<&str> = children.body["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![chain[1].as_str(), sibling.as_str()]);
    let subtree = s.get(&format!("{}?subtree_of={root}&limit=3", orgs(&t)), &s.admin).await;
    assert_eq!(subtree.body["data"].as_array().unwrap().len(), 3);
    let next = subtree.body["next_cursor"].as_str().unwrap();
    let rest = s.get(&format!("{}?subtree_of={root}&limit=3&cursor={next}", orgs(&t)), &s.admin).await;
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 2, "{:?}", rest.body);
    assert!(rest.body["next_cursor"].is_null());
    let deepest = s.get(&format!("{}/{}", orgs(&t), chain[4]), &s.admin).await;
    assert_eq!(deepest.body["depth"], 4);
    // Update; slug collisions are conflicts.
    let r = s
        .patch(&format!("{}/{sibling}", orgs(&t)), &s.admin, json!({"name": "Sister ✓", "metadata": {"tier": "gold"}}))
        .await;
    assert_eq!(
        (r.status, r.body["name"].clone(), r.body["metadata"]["tier"].clone()),
        (200, json!("Sister ✓"), json!("gold"))
    );
    s.patch(&format!("{}/{sibling}", orgs(&t)), &s.admin, json!({"slug": "acme"}))
        .await
        .assert_problem(409, "conflict");
    // An organization with children cannot be deleted; a leaf can.
    s.delete(&format!("{}/{root}", orgs(&t)), &s.admin).await.assert_problem(409, "conflict");
    assert_eq!(s.delete(&format!("{}/{sibling}", orgs(&t)), &s.admin).await.status, 204);
    s.get(&format!("{}/{sibling}", orgs(&t)), &s.admin).await.assert_problem(404, "not_found");
}

async fn roles_members_permission_checks_and_the_last_owner(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.auth_tenant("org", Value::Null).await;
    let (ann, _, _) = user(&s, &t, "ann@example.com").await;
    let (bob, _, _) = user(&s, &t, "bob@example.com").await;
    let (cat, _, _) = user(&s, &t, "cat@example.com").await;
    let r = create_org(&s, &t, json!({"slug": "acme", "name": "Acme", "owner_user_id": ann})).await;
    let acme = r.body["id"].as_str().unwrap().to_owned();

    // Custom roles: validated, listed after the built-ins; built-ins are fixed.
    let roles = format!("/v1/tenants/{}/roles", t.id);
    let bad = json!({"key": "billing", "name": "Billing", "permissions": ["Billing:Read"]});
    s.post(&roles, &s.admin, bad).await.assert_problem(422, "validation_failed");
    let billing = json!({"key": "billing", "name": "Billing", "permissions": ["billing:*", "org:read"]});
    assert_eq!(s.post(&roles, &s.admin, billing.clone()).await.status, 201);
    s.post(&roles, &s.admin, billing).await.assert_problem(409, "conflict");
    let owner = json!({"key": "owner", "name": "Mine", "permissions": []});
    s.post(&roles, &s.admin, owner).await.assert_problem(403, "forbidden");
    let listed = s.get(&roles, &s.admin).await;
    let keys: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["owner", "admin", "member", "viewer", "billing"]);

    assert_eq!(add(&s, &t, &acme, &bob, "member").await.status, 201);
    assert_eq!(add(&s, &t, &acme, &cat, "billing").await.status, 201);
    add(&s, &t, &acme, &bob, "admin").await.assert_problem(409, "conflict");
    add(&s, &t, &acme, &bob, "wizard").await.assert_problem(422, "validation_failed");
    let members = s.get(&format!("{}/{acme}/members", orgs(&t)), &s.admin).await;
    assert_eq!(members.body["data"].as_array().unwrap().len(), 3);

    // The check answers with the reason.
    let c = check(&s, &t, &acme, &ann, "anything:at-all").await;
    assert_eq!((c["allowed"].clone(), c["granted_by"].clone()), (json!(true), json!("*")));
    let c = check(&s, &t, &acme, &bob, "members:read").await;
    assert_eq!((c["allowed"].clone(), c["role"].clone()), (json!(true), json!("member")));
    let c = check(&s, &t, &acme, &bob, "members:remove").await;
    assert_eq!(c["allowed"], false);
    assert!(c["reason"].as_str().unwrap().contains("does not grant"), "{c:?}");
    let c = check(&s, &t, &acme, &cat, "billing:refund").await;
    assert_eq!((c["allowed"].clone(), c["granted_by"].clone()), (json!(true), json!("billing:*")));
    let other = org(&s, &t, "other", None).await;
    let c = check(&s, &t, &other, &bob, "org:read").await;
    assert_eq!((c["allowed"].clone(), c["role"].clone()), (json!(false), Value::Null));
    let r =
        s.post(&format!("{}/{acme}/check", orgs(&t)), &s.admin, json!({"user_id": bob, "permission": "read"})).await;
    r.assert_problem(422, "validation_failed");
    // A role in use cannot be deleted.
    s.delete(&format!("{roles}/billing"), &s.admin).await.assert_problem(409, "conflict");

    // The last owner can be neither demoted nor removed...
    let ann_path = format!("{}/{acme}/members/{ann}", orgs(&t));
    s.patch(&ann_path, &s.admin, json!({"role": "admin"})).await.assert_problem(409, "conflict");
    s.delete(&ann_path, &s.admin).await.assert_problem(409, "conflict");
    // ...until there is another.
    let r = s.patch(&format!("{}/{acme}/members/{bob}", orgs(&t)), &s.admin, json!({"role": "owner"})).await;
    assert_eq!(r.body["role"], "owner", "{:?}", r.body);
    assert_eq!(s.patch(&ann_path, &s.admin, json!({"role": "viewer"})).await.status, 200);
    assert_eq!(s.delete(&ann_path, &s.admin).await.status, 204);
    s.delete(&ann_path, &s.admin).await.assert_problem(404, "not_found");
    // Two owners demoting each other at once: one of them stays owner.
    assert_eq!(add(&s, &t, &acme, &ann, "owner").await.status, 201);
    let demote = |who: String| {
        let path = format!("{}/{acme}/members/{who}", orgs(&t));
        let s = &s;
        async move { s.patch(&path, &s.admin, json!({"role": "member"})).await.status }
    };
    let (a, b) = tokio::join!(demote(ann.clone()), demote(bob.clone()));
    let mut statuses = [a, b];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let c1 = check(&s, &t, &acme, &ann, "org:delete").await;
    let c2 = check(&s, &t, &acme, &bob, "org:delete").await;
    assert!(c1["allowed"] == true || c2["allowed"] == true);
    assert_eq!(s.delete(&format!("{roles}/billing"), &s.admin).await.status, 409);
    assert_eq!(s.delete(&format!("{}/{acme}/members/{cat}", orgs(&t)), &s.admin).await.status, 204);
    assert_eq!(s.delete(&format!("{roles}/billing"), &s.admin).await.status, 204);
}

async fn org_tokens_carry_the_membership_and_end_with_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.auth_tenant("org", Value::Null).await;
    let (dee, access, _) = user(&s, &t, "dee@example.com").await;
    let acme = org(&s, &t, "acme", None).await;
    let elsewhere = org(&s, &t, "elsewhere", None).await;
    assert_eq!(add(&s, &t, &acme, &dee, "admin").await.status, 201);

    let mine = s.get(&format!("/t/{}/auth/organizations", t.slug), &access).await;
    assert_eq!(mine.body["data"][0]["organization"]["slug"], "acme", "{:?}", mine.body);
    assert_eq!(mine.body["data"][0]["role"], "admin");

    let r = s.post(&format!("/t/{}/auth/organizations/{acme}/token", t.slug), &access, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["org_id"].clone(), c["org_slug"].clone(), c["org_role"].clone()),
        (json!(acme), json!("acme"), json!("admin"))
    );
    assert!(c["permissions"].as_array().unwrap().contains(&json!("members:invite")));
    assert_eq!(c["amr"], json!(["pwd"]));
    // The plain session's tokens stay unscoped.
    assert!(claims(&access).get("org_id").is_none_or(Value::is_null));
    let org_refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    // Another organization: no membership, the same answer as no organization.
    let r = s.post(&format!("/t/{}/auth/organizations/{elsewhere}/token", t.slug), &access, json!({})).await;
    r.assert_problem(404, "not_found");

    // Refreshes stay scoped and follow role changes.
    let path = format!("{}/{acme}/members/{dee}", orgs(&t));
    assert_eq!(s.patch(&path, &s.admin, json!({"role": "viewer"})).await.status, 200);
    let r = s.auth(&t, "refresh", json!({"refresh_token": org_refresh})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!((c["org_role"].clone(), c["permissions"].clone()), (json!("viewer"), json!(["org:read"])));
    let org_refresh = r.body["refresh_token"].as_str().unwrap().to_owned();

    // Removal ends the org session at once and stops new org tokens; the plain one lives.
    assert_eq!(add_owner_then_remove(&s, &t, &acme, &dee).await, 204);
    s.auth(&t, "refresh", json!({"refresh_token": org_refresh})).await.assert_problem(401, "invalid_token");
    let r = s.post(&format!("/t/{}/auth/organizations/{acme}/token", t.slug), &access, json!({})).await;
    r.assert_problem(404, "not_found");
    assert_eq!(s.get(&format!("/t/{}/auth/me", t.slug), &access).await.status, 200);

    // Leaving: the user's own choice, with the same effects; never as the last owner.
    let beta = org(&s, &t, "beta", None).await;
    assert_eq!(add(&s, &t, &beta, &dee, "member").await.status, 201);
    let r = s.post(&format!("/t/{}/auth/organizations/{beta}/token", t.slug), &access, json!({})).await;
    let beta_refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s.delete(&format!("/t/{}/auth/organizations/{beta}", t.slug), &access).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    s.auth(&t, "refresh", json!({"refresh_token": beta_refresh})).await.assert_problem(401, "invalid_token");
    s.delete(&format!("/t/{}/auth/organizations/{beta}", t.slug), &access).await.assert_problem(404, "not_found");
    let solo = org(&s, &t, "solo", None).await;
    assert_eq!(add(&s, &t, &solo, &dee, "owner").await.status, 201);
    s.delete(&format!("/t/{}/auth/organizations/{solo}", t.slug), &access).await.assert_problem(409, "conflict");
}

/// Gives the organization an owner, then removes `user_id`; the removal's status.
async fn add_owner_then_remove(s: &TestServer, t: &Tenant, org_id: &str, user_id: &str) -> u16 {
    let (owner, _, _) = user(s, t, &format!("owner-{}@example.com", &org_id[20..])).await;
    assert_eq!(add(s, t, org_id, &owner, "owner").await.status, 201);
    s.delete(&format!("{}/{org_id}/members/{user_id}", orgs(t)), &s.admin).await.status
}

async fn invitations_are_accepted_once_by_the_invited_address(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.auth_tenant("org", json!({"signup": "invite_only"})).await;
    let acme = org(&s, &t, "acme", None).await;
    let invitations = format!("{}/{acme}/invitations", orgs(&t));

    // A new address: sign up by accepting (sign-up is otherwise closed).
    let r = s.post(&invitations, &s.admin, json!({"email": "New@Example.com", "role": "member"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["email"], "new@example.com");
    let token = invitation_token(&s, &t, "New@Example.com").await;
    assert!(token.starts_with("invt_"));
    s.auth(&t, "signup", json!({"email": "new@example.com", "password": PASSWORD}))
        .await
        .assert_problem(403, "forbidden");
    // Parallel acceptances: one account, one membership.
    let accept = || s.auth(&t, "invitations/accept", json!({"token": token, "password": PASSWORD, "name": "Nea"}));
    let replies = futures::future::join_all((0..5).map(|_| accept())).await;
    let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "{:?}", replies.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status != 201) {
        r.assert_problem(400, "invalid_code");
    }
    let signed_up = &won[0].body;
    assert_eq!(signed_up["membership"]["role"], "member");
    assert_eq!(signed_up["user"]["email_verified"], true);
    let access = signed_up["access_token"].as_str().unwrap().to_owned();
    let mine = s.get(&format!("/t/{}/auth/organizations", t.slug), &access).await;
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);

    // An existing user: accept signed in, as the invited address only.
    let beta = org(&s, &t, "beta", None).await;
    let r = s
        .post(
            &format!("{}/{beta}/invitations", orgs(&t)),
            &s.admin,
            json!({"email": "new@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = invitation_token(&s, &t, "new@example.com").await;
    let users = format!("/v1/tenants/{}/users", t.id);
    let other = s.post(&users, &s.admin, json!({"email": "other@example.com", "password": PASSWORD})).await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let other_login = s.auth(&t, "login", json!({"email": "other@example.com", "password": PASSWORD})).await;
    let other_access = other_login.body["access_token"].as_str().unwrap();
    let r = s.post(&format!("/t/{}/auth/invitations/accept", t.slug), other_access, json!({"token": token})).await;
    r.assert_problem(403, "forbidden");
    let r = s.post(&format!("/t/{}/auth/invitations/accept", t.slug), &access, json!({"token": token})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["role"], "viewer");
    let r = s.post(&format!("/t/{}/auth/invitations/accept", t.slug), &access, json!({"token": token})).await;
    r.assert_problem(400, "invalid_code");

    // Revoked, replaced by a resend, or expired: the link is dead.
    let r = s.post(&invitations, &s.admin, json!({"email": "later@example.com", "role": "member"})).await;
    let first_id = r.body["id"].as_str().unwrap().to_owned();
    let first = invitation_token(&s, &t, "later@example.com").await;
    let resent = s.post(&format!("{invitations}/{first_id}/resend"), &s.admin, json!({})).await;
    assert_eq!(resent.status, 201, "{:?}", resent.body);
    let second = invitation_token(&s, &t, "later@example.com").await;
    assert_ne!(first, second);
    let try_accept = |token: String| s.auth(&t, "invitations/accept", json!({"token": token, "password": PASSWORD}));
    try_accept(first).await.assert_problem(400, "invalid_code");
    let second_id = resent.body["id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("{invitations}/{second_id}"), &s.admin).await.status, 204);
    try_accept(second).await.assert_problem(400, "invalid_code");
    let listed = s.get(&invitations, &s.admin).await;
    assert!(listed.body["data"].as_array().unwrap().iter().all(|i| i.get("token_hash").is_none()));
    s.post(&invitations, &s.admin, json!({"email": "old@example.com", "role": "member"})).await;
    let old = invitation_token(&s, &t, "old@example.com").await;
    s.sql(
        "UPDATE invitations SET expires_at = expires_at - 864000000000",
        "UPDATE invitations SET expires_at = expires_at - interval '10 days'",
    )
    .await;
    try_accept(old).await.assert_problem(400, "invalid_code");
    try_accept("invt_made_up".into()).await.assert_problem(400, "invalid_code");
    // Unknown roles and bad addresses are refused when inviting.
    let r = s.post(&invitations, &s.admin, json!({"email": "x@example.com", "role": "wizard"})).await;
    r.assert_problem(422, "validation_failed");
    let r = s.post(&invitations, &s.admin, json!({"email": "not an address", "role": "member"})).await;
    r.assert_problem(422, "validation_failed");
}

async fn organizations_are_isolated_between_tenants(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t1 = s.auth_tenant("org", Value::Null).await;
    let t2 = s.auth_tenant("org", Value::Null).await;
    let acme = org(&s, &t1, "acme", None).await;
    let (_, key2) = s.secret_key(&t2.id).await;
    let (_, key1) = s.secret_key(&t1.id).await;
    // Tenant 2's key reaches neither tenant 1 nor, through tenant 2's path, its organization.
    s.get(&format!("{}/{acme}", orgs(&t1)), &key2).await.assert_problem(404, "not_found");
    s.get(&format!("{}/{acme}", orgs(&t2)), &key2).await.assert_problem(404, "not_found");
    s.get(&format!("{}/{acme}/members", orgs(&t2)), &key2).await.assert_problem(404, "not_found");
    let (u2, access2, _) = user(&s, &t2, "two@example.com").await;
    add(&s, &t2, &acme, &u2, "member").await.assert_problem(404, "not_found");
    let r = s.post(&format!("/t/{}/auth/organizations/{acme}/token", t2.slug), &access2, json!({})).await;
    r.assert_problem(404, "not_found");
    // Its own key manages it.
    assert_eq!(s.get(&format!("{}/{acme}", orgs(&t1)), &key1).await.status, 200);
    // A user of tenant 2 cannot be added to tenant 1's organization.
    add(&s, &t1, &acme, &u2, "member").await.assert_problem(422, "validation_failed");
}
