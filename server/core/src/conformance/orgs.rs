//! Organization conformance: nesting and subtree listing, the last-owner rule, sessions
//! that end with the membership, roles in use, and invitations accepted once.

use super::store::{event, now, tenant, user};
use crate::ids::{InvitationId, OrganizationId, SessionId};
use crate::messaging::UserWrite;
use crate::org::{Invitation, Membership, Organization, Role};
use crate::page::PageRequest;
use crate::secret::generate_secret;
use crate::session::{RefreshToken, Session};
use crate::store::{Acceptance, OrgFilter, Store, StoreError};
use time::Duration;

fn org(slug: &str, parent: Option<&Organization>) -> Organization {
    let at = now();
    Organization {
        id: OrganizationId::generate(),
        slug: slug.into(),
        name: format!("{slug} ✓"),
        logo_url: None,
        metadata: serde_json::json!({ "plan": "gold" }),
        parent_id: parent.map(|p| p.id.clone()),
        depth: parent.map_or(0, |p| p.depth + 1),
        domain_join: crate::org::DomainJoin::Off,
        domain_join_role: "member".into(),
        created_at: at,
        updated_at: at,
    }
}

fn member(o: &Organization, u: &crate::user::User, role: &str) -> Membership {
    Membership { org_id: o.id.clone(), user_id: u.id.clone(), role: role.into(), created_at: now() }
}

/// Organizations round-trip, nest, list by parent and by subtree (paged), are unique by
/// slug per tenant, and are deleted only without children.
pub async fn organizations_nest_and_list_by_subtree(store: &dyn Store) {
    let t = tenant("orgs");
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let other = tenant("orgs-other");
    store.create_tenant(&other, &event("tenant.create", Some(&other.id))).await.unwrap();
    let ev = || event("organization.create", Some(&t.id));
    let root = org("root", None);
    store.create_org(&t.id, &root, None, &ev()).await.unwrap();
    assert_eq!(store.get_org(&t.id, &root.id).await.unwrap(), root);
    assert_eq!(store.get_org(&other.id, &root.id).await, Err(StoreError::NotFound));
    let dup = Organization { id: OrganizationId::generate(), ..org("root", None) };
    let conflict = Err(StoreError::Conflict { constraint: "organizations_tenant_id_slug_key".into() });
    assert_eq!(store.create_org(&t.id, &dup, None, &ev()).await, conflict);
    let same_slug_elsewhere = org("root", None);
    store.create_org(&other.id, &same_slug_elsewhere, None, &event("x", Some(&other.id))).await.unwrap();
    // A parent from another tenant is not found.
    let foreign_child = org("stray", Some(&same_slug_elsewhere));
    assert_eq!(store.create_org(&t.id, &foreign_child, None, &ev()).await, Err(StoreError::NotFound));
    let a = org("a", Some(&root));
    let b = org("b", Some(&root));
    let a1 = org("a1", Some(&a));
    for o in [&a, &b, &a1] {
        store.create_org(&t.id, o, None, &ev()).await.unwrap();
    }
    let ids = |page: crate::page::Page<Organization>| page.data.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let children = OrgFilter { parent_id: Some(root.id.clone()), subtree_of: None };
    assert_eq!(
        ids(store.list_orgs(&t.id, &children, &PageRequest::first(10)).await.unwrap()),
        vec![a.id.clone(), b.id.clone()]
    );
    let subtree = OrgFilter { parent_id: None, subtree_of: Some(root.id.clone()) };
    let first = store.list_orgs(&t.id, &subtree, &PageRequest::first(2)).await.unwrap();
    let cursor = first.next_cursor.clone().unwrap();
    assert_eq!(ids(first), vec![a.id.clone(), b.id.clone()]);
    let rest = store.list_orgs(&t.id, &subtree, &PageRequest::parse(Some(2), Some(&cursor)).unwrap()).await.unwrap();
    assert_eq!(ids(rest), vec![a1.id.clone()]);
    let all = store.list_orgs(&t.id, &OrgFilter::default(), &PageRequest::first(10)).await.unwrap();
    assert_eq!(all.data.len(), 4, "another tenant's organization is not listed");
    let del = || event("organization.delete", Some(&t.id));
    let has_children = Err(StoreError::Conflict { constraint: "organizations_has_children".into() });
    assert_eq!(store.delete_org(&t.id, &a.id, now(), &del()).await, has_children);
    store.delete_org(&t.id, &a1.id, now(), &del()).await.unwrap();
    store.delete_org(&t.id, &a.id, now(), &del()).await.unwrap();
    assert_eq!(store.delete_org(&t.id, &a.id, now(), &del()).await, Err(StoreError::NotFound));
}

