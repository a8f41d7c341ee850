//! The operator permission matrix over REST and GraphQL alike, on SQLite and Postgres: every operator role
//! against every class of management action (read, write, secrets, keys, audit,
//! operators), and tenant scoping (a scoped token or a tenant key never reaches another
//! tenant: 404).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(every_role_meets_every_class_of_action, scoped_credentials_never_reach_other_tenants,);

const CLASSES: [&str; 6] = ["read", "write", "secrets", "keys", "audit", "operators"];

/// One representative call per class; its status.
async fn probe(s: &TestServer, token: &str, tenant_id: &str, class: &str, n: usize) -> u16 {
    match class {
        "read" => s.get(&format!("/v1/tenants/{tenant_id}/users"), token).await.status,
        "write" => {
            let body = json!({"slug": format!("org-{n}"), "name": "Probe"});
            s.post(&format!("/v1/tenants/{tenant_id}/organizations"), token, body).await.status
        }
        "secrets" => s.post(&format!("/v1/tenants/{tenant_id}/secret-keys"), token, json!({})).await.status,
        "keys" => s.post(&format!("/v1/tenants/{tenant_id}/signing-keys/rotate"), token, json!({})).await.status,
        "audit" => s.get(&format!("/v1/audit-events?tenant_id={tenant_id}"), token).await.status,
        "operators" => s.post("/v1/admin-tokens", token, json!({"name": "probe"})).await.status,
        other => panic!("no class {other}"),
    }
}

/// The same class through GraphQL: `Ok` when allowed, else the error's code.
async fn probe_graphql(s: &TestServer, token: &str, tenant_id: &str, class: &str, n: usize) -> Result<(), String> {
    let (query, vars) = match class {
        "read" => ("query($t: ID!) { tenant(id: $t) { users { edges { node { id } } } } }", json!({"t": tenant_id})),
        "write" => (
            "mutation($t: ID!, $s: String!) { createOrganization(input: {tenantId: $t, slug: $s, name: \"P\"}) { id } }",
            json!({"t": tenant_id, "s": format!("gql-{n}")}),
        ),
        "secrets" => ("mutation($t: ID!) { createSecretKey(tenantId: $t) { id } }", json!({"t": tenant_id})),
        "keys" => ("mutation($t: ID!) { rotateSigningKeys(tenantId: $t) }", json!({"t": tenant_id})),
        "audit" => ("query($t: ID!) { auditEvents(tenantId: $t) { edges { node { id } } } }", json!({"t": tenant_id})),
        "operators" => ("{ operators { edges { node { id } } } }", json!({})),
        other => panic!("no class {other}"),
    };
    let r = s.post("/v1/graphql", token, json!({"query": query, "variables": vars})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    match r.body["errors"][0]["extensions"]["code"].as_str() {
        None => Ok(()),
        Some(code) => Err(code.to_owned()),
    }
}

async fn token(s: &TestServer, role: &str, tenant_ids: Option<Vec<&str>>) -> String {
    let r = s.post("/v1/admin-tokens", &s.admin, json!({"name": role, "role": role, "tenant_ids": tenant_ids})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["role"], role);
    r.body["secret"].as_str().unwrap().to_owned()
}

async fn every_role_meets_every_class_of_action(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("matrix").await;
    let tenant_id = t["id"].as_str().unwrap();
    let expected: [(&str, [bool; 6]); 5] = [
        ("owner", [true, true, true, true, true, true]),
        ("security_admin", [true, true, true, true, true, false]),
        ("support_admin", [true, true, false, false, false, false]),
        ("billing_admin", [true, false, false, false, false, false]),
        ("read_only_auditor", [true, false, false, false, true, false]),
    ];
    let mut n = 0;
    for (role, allowed) in expected {
        let secret = token(&s, role, None).await;
        for (class, allowed) in CLASSES.iter().zip(allowed) {
            n += 1;
            let status = probe(&s, &secret, tenant_id, class, n).await;
            let graphql = probe_graphql(&s, &secret, tenant_id, class, n).await;
            if allowed {
                assert!((200..300).contains(&status), "{role} {class}: {status}");
                assert_eq!(graphql, Ok(()), "{role} {class} over GraphQL");
            } else {
                assert_eq!(status, 403, "{role} {class}");
                assert_eq!(graphql, Err("forbidden".into()), "{role} {class} over GraphQL");
            }
        }
    }
    // A denied call changes nothing and says why.
    let auditor = token(&s, "read_only_auditor", None).await;
    let r =
        s.post(&format!("/v1/tenants/{tenant_id}/organizations"), &auditor, json!({"slug": "nope", "name": "x"})).await;
    r.assert_problem(403, "forbidden");
    let orgs = s.get(&format!("/v1/tenants/{tenant_id}/organizations"), &s.admin).await;
    assert!(orgs.body["data"].as_array().unwrap().iter().all(|o| o["slug"] != "nope"));
    // Unknown roles are refused.
    let r = s.post("/v1/admin-tokens", &s.admin, json!({"role": "janitor"})).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
}

async fn scoped_credentials_never_reach_other_tenants(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t1 = s.tenant("scope").await;
    let t2 = s.tenant("scope").await;
    let (id1, id2) = (t1["id"].as_str().unwrap(), t2["id"].as_str().unwrap());
    let scoped_owner = token(&s, "owner", Some(vec![id1])).await;
    let scoped_support = token(&s, "support_admin", Some(vec![id1])).await;
    let (_, key1) = s.secret_key(id1).await;
    // Another tenant is not found, whatever the class and the role.
    for credential in [&scoped_owner, &scoped_support, &key1] {
        for class in ["read", "write", "secrets", "keys", "audit"] {
            assert_eq!(probe(&s, credential, id2, class, 0).await, 404, "{class}");
        }
        // Operator actions need an unrestricted owner.
        assert_eq!(probe(&s, credential, id1, "operators", 0).await, 403);
    }
    // Without a tenant filter, a scoped credential's audit listing holds its tenant only.
    let events = s.get("/v1/audit-events?limit=100", &scoped_owner).await;
    assert_eq!(events.status, 200, "{:?}", events.body);
    assert!(events.body["data"].as_array().unwrap().iter().all(|e| e["tenant_id"] == Value::String(id1.into())));
    // Within their tenant the scoped credentials work as their role allows.
    assert_eq!(probe(&s, &scoped_owner, id1, "secrets", 0).await, 201);
    assert_eq!(probe(&s, &scoped_support, id1, "secrets", 0).await, 403);
    assert_eq!(probe(&s, &scoped_support, id1, "write", 1).await, 201);
    assert_eq!(probe(&s, &key1, id1, "keys", 0).await, 200);
}
