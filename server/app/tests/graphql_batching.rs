//! No N+1 in GraphQL: the SQL statements a request runs are counted (sqlx reports each
//! one as a `sqlx::query` tracing event, caught here by a counting layer) and must not
//! grow with the number of members listed with their users.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Backend, TestServer};
use tracing_subscriber::layer::SubscriberExt;

on_both_backends!(listing_members_with_users_costs_the_same_for_3_or_15,);

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);
/// The counter is process-wide and `cargo test` runs this binary's tests on threads of
/// one process: they take turns, so one server's statements never land in another's count.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct CountStatements;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn count_statements() {
    // Each test runs in its own process under nextest; with `cargo test` the first one wins.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountStatements));
}

async fn listing_members_with_users_costs_the_same_for_3_or_15(backend: Backend) {
    let _turn = SERIAL.lock().await;
    count_statements();
    // No background polling during the measurement.
    let s = TestServer::start_with(backend, &[("GATEHOUSE_DELIVERY_POLL_MS", "60000")]).await;
    let t = s.tenant("n1").await;
    let tid = t["id"].as_str().unwrap();
    let org =
        s.post(&format!("/v1/tenants/{tid}/organizations"), &s.admin, json!({"slug": "acme", "name": "Acme"})).await;
    let org_id = org.body["id"].as_str().unwrap().to_owned();
    let add = |n: usize| {
        let s = &s;
        let org_id = org_id.clone();
        async move {
            let u = s
                .post(&format!("/v1/tenants/{tid}/users"), &s.admin, json!({"email": format!("m{n}@example.com")}))
                .await;
            let body = json!({"user_id": u.body["id"], "role": "member"});
            assert_eq!(
                s.post(&format!("/v1/tenants/{tid}/organizations/{org_id}/members"), &s.admin, body).await.status,
                201
            );
        }
    };
    let query = json!({"query": "query($id: ID!) { tenant(id: $id) { organizations { edges { node {
        members(first: 50) { edges { node { role user { id email } } } } } } } } }", "variables": {"id": tid}});
    let measure = || async {
        // Let audit writes of earlier calls settle first.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let before = STATEMENTS.load(Ordering::SeqCst);
        let r = s.post("/v1/graphql", &s.admin, query.clone()).await;
        assert!(r.body.get("errors").is_none(), "{:?}", r.body);
        let members =
            r.body["data"]["tenant"]["organizations"]["edges"][0]["node"]["members"]["edges"].as_array().unwrap().len();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        (members, STATEMENTS.load(Ordering::SeqCst) - before)
    };
    for n in 0..3 {
        add(n).await;
    }
    let (few, few_statements) = measure().await;
    for n in 3..15 {
        add(n).await;
    }
    let (many, many_statements) = measure().await;
    assert_eq!((few, many), (3, 15));
    assert!(few_statements > 0, "statements are counted");
    // Audit writes are batched asynchronously, so a statement or two may land in either
    // window; one statement per member would add at least 12.
    assert!(
        many_statements <= few_statements + 3,
        "the statement count must not grow with the members listed: {few_statements} for 3, {many_statements} for 15"
    );
}
