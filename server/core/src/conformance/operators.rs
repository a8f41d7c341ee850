//! Operator conformance: unique addresses, TOTP steps accepted once, sessions that end
//! with sign-out, disabling and deletion.

use super::store::{event, now};
use crate::access::OperatorRole;
use crate::ids::{OperatorId, OperatorSessionId};
use crate::operator::{Operator, OperatorSession};
use crate::page::PageRequest;
use crate::secret::{SecretHash, generate_secret};
use crate::store::{Store, StoreError};
use crate::user::Email;
use time::Duration;

fn operator(email: &str) -> Operator {
    Operator {
        id: OperatorId::generate(),
        email: Email::parse(email).unwrap(),
        name: Some("Öpera ✓".into()),
        role: OperatorRole::SupportAdmin,
        tenant_ids: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        totp_sealed: Some(vec![1, 2, 3]),
        totp_last_step: Some(100),
        disabled: false,
        created_at: now(),
        last_login_at: None,
    }
}

/// Operators round-trip, are unique by address ignoring case, accept each TOTP step
/// once (also in parallel), and their sessions end with sign-out, disabling and deletion.
pub async fn operators_and_their_sessions(store: &dyn Store) {
    let ev = |action: &str| event(action, None);
    let o = operator(&format!("op-{}@example.com", OperatorId::generate().as_str()));
    store.create_operator(&o, &ev("operator.create")).await.unwrap();
    assert_eq!(store.get_operator(&o.id).await.unwrap(), o);
    assert_eq!(store.find_operator_by_email(o.email.normalized()).await.unwrap(), Some(o.clone()));
    let twin = Operator { id: OperatorId::generate(), ..operator(&o.email.as_str().to_uppercase()) };
    let taken = Err(StoreError::Conflict { constraint: "operators_email_key".into() });
    assert_eq!(store.create_operator(&twin, &ev("operator.create")).await, taken);
    assert!(store.list_operators(&PageRequest::first(100)).await.unwrap().data.iter().any(|x| x.id == o.id));
    assert!(!store.use_operator_totp_step(&o.id, 100).await.unwrap());
    let race = (0..6).map(|_| store.use_operator_totp_step(&o.id, 101));
    let won = futures::future::join_all(race).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
    let session = |token: &crate::secret::GeneratedSecret| OperatorSession {
        id: OperatorSessionId::generate(),
        operator_id: o.id.clone(),
        token_hash: token.hash.clone(),
        created_at: now(),
        expires_at: now() + Duration::hours(12),
        revoked_at: None,
    };
    let (t1, t2) = (generate_secret("gh_ops_"), generate_secret("gh_ops_"));
    let (s1, s2) = (session(&t1), session(&t2));
    store.create_operator_session(&s1, &ev("operator.login")).await.unwrap();
    store.create_operator_session(&s2, &ev("operator.login")).await.unwrap();
    let (found, by) = store.find_operator_session(&t1.hash, now()).await.unwrap().unwrap();
    assert_eq!((found.id.clone(), by.id.clone()), (s1.id.clone(), o.id.clone()));
    assert!(by.last_login_at.is_some());
    assert_eq!(store.find_operator_session(&t1.hash, now() + Duration::hours(13)).await.unwrap(), None);
    assert_eq!(store.find_operator_session(&SecretHash::of("gh_ops_nope"), now()).await.unwrap(), None);
    store.revoke_operator_session(&s1.id, now(), &ev("operator.logout")).await.unwrap();
    assert_eq!(store.find_operator_session(&t1.hash, now()).await.unwrap(), None);
    assert!(store.find_operator_session(&t2.hash, now()).await.unwrap().is_some());
    let disabled = Operator { disabled: true, ..store.get_operator(&o.id).await.unwrap() };
    store.update_operator(&disabled, now(), &ev("operator.update")).await.unwrap();
    assert_eq!(store.find_operator_session(&t2.hash, now()).await.unwrap(), None);
    let s3 = session(&generate_secret("gh_ops_"));
    assert_eq!(store.create_operator_session(&s3, &ev("operator.login")).await, Err(StoreError::NotFound));
    store.delete_operator(&o.id, &ev("operator.delete")).await.unwrap();
    assert_eq!(store.get_operator(&o.id).await, Err(StoreError::NotFound));
    assert_eq!(store.delete_operator(&o.id, &ev("operator.delete")).await, Err(StoreError::NotFound));
}