/// Members: one per user and organization; the last owner stays (also when two owners
/// demote each other at once); removal revokes the member's org sessions only.
pub async fn the_last_owner_stays_and_removal_ends_org_sessions(store: &dyn Store) {
    let t = tenant("members");
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let ann = user(&t.id, "ann@example.com");
    let bob = user(&t.id, "bob@example.com");
    for u in [&ann, &bob] {
        store.create_user(&t.id, u, &event("user.create", Some(&t.id))).await.unwrap();
    }
    let o = org("acme", None);
    let ev = |action: &str| event(action, Some(&t.id));
    store.create_org(&t.id, &o, Some(&member(&o, &ann, "owner")), &ev("organization.create")).await.unwrap();
    store.add_member(&t.id, &member(&o, &bob, "member"), &ev("m")).await.unwrap();
    let pkey = Err(StoreError::Conflict { constraint: "org_members_pkey".into() });
    assert_eq!(store.add_member(&t.id, &member(&o, &bob, "admin"), &ev("m")).await, pkey);
    let last = Err(StoreError::Conflict { constraint: "last_owner".into() });
    assert_eq!(store.change_member_role(&t.id, &o.id, &ann.id, "admin", &ev("r")).await, last);
    assert_eq!(store.remove_member(&t.id, &o.id, &ann.id, now(), &ev("d")).await, last);
    store.change_member_role(&t.id, &o.id, &bob.id, "owner", &ev("r")).await.unwrap();
    let (e1, e2) = (ev("r"), ev("r"));
    let race = [
        store.change_member_role(&t.id, &o.id, &ann.id, "member", &e1),
        store.change_member_role(&t.id, &o.id, &bob.id, "member", &e2),
    ];
    let results = futures::future::join_all(race).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let owners = store.list_members(&t.id, &o.id, &PageRequest::first(10)).await.unwrap();
    assert_eq!(owners.data.iter().filter(|m| m.role == "owner").count(), 1);
    // An org session and a plain one of the member who leaves.
    let session = |org_id: Option<OrganizationId>| Session {
        id: SessionId::generate(),
        tenant_id: t.id.clone(),
        user_id: bob.id.clone(),
        created_at: now(),
        last_seen_at: now(),
        expires_at: now() + Duration::days(1),
        auth_time: now(),
        amr: vec!["pwd".into()],
        ip: None,
        user_agent: None,
        revoked_at: None,
        org_id,
    };
    let refresh =
        || RefreshToken { hash: generate_secret("rt_").hash, created_at: now(), expires_at: now() + Duration::days(1) };
    let scoped = session(Some(o.id.clone()));
    let plain = session(None);
    store.create_session(&t.id, &scoped, &refresh(), &ev("login")).await.unwrap();
    store.create_session(&t.id, &plain, &refresh(), &ev("login")).await.unwrap();
    assert_eq!(store.get_session(&t.id, &scoped.id).await.unwrap().org_id, Some(o.id.clone()));
    // Make sure bob is not the only owner, then remove him.
    store.change_member_role(&t.id, &o.id, &ann.id, "owner", &ev("r")).await.unwrap();
    store.remove_member(&t.id, &o.id, &bob.id, now(), &ev("d")).await.unwrap();
    assert!(store.get_session(&t.id, &scoped.id).await.unwrap().revoked_at.is_some());
    assert!(store.get_session(&t.id, &plain.id).await.unwrap().revoked_at.is_none());
    assert_eq!(store.get_member(&t.id, &o.id, &bob.id).await.unwrap(), None);
    assert_eq!(store.list_user_memberships(&t.id, &ann.id).await.unwrap().len(), 1);
    // Custom roles: created once, not deleted while held.
    let role = Role {
        key: "billing".into(),
        name: "Billing".into(),
        description: None,
        permissions: vec!["billing:*".into()],
        built_in: false,
    };
    store.put_role(&t.id, &role, true, &ev("role.create")).await.unwrap();
    let dup = Err(StoreError::Conflict { constraint: "org_roles_pkey".into() });
    assert_eq!(store.put_role(&t.id, &role, true, &ev("role.create")).await, dup);
    store.add_member(&t.id, &member(&o, &bob, "billing"), &ev("m")).await.unwrap();
    let in_use = Err(StoreError::Conflict { constraint: "org_roles_in_use".into() });
    assert_eq!(store.delete_role(&t.id, "billing", &ev("role.delete")).await, in_use);
    assert_eq!(store.list_roles(&t.id).await.unwrap(), vec![role]);
}

