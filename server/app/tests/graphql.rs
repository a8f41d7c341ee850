//! `/v1/graphql` side by side with REST, on SQLite and Postgres: the same data and
//! cursors, the same roles and scopes, the same error codes, and abusive documents
//! refused before they run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::{Value, json};
use support::{Backend, Reply, TestServer};

on_both_backends!(
    graphql_and_rest_return_the_same_data,
    graphql_enforces_the_same_roles_scopes_and_codes,
    abusive_queries_are_refused,
);

async fn gql(s: &TestServer, token: &str, query: &str, variables: Value) -> Reply {
    s.post("/v1/graphql", token, json!({"query": query, "variables": variables})).await
}

fn code(r: &Reply) -> String {
    r.body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned()
}

async fn graphql_and_rest_return_the_same_data(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("gql").await;
    let tid = t["id"].as_str().unwrap();
    for i in 0..3 {
        let r =
            s.post(&format!("/v1/tenants/{tid}/users"), &s.admin, json!({"email": format!("u{i}@example.com")})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let org =
        s.post(&format!("/v1/tenants/{tid}/organizations"), &s.admin, json!({"slug": "acme", "name": "Acme"})).await;
    let org_id = org.body["id"].as_str().unwrap();
    let rest_users = s.get(&format!("/v1/tenants/{tid}/users?limit=2"), &s.admin).await;
    let first_user = rest_users.body["data"][0]["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/v1/tenants/{tid}/organizations/{org_id}/members"),
            &s.admin,
            json!({"user_id": first_user, "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 201);

    let query = "query($id: ID!) { tenant(id: $id) { id slug name
        users(first: 2) { edges { cursor node { id email emailVerified status } } pageInfo { hasNextPage endCursor } }
        organizations { edges { node { id slug depth members { edges { node { userId role } } } } } } } }";
    let r = gql(&s, &s.admin, query, json!({"id": tid})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    let tenant = &r.body["data"]["tenant"];
    assert_eq!(tenant["slug"], t["slug"]);
    let edges = tenant["users"]["edges"].as_array().unwrap();
    let gql_ids: Vec<&Value> = edges.iter().map(|e| &e["node"]["id"]).collect();
    let rest_ids: Vec<&Value> = rest_users.body["data"].as_array().unwrap().iter().map(|u| &u["id"]).collect();
    assert_eq!(gql_ids, rest_ids);
    assert_eq!(edges[1]["node"]["email"], rest_users.body["data"][1]["email"]);
    // The same opaque cursors: GraphQL's endCursor continues a REST walk and back.
    assert_eq!(tenant["users"]["pageInfo"]["endCursor"], rest_users.body["next_cursor"]);
    assert_eq!(tenant["users"]["pageInfo"]["hasNextPage"], true);
    let cursor = rest_users.body["next_cursor"].as_str().unwrap();
    let rest_next = s.get(&format!("/v1/tenants/{tid}/users?limit=2&cursor={cursor}"), &s.admin).await;
    let q2 = "query($id: ID!, $after: String) { tenant(id: $id) { users(first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage } } } }";
    let r2 = gql(&s, &s.admin, q2, json!({"id": tid, "after": cursor})).await;
    let next = &r2.body["data"]["tenant"]["users"];
    assert_eq!(next["edges"][0]["node"]["id"], rest_next.body["data"][0]["id"]);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let org_node = &tenant["organizations"]["edges"][0]["node"];
    assert_eq!((org_node["id"].as_str(), org_node["depth"].clone()), (Some(org_id), json!(0)));
    assert_eq!(org_node["members"]["edges"][0]["node"], json!({"userId": first_user, "role": "admin"}));
    // The tenant list matches too.
    let rest_tenants = s.get("/v1/tenants?limit=100", &s.admin).await;
    let r = gql(&s, &s.admin, "{ tenants(first: 100) { edges { node { id } } } }", json!({})).await;
    let ids: Vec<&Value> =
        r.body["data"]["tenants"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["id"]).collect();
    let rest: Vec<&Value> = rest_tenants.body["data"].as_array().unwrap().iter().map(|t| &t["id"]).collect();
    assert_eq!(ids, rest);

    // Roles, signing keys, invitations and audit events agree with REST too.
    let r = s
        .post(
            &format!("/v1/tenants/{tid}/organizations/{org_id}/invitations"),
            &s.admin,
            json!({"email": "inv@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let q = "query($id: ID!) { tenant(id: $id) { roles { key builtIn } signingKeys { id status }
        organizations { edges { node { invitations { id email role } } } } } }";
    let r = gql(&s, &s.admin, q, json!({"id": tid})).await;
    let node = &r.body["data"]["tenant"];
    let rest_roles = s.get(&format!("/v1/tenants/{tid}/roles"), &s.admin).await;
    let keys: Vec<&Value> = node["roles"].as_array().unwrap().iter().map(|r| &r["key"]).collect();
    let rest_keys: Vec<&Value> = rest_roles.body["data"].as_array().unwrap().iter().map(|r| &r["key"]).collect();
    assert_eq!(keys, rest_keys);
    let rest_signing = s.get(&format!("/v1/tenants/{tid}/signing-keys"), &s.admin).await;
    let kids: Vec<&Value> = node["signingKeys"].as_array().unwrap().iter().map(|k| &k["id"]).collect();
    let rest_kids: Vec<&Value> = rest_signing.body["data"].as_array().unwrap().iter().map(|k| &k["id"]).collect();
    assert_eq!(kids, rest_kids, "{:?}", rest_signing.body);
    let invitation = &node["organizations"]["edges"][0]["node"]["invitations"][0];
    assert_eq!((invitation["email"].clone(), invitation["role"].clone()), (json!("inv@example.com"), json!("member")));
    let q = "query($id: ID!) { auditEvents(tenantId: $id, action: \"invitation.create\") { edges { node { id action actorType } } } }";
    let r = gql(&s, &s.admin, q, json!({"id": tid})).await;
    let rest_events = s.get(&format!("/v1/audit-events?tenant_id={tid}&action=invitation.create"), &s.admin).await;
    assert_eq!(r.body["data"]["auditEvents"]["edges"][0]["node"]["id"], rest_events.body["data"][0]["id"]);

    // A member's user comes through the batching loader, matching REST's user.
    let q = "query($id: ID!) { tenant(id: $id) { organizations { edges { node { members { edges { node { userId user { id email } } } } } } } } }";
    let r = gql(&s, &s.admin, q, json!({"id": tid})).await;
    let member = &r.body["data"]["tenant"]["organizations"]["edges"][0]["node"]["members"]["edges"][0]["node"];
    let rest_user = s.get(&format!("/v1/tenants/{tid}/users/{first_user}"), &s.admin).await;
    assert_eq!(member["user"]["email"], rest_user.body["email"], "{:?}", r.body);
    assert_eq!(member["user"]["id"], member["userId"]);

    // A user's sessions: the same over both.
    let login = s
        .post(
            &format!("/v1/tenants/{tid}/users"),
            &s.admin,
            json!({"email": "sess@example.com", "password": "violet kettle drums"}),
        )
        .await;
    let sess_user = login.body["id"].as_str().unwrap().to_owned();
    let r = s
        .auth(
            &support::AuthTenant { id: tid.to_owned(), slug: t["slug"].as_str().unwrap().to_owned() },
            "login",
            json!({"email": "sess@example.com", "password": "violet kettle drums"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rest_sessions = s.get(&format!("/v1/tenants/{tid}/users/{sess_user}/sessions"), &s.admin).await;
    assert_eq!(rest_sessions.body["data"].as_array().unwrap().len(), 1, "{:?}", rest_sessions.body);
    let q = "query($t: ID!, $u: ID!) { tenant(id: $t) { user(id: $u) { email sessions { id amr } } } }";
    let r = gql(&s, &s.admin, q, json!({"t": tid, "u": sess_user})).await;
    let sessions = &r.body["data"]["tenant"]["user"]["sessions"];
    assert_eq!(sessions[0]["id"], rest_sessions.body["data"][0]["id"], "{:?}", r.body);
    assert_eq!(sessions[0]["amr"], json!(["pwd"]));

    // Mutations go through the same services: visible over REST at once.
    let m =
        "mutation($t: ID!) { createOrganization(input: {tenantId: $t, slug: \"beta\", name: \"Beta\"}) { id slug } }";
    let r = gql(&s, &s.admin, m, json!({"t": tid})).await;
    let beta = r.body["data"]["createOrganization"]["id"].as_str().unwrap().to_owned();
    let rest = s.get(&format!("/v1/tenants/{tid}/organizations/{beta}"), &s.admin).await;
    assert_eq!(rest.body["slug"], "beta");
    let m = "mutation($t: ID!, $o: ID!, $u: ID!) { addMember(input: {tenantId: $t, organizationId: $o, userId: $u, role: \"viewer\"}) { role } }";
    let r = gql(&s, &s.admin, m, json!({"t": tid, "o": beta, "u": first_user})).await;
    assert_eq!(r.body["data"]["addMember"]["role"], "viewer", "{:?}", r.body);
    let m = "mutation($t: ID!) { createUser(input: {tenantId: $t, email: \"new@example.com\"}) { email status } }";
    let r = gql(&s, &s.admin, m, json!({"t": tid})).await;
    assert_eq!(r.body["data"]["createUser"], json!({"email": "new@example.com", "status": "active"}));
    let events = s.get(&format!("/v1/audit-events?tenant_id={tid}&action=organization.create"), &s.admin).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 2, "both creations audited alike");
}

async fn token(s: &TestServer, role: &str, scope: Option<Vec<&str>>) -> String {
    let r = s.post("/v1/admin-tokens", &s.admin, json!({"name": role, "role": role, "tenant_ids": scope})).await;
    r.body["secret"].as_str().unwrap().to_owned()
}

async fn graphql_enforces_the_same_roles_scopes_and_codes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t1 = s.tenant("gql").await;
    let t2 = s.tenant("gql").await;
    let (id1, id2) = (t1["id"].as_str().unwrap(), t2["id"].as_str().unwrap());
    let auditor = token(&s, "read_only_auditor", None).await;
    let m = "mutation($t: ID!) { createOrganization(input: {tenantId: $t, slug: \"nope\", name: \"x\"}) { id } }";
    let r = gql(&s, &auditor, m, json!({"t": id1})).await;
    assert_eq!(code(&r), "forbidden", "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["extensions"]["status"], 403);
    let scoped = token(&s, "owner", Some(vec![id1])).await;
    let r = gql(&s, &scoped, "query($id: ID!) { tenant(id: $id) { id } }", json!({"id": id2})).await;
    assert!(r.body["data"]["tenant"].is_null(), "{:?}", r.body);
    let r = gql(&s, &scoped, m, json!({"t": id2})).await;
    assert_eq!(code(&r), "not_found");
    let r = gql(&s, &scoped, "{ tenants(first: 10) { edges { node { id } } } }", json!({})).await;
    assert_eq!(r.body["data"]["tenants"]["edges"].as_array().unwrap().len(), 1);
    // Validation errors carry the fields, as in REST.
    let bad = "mutation($t: ID!) { createOrganization(input: {tenantId: $t, slug: \"A\", name: \"\"}) { id } }";
    let r = gql(&s, &s.admin, bad, json!({"t": id1})).await;
    assert_eq!(code(&r), "validation_failed");
    let fields: Vec<&str> = r.body["errors"][0]["extensions"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["slug", "name"]);
    let r = gql(&s, &s.admin, "query { tenant(id: \"usr_01jq3v6m8k2r7x0a9b4c5d6e7f\") { id } }", json!({})).await;
    assert_eq!(code(&r), "validation_failed");
    // Introspection: operators yes, tenant secret keys no; no credential at all is a 401.
    let intro = "{ __schema { queryType { name } } }";
    let r = gql(&s, &s.admin, intro, json!({})).await;
    assert_eq!(r.body["data"]["__schema"]["queryType"]["name"], "QueryRoot");
    let (_, key) = s.secret_key(id1).await;
    let r = gql(&s, &key, intro, json!({})).await;
    assert!(r.body["data"]["__schema"].is_null(), "no schema for tenant keys: {:?}", r.body);
    let r = gql(&s, &key, "query($id: ID!) { tenant(id: $id) { slug } }", json!({"id": id1})).await;
    assert_eq!(r.body["data"]["tenant"]["slug"], t1["slug"]);
    let r =
        s.send(s.client.post(s.url("/v1/graphql")).json(&json!({"query": "{ tenants { edges { cursor } } }"}))).await;
    r.assert_problem(401, "unauthorized");
    let r = s.send(s.client.post(s.url("/v1/graphql")).bearer_auth(&s.admin).body("not json")).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
}

async fn abusive_queries_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant("gql").await;
    let tid = t["id"].as_str().unwrap();
    // The deepest real query passes; anything deeper is refused.
    let deepest = "query($id: ID!) { tenant(id: $id) { organizations { edges { node { members { edges { node { user { email } } } } } } } } }";
    let r = gql(&s, &s.admin, deepest, json!({"id": tid})).await;
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let r = gql(&s, &s.admin, deep, json!({})).await;
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("nested too deep"), "{:?}", r.body);
    assert!(r.body["data"].is_null());
    // Too many aliases.
    let aliases: String = (0..31).map(|i| format!("a{i}: tenant(id: \"{tid}\") {{ id }} ")).collect();
    let r = gql(&s, &s.admin, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(code(&r), "too_many_aliases", "{:?}", r.body);
    // Too complex: connection sizes multiply.
    let wide = "{ tenants(first: 100) { edges { node { users(first: 100) { edges { node { id email name } } } } } } }";
    let r = gql(&s, &s.admin, wide, json!({})).await;
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("complex"), "{:?}", r.body);
    // Too large: a 1 MB document is refused by the body limit (413) before anything is
    // parsed; the server may close the connection before the client finishes sending.
    // Its own client, as in the management API's test: the connection the server closes
    // must not go back to the pool the requests below share (the next one could pick it
    // up just as it closes, which failed this test once under load).
    let huge = format!("{{ tenants {{ edges {{ cursor }} }} }} #{}", "x".repeat(1_000_000));
    let sent = reqwest::Client::new()
        .post(s.url("/v1/graphql"))
        .bearer_auth(&s.admin)
        .json(&json!({"query": huge}))
        .send()
        .await;
    match sent {
        Ok(reply) => assert_eq!(reply.status().as_u16(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let big = format!("{{ tenants {{ edges {{ cursor }} }} }} #{}", "x".repeat(40 * 1024));
    let r = gql(&s, &s.admin, &big, json!({})).await;
    assert_eq!(code(&r), "query_too_large", "{:?}", r.body);
    // Garbage is a GraphQL error, not a crash.
    let r = gql(&s, &s.admin, "{ tenants(", json!({})).await;
    assert!(r.body["errors"].is_array(), "{:?}", r.body);
}