/// An invitation is accepted once (also in parallel), with its user, membership and
/// event; a newer invitation of the same address revokes the older.
pub async fn invitations_are_accepted_once(store: &dyn Store) {
    let t = tenant("invites");
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let o = org("acme", None);
    store.create_org(&t.id, &o, None, &event("organization.create", Some(&t.id))).await.unwrap();
    let invitation = |email: &str| {
        let token = generate_secret("invt_");
        let inv = Invitation {
            id: InvitationId::generate(),
            org_id: o.id.clone(),
            email: email.into(),
            role: "member".into(),
            token_hash: token.hash,
            invited_by: None,
            created_at: now(),
            expires_at: now() + Duration::days(7),
            accepted_at: None,
            revoked_at: None,
        };
        (inv, token.value)
    };
    let (old, old_token) = invitation("new@example.com");
    store.create_invitation(&t.id, &old, &[], &event("invitation.create", Some(&t.id))).await.unwrap();
    let (inv, token) = invitation("new@example.com");
    store.create_invitation(&t.id, &inv, &[], &event("invitation.create", Some(&t.id))).await.unwrap();
    let hash = |v: &crate::secret::SecretString| crate::secret::SecretHash::of(v.expose());
    assert_eq!(store.find_invitation_by_token(&t.id, &hash(&old_token), now()).await.unwrap(), None, "superseded");
    let found = store.find_invitation_by_token(&t.id, &hash(&token), now()).await.unwrap().unwrap();
    assert_eq!(found, inv);
    assert_eq!(store.find_invitation_by_token(&t.id, &hash(&token), now() + Duration::days(8)).await.unwrap(), None);
    // Five parallel sign-ups through the same invitation: one account, one membership.
    let newcomers: Vec<_> = (0..5).map(|i| user(&t.id, &format!("new{i}@example.com"))).collect();
    let members: Vec<_> = newcomers.iter().map(|u| member(&o, u, "member")).collect();
    let events: Vec<_> = (0..5).map(|_| event("invitation.accept", Some(&t.id))).collect();
    let tenant_id = &t.id;
    let race = (0..5).map(|i| {
        let acceptance = Acceptance {
            invitation_id: &inv.id,
            now: now(),
            user: UserWrite::Insert(&newcomers[i]),
            membership: &members[i],
            session: None,
            event: &events[i],
        };
        async move { store.accept_invitation(tenant_id, &acceptance).await }
    });
    let results = futures::future::join_all(race).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok() || *r == Err(StoreError::NotFound)));
    let joined = store.list_members(&t.id, &o.id, &PageRequest::first(10)).await.unwrap();
    assert_eq!(joined.data.len(), 1);
    let created =
        futures::future::join_all(newcomers.iter().map(|u| store.find_user_by_email(&t.id, u.email.normalized())))
            .await;
    assert_eq!(created.iter().filter(|u| matches!(u, Ok(Some(_)))).count(), 1, "the losers' users were rolled back");
    let listed = store.list_invitations(&t.id, &o.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|i| i.id == inv.id && i.accepted_at.is_some()));
    assert!(listed.iter().any(|i| i.id == old.id && i.revoked_at.is_some()));
    let ev = event("invitation.revoke", Some(&t.id));
    assert_eq!(store.revoke_invitation(&t.id, &o.id, &inv.id, now(), &ev).await, Err(StoreError::NotFound));
}

/// A domain is verified by one organization per tenant; only verified domains of
/// organizations whose policy is not `off` are found for joining.
pub async fn verified_domains_belong_to_one_organization(store: &dyn Store) {
    let t = tenant("domains");
    store.create_tenant(&t, &event("tenant.create", Some(&t.id))).await.unwrap();
    let ev = |action: &str| event(action, Some(&t.id));
    let open = Organization { domain_join: crate::org::DomainJoin::Offer, ..org("open", None) };
    let closed = org("closed", None);
    for o in [&open, &closed] {
        store.create_org(&t.id, o, None, &ev("organization.create")).await.unwrap();
    }
    let claim = |o: &Organization, domain: &str| crate::org::OrgDomain {
        org_id: o.id.clone(),
        domain: domain.into(),
        verification_token: "gatehouse-domain-verification=x".into(),
        verified_at: None,
        created_at: now(),
    };
    store.add_domain(&t.id, &claim(&open, "example.com"), &ev("d")).await.unwrap();
    store.add_domain(&t.id, &claim(&closed, "example.com"), &ev("d")).await.unwrap();
    let pkey = Err(StoreError::Conflict { constraint: "org_domains_pkey".into() });
    assert_eq!(store.add_domain(&t.id, &claim(&open, "example.com"), &ev("d")).await, pkey);
    assert!(store.orgs_by_verified_domain(&t.id, "example.com").await.unwrap().is_empty(), "not verified yet");
    store.verify_domain(&t.id, &open.id, "example.com", now(), &ev("v")).await.unwrap();
    let taken = Err(StoreError::Conflict { constraint: "org_domains_verified_key".into() });
    assert_eq!(store.verify_domain(&t.id, &closed.id, "example.com", now(), &ev("v")).await, taken);
    let found: Vec<_> =
        store.orgs_by_verified_domain(&t.id, "example.com").await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(found, vec![open.id.clone()]);
    assert!(store.list_domains(&t.id, &open.id).await.unwrap()[0].verified_at.is_some());
    store.delete_domain(&t.id, &open.id, "example.com", &ev("x")).await.unwrap();
    assert_eq!(store.delete_domain(&t.id, &open.id, "example.com", &ev("x")).await, Err(StoreError::NotFound));
    // The other organization may verify it now; its policy `off` keeps it out of joins.
    store.verify_domain(&t.id, &closed.id, "example.com", now(), &ev("v")).await.unwrap();
    assert!(store.orgs_by_verified_domain(&t.id, "example.com").await.unwrap().is_empty());
}
