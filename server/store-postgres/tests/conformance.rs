//! The storage conformance suite on Postgres, plus Postgres-only guarantees
//! (row-level security, the append-only audit log).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

use gatehouse_core::store::Store;
use gatehouse_store_postgres::testing::TestSchema;
use std::sync::Arc;

async fn make() -> (TestSchema, Arc<dyn Store>) {
    let schema = TestSchema::create().await.unwrap();
    let store = schema.store().await.unwrap();
    (schema, Arc::new(store))
}

gatehouse_core::store_conformance_tests!(make);

mod postgres_only {
    use gatehouse_core::audit::{ActorType, AuditEvent};
    use gatehouse_core::credentials::SecretKeyRecord;
    use gatehouse_core::ids::{EventId, SecretKeyId, TenantId};
    use gatehouse_core::secret::generate_secret;
    use gatehouse_core::store::{SecretKeyStore, TenantStore};
    use gatehouse_core::tenant::{Tenant, TenantSettings, TenantSlug};
    use gatehouse_store_postgres::PgStore;
    use gatehouse_store_postgres::testing::TestSchema;
    use time::OffsetDateTime;

    fn now() -> OffsetDateTime {
        gatehouse_core::clock::truncate_to_micros(OffsetDateTime::now_utc())
    }

    fn event(tenant_id: &TenantId) -> AuditEvent {
        AuditEvent {
            id: EventId::generate(),
            tenant_id: Some(tenant_id.clone()),
            actor_type: ActorType::System,
            actor_id: None,
            action: "test".into(),
            target_type: None,
            target_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            data: serde_json::json!({}),
            created_at: now(),
        }
    }

    /// A live password session of `user_id`, created now, for a day.
    fn live_session(tenant_id: &TenantId, user_id: &gatehouse_core::ids::UserId) -> gatehouse_core::session::Session {
        gatehouse_core::session::Session {
            id: gatehouse_core::ids::SessionId::generate(),
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
            created_at: now(),
            last_seen_at: now(),
            expires_at: now() + time::Duration::days(1),
            auth_time: now(),
            amr: vec!["pwd".into()],
            ip: None,
            user_agent: None,
            revoked_at: None,
            org_id: None,
        }
    }

    async fn tenant_with_key(store: &PgStore, slug: &str) -> TenantId {
        let t = Tenant {
            id: TenantId::generate(),
            slug: TenantSlug::parse(slug).unwrap(),
            name: slug.into(),
            settings: TenantSettings::default(),
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        store.create_tenant(&t, &event(&t.id)).await.unwrap();
        let generated = generate_secret("sk_");
        let key = SecretKeyRecord {
            id: SecretKeyId::generate(),
            tenant_id: t.id.clone(),
            name: String::new(),
            display_prefix: generated.display_prefix,
            hash: generated.hash,
            created_at: now(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        store.create_secret_key(&t.id, &key, &event(&t.id)).await.unwrap();
        t.id
    }

    /// Rows of `table` an `EXPLAIN (ANALYZE, FORMAT JSON)` plan node and its children
    /// read: those they returned and those they filtered out.
    fn rows_read(node: &serde_json::Value, table: &str) -> u64 {
        let loops = node["Actual Loops"].as_u64().unwrap_or(1);
        let own = if node["Relation Name"] == table {
            (node["Actual Rows"].as_u64().unwrap_or(0) + node["Rows Removed by Filter"].as_u64().unwrap_or(0)) * loops
        } else {
            0
        };
        own + node["Plans"].as_array().into_iter().flatten().map(|child| rows_read(child, table)).sum::<u64>()
    }

    /// The statements prepared on `tx`'s connection whose text is `LIKE` `pattern` (asked
    /// unnamed, so the question is not among them).
    async fn kept_statements(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>, pattern: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1")
            .bind(pattern)
            .persistent(false)
            .fetch_all(&mut **tx)
            .await
            .unwrap()
    }

    /// Gathers the planner's statistics of `tables` as the schema's owner (the store's
    /// role is not the owner, and Postgres skips, with a warning only, what it may not
    /// analyze).
    async fn analyze(schema: &TestSchema, tables: &str) {
        use sqlx::{ConnectOptions, Connection};
        let mut owner = schema.url.parse::<sqlx::postgres::PgConnectOptions>().unwrap().connect().await.unwrap();
        sqlx::query(&format!("ANALYZE {tables}")).execute(&mut owner).await.unwrap();
        owner.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_query_that_forgets_its_tenant_filter_sees_only_its_own_tenant() {
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "rls-a").await;
        let b = tenant_with_key(&store, "rls-b").await;

        let mut tx = store.tenant_tx(&a).await.unwrap();
        let tenants: Vec<String> =
            sqlx::query_scalar("SELECT tenant_id FROM secret_keys").fetch_all(&mut *tx).await.unwrap();
        assert_eq!(tenants, vec![a.to_string()]);
        let events: Vec<Option<String>> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_events").fetch_all(&mut *tx).await.unwrap();
        assert_eq!(events, vec![Some(a.to_string())]);
        // Writing a row for another tenant is refused too.
        let smuggled = sqlx::query("UPDATE secret_keys SET name = 'pwned' WHERE tenant_id = $1")
            .bind(b.as_str())
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(smuggled.rows_affected(), 0);
        tx.rollback().await.unwrap();

        // Outside any tenant or system scope, nothing at all is visible.
        let unscoped: i64 =
            sqlx::query_scalar("SELECT count(*) FROM secret_keys").fetch_one(store.pool()).await.unwrap();
        assert_eq!(unscoped, 0);
    }

    #[tokio::test]
    async fn the_audit_log_cannot_be_changed_or_deleted() {
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "append-only").await;
        let mut tx = store.tenant_tx(&a).await.unwrap();
        let update = sqlx::query("UPDATE audit_events SET action = 'forged'").execute(&mut *tx).await;
        assert!(update.is_err());
        tx.rollback().await.unwrap();
        let mut tx = store.system_tx().await.unwrap();
        let delete = sqlx::query("DELETE FROM audit_events").execute(&mut *tx).await;
        assert!(delete.is_err());
    }

    /// The sign-in functions (the read and the record) name their tenant for row-level
    /// security themselves; the name must end with the statement, or the next user of
    /// the pooled connection would see that tenant's rows without asking.
    // Two workers: a connection that a failed call gives back is checked (and its
    // transaction ended) by a spawned task, which must run before the schema is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sign_in_functions_scope_only_their_own_statement() {
        use gatehouse_core::ids::UserId;
        use gatehouse_core::session::RefreshToken;
        use gatehouse_core::store::{SessionStore, StoreError, UserStore};
        use gatehouse_core::user::{Email, User};
        let schema = TestSchema::create().await.unwrap();
        // One connection: whatever the call leaves behind, the next query meets.
        let store = PgStore::connect(&schema.url, 1).await.unwrap();
        let a = tenant_with_key(&store, "fn-scope").await;
        let user = User::signing_up(&a, Email::parse("scoped@example.com").unwrap(), None, now());
        store.create_user(&a, &user, &event(&a)).await.unwrap();
        let session = |user_id: &UserId| live_session(&a, user_id);
        let token = || RefreshToken {
            hash: generate_secret("rt_").hash,
            created_at: now(),
            expires_at: now() + time::Duration::days(1),
        };
        let unscoped = || async {
            let seen: (i64, i64, Option<String>) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM users),
                        current_setting('gatehouse.tenant_id', true)",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!((seen.0, seen.1), (0, 0), "the tenant's rows are invisible after the call");
            assert!(seen.2.is_none_or(|t| t.is_empty()), "the tenant name ended with the call");
        };
        let (found, _) = store.find_user_for_sign_in(&a, user.email.normalized()).await.unwrap().unwrap();
        assert_eq!(found.id, user.id);
        unscoped().await;
        store.record_login(&a, &user, &session(&user.id), &token(), &event(&a)).await.unwrap();
        unscoped().await;
        // A user of the named tenant who does not exist: nothing is written.
        let ghost = User::signing_up(&a, Email::parse("ghost@example.com").unwrap(), None, now());
        let orphan = session(&ghost.id);
        assert_eq!(store.record_login(&a, &ghost, &orphan, &token(), &event(&a)).await, Err(StoreError::NotFound));
        assert_eq!(store.get_session(&a, &orphan.id).await, Err(StoreError::NotFound));
    }

    /// The refresh rotation touches only its own rows: it finds the token by its key,
    /// walks to its session and user by theirs, and changes the presented token and its
    /// predecessor by key. Every statement of `gatehouse_rotate_refresh_token` runs inside
    /// the one call, so the test counts the buffers a whole rotation touches (they include
    /// the function's statements): at most 120, whether the statistics know the tenant or
    /// not, with custom or generic plans, for a tenant of 5,000 users and sessions and a
    /// session whose chain holds 150 spent tokens. A plan walking the tenant's users
    /// touches thousands; one walking the chain, hundreds. (Written as a plain three-way
    /// join, the read started from the tenant's users on fresh tables; the write could
    /// walk the session's chain.)
    #[tokio::test]
    async fn the_rotation_never_walks_the_tenants_users_or_the_sessions_chain() {
        use gatehouse_core::audit::RequestContext;
        use gatehouse_core::session::{RefreshOutcome, RefreshToken};
        use gatehouse_core::store::{RotationEvent, SessionStore, UserStore};
        use gatehouse_core::user::{Email, User};
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "rotation-plan").await;
        // Three users with a session, and enough other users of the tenant that a plan
        // walking them costs more than a few pages.
        let mut presented = Vec::new();
        for n in 0..3 {
            let user = User::signing_up(&a, Email::parse(&format!("u{n}@example.com")).unwrap(), None, now());
            store.create_user(&a, &user, &event(&a)).await.unwrap();
            let session = live_session(&a, &user.id);
            let token = generate_secret("rt_");
            let refresh = RefreshToken {
                hash: token.hash.clone(),
                created_at: now(),
                expires_at: now() + time::Duration::days(1),
            };
            store.create_session(&a, &session, &refresh, &event(&a)).await.unwrap();
            presented.push((user.id, token.hash));
        }
        let mut tx = store.tenant_tx(&a).await.unwrap();
        sqlx::query(
            "INSERT INTO users SELECT (jsonb_populate_record(NULL::users, to_jsonb(u) || jsonb_build_object(
                 'id', u.id || '_' || g, 'email', g || u.email, 'email_normalized', g || u.email_normalized))).*
             FROM users u, generate_series(1, 5000) g WHERE u.id = $1",
        )
        .bind(presented[0].0.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        // And as many other sessions, each with its token: with three of each, reading
        // the whole table is the planner's best choice once it has statistics.
        sqlx::query(
            "INSERT INTO sessions SELECT (jsonb_populate_record(NULL::sessions, to_jsonb(s) || jsonb_build_object(
                 'id', s.id || '_' || g))).*
             FROM sessions s, generate_series(1, 5000) g WHERE s.user_id = $1",
        )
        .bind(presented[0].0.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens SELECT (jsonb_populate_record(NULL::refresh_tokens, to_jsonb(r)
                 || jsonb_build_object('token_hash', r.token_hash || '_' || g, 'session_id', r.session_id || '_' || g))).*
             FROM refresh_tokens r, generate_series(1, 5000) g WHERE r.token_hash = $1",
        )
        .bind(presented[0].1.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let rotated = || RotationEvent::new(now(), &RequestContext::default(), &a, false);
        // The second session's chain: 150 rotations, each leaving a spent token behind.
        let mut current = presented[1].1.clone();
        for _ in 0..150 {
            let next = generate_secret("rt_");
            let successor = RefreshToken {
                hash: next.hash.clone(),
                created_at: now(),
                expires_at: now() + time::Duration::days(1),
            };
            let outcome = store
                .rotate_refresh_token(
                    &a,
                    &current,
                    &successor,
                    b"sealed",
                    now(),
                    time::Duration::seconds(2),
                    &rotated(),
                )
                .await
                .unwrap();
            assert!(matches!(outcome, RefreshOutcome::Rotated { .. }));
            current = next.hash;
        }
        // One rotation, run under EXPLAIN in `tx`: its buffers, or the error.
        let rotation = |presented: &str, n: usize| {
            format!(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM gatehouse_rotate_refresh_token(
                     '{a}', '{presented}', now(), now() - interval '2 seconds', 'x', 'successor-{n}', now(),
                     now() + interval '1 day', 'evt_plan{n}', '{a}', 'refresh_token.rotated', NULL, NULL, NULL,
                     '{{}}', now())"
            )
        };
        // Buffers are collected and judged after each transaction ends: a failed assertion
        // inside one would leave it open, and the schema's drop would wait for it forever.
        let mut touched = Vec::new();
        let mut n = 0;
        for analyzed in [false, true] {
            if analyzed {
                analyze(&schema, "refresh_tokens, sessions, users").await;
            }
            let mut tx = store.tenant_tx(&a).await.unwrap();
            // The first rotations on a connection plan the function's statements and read
            // the catalogs; the third session's token takes them, in both modes.
            let mut warm = presented[2].1.as_str().to_owned();
            let mut chain = current.as_str().to_owned();
            for measured in [false, true] {
                for mode in ["force_custom_plan", "force_generic_plan"] {
                    sqlx::query(&format!("SET LOCAL plan_cache_mode = {mode}")).execute(&mut *tx).await.unwrap();
                    let token = if measured { &mut chain } else { &mut warm };
                    let plan =
                        sqlx::query_scalar::<_, serde_json::Value>(&rotation(token, n)).fetch_one(&mut *tx).await;
                    *token = format!("successor-{n}");
                    n += 1;
                    if measured {
                        touched.push((analyzed, mode, plan));
                    }
                }
            }
            tx.rollback().await.unwrap();
        }
        for (analyzed, mode, plan) in touched {
            let plan = plan.unwrap();
            let node = &plan[0]["Plan"];
            let buffers = node["Shared Hit Blocks"].as_u64().unwrap() + node["Shared Read Blocks"].as_u64().unwrap();
            assert!(buffers <= 120, "analyzed: {analyzed}, {mode}: {buffers} buffers: {plan}");
        }
    }

    /// A page of a tenant's audit log, or of one actor's, reads about a page of events
    /// whatever filters it combines: here a tenant of three events listed beside ones of
    /// 20,000 and 5,000 events, whose events all come first in `id` order. (One prepared statement testing
    /// every filter for NULL walked the whole log once Postgres cached a generic plan.)
    /// An operator's list of one action across every tenant is left to the planner: on
    /// a log this small it sorts the action's events, on a large one it walks the action's
    /// index.
    #[tokio::test]
    async fn a_page_of_the_audit_log_reads_about_a_page_of_events() {
        use gatehouse_core::audit::AuditQuery;
        use gatehouse_core::page::PageRequest;
        use gatehouse_core::store::AuditStore;
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let small = tenant_with_key(&store, "audit-small").await;
        let large = tenant_with_key(&store, "audit-large").await;
        let failing = tenant_with_key(&store, "audit-failing").await;
        let mut tx = store.system_tx().await.unwrap();
        // In `id` order: 5,000 failed sign-ins of one tenant, then 20,000 events of
        // another (one in a hundred a failed sign-in), then the small tenant's three.
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, data, created_at)
             SELECT 'evt_0' || lpad(g::text, 25, '0'), $3, 'user', 'usr_failing', 'login.failure', '{}'::jsonb, now()
             FROM generate_series(1, 5000) g
             UNION ALL
             SELECT 'evt_0' || lpad(g::text, 25, '0'), $1, 'user', 'usr_large' || (g % 100),
                    CASE WHEN g % 100 = 0 THEN 'login.failure' ELSE 'login.success' END, '{}'::jsonb, now()
             FROM generate_series(5001, 25000) g
             UNION ALL
             SELECT 'evt_7' || lpad(n::text, 25, '0'), $2, 'user', 'usr_small', a, '{}'::jsonb, now()
             FROM unnest(ARRAY['login.failure', 'login.success', 'user.create']) WITH ORDINALITY AS e (a, n)",
        )
        .bind(large.as_str())
        .bind(small.as_str())
        .bind(failing.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        analyze(&schema, "audit_events").await;
        let page = PageRequest { limit: 10, after: None };
        let after = PageRequest { limit: 10, after: Some("evt_0".into()) };
        let by =
            |tenant: Option<&TenantId>, scope: Option<Vec<TenantId>>, action: Option<&str>, actor: Option<&str>| {
                AuditQuery {
                    tenant_id: tenant.cloned(),
                    tenant_scope: scope,
                    action: action.map(str::to_owned),
                    actor_id: actor.map(str::to_owned),
                }
            };
        let (s, l) = (small.as_str(), large.as_str());
        // Each list, and the arguments of its statement in order.
        let lists = [
            (by(Some(&small), None, None, None), &page, format!("'{s}', 11")),
            (by(Some(&small), None, Some("login.failure"), None), &page, format!("'{s}', 'login.failure', 11")),
            (by(Some(&large), None, Some("login.failure"), None), &page, format!("'{l}', 'login.failure', 11")),
            (by(Some(&small), None, None, None), &after, format!("'evt_0', '{s}', 11")),
            (
                by(None, Some(vec![small.clone(), large.clone()]), Some("user.create"), None),
                &page,
                format!("ARRAY['{s}', '{l}'], 'user.create', 11, 11"),
            ),
            (by(Some(&small), Some(vec![small.clone()]), None, None), &page, format!("ARRAY['{s}'], '{s}', 11, 11")),
            (by(None, None, None, Some("usr_small")), &page, "'usr_small', 11".to_owned()),
        ];
        // The store sends the list unnamed, so Postgres plans it for its arguments (a
        // custom plan) every time: the plan explained here.
        let mut plans = Vec::new();
        let mut tx = store.system_tx().await.unwrap();
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await.unwrap();
        for (n, (query, page, arguments)) in lists.iter().enumerate() {
            let sql = gatehouse_store_postgres::testing::audit_list_sql(query, page);
            sqlx::query(&format!("PREPARE audit_list_{n} AS {sql}")).execute(&mut *tx).await.unwrap();
            let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE audit_list_{n}({arguments})");
            let plan = sqlx::query_scalar::<_, serde_json::Value>(&explain).fetch_one(&mut *tx).await;
            plans.push((query.clone(), plan));
        }
        tx.rollback().await.unwrap();
        // At most one page (and its look-ahead row) from each tenant in scope.
        let wide: Vec<String> = plans
            .into_iter()
            .map(|(query, plan)| (query, rows_read(&plan.unwrap()[0]["Plan"], "audit_events")))
            .filter(|(_, read)| *read > 22)
            .map(|(query, read)| format!("{query:?} read {read} events"))
            .collect();
        assert!(wide.is_empty(), "{wide:#?}");

        // And the store keeps no plan of the list on any connection, for any tenant: a
        // cached plan would be chosen for the average tenant (here, the large one).
        let lister = PgStore::connect(&schema.url, 2).await.unwrap();
        for (query, page, _) in &lists {
            lister.list_audit_events(query, page).await.unwrap();
        }
        let (mut one, mut other) = (lister.system_tx().await.unwrap(), lister.system_tx().await.unwrap());
        for tx in [&mut one, &mut other] {
            let kept = kept_statements(tx, "%audit_events%").await;
            assert!(kept.is_empty(), "{kept:?}");
        }
    }

    /// A page of a tenant's users after a cursor reads about a page, however deep the
    /// cursor: the walk starts there (a cursor written `($n IS NULL OR id > $n)` in a
    /// prepared statement was a filter, and page k re-read the pages before it). Here the
    /// last page of 5,000 users, with and without a status filter, and a search by an
    /// email prefix one user has (it read all 5,000 while the key sorted by language).
    #[tokio::test]
    async fn a_page_of_users_starts_at_its_cursor() {
        use gatehouse_core::page::PageRequest;
        use gatehouse_core::store::UserStore;
        use gatehouse_core::user::{Email, User, UserFilter, UserStatus};
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "user-pages").await;
        let user = User::signing_up(&a, Email::parse("first@example.com").unwrap(), None, now());
        store.create_user(&a, &user, &event(&a)).await.unwrap();
        let mut tx = store.tenant_tx(&a).await.unwrap();
        sqlx::query(
            "INSERT INTO users SELECT (jsonb_populate_record(NULL::users, to_jsonb(u) || jsonb_build_object(
                 'id', 'usr_7' || lpad(g::text, 25, '0'), 'email', g || u.email,
                 'email_normalized', g || u.email_normalized))).*
             FROM users u, generate_series(1, 5000) g WHERE u.id = $1",
        )
        .bind(user.id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        analyze(&schema, "users").await;
        let cursor = format!("usr_7{:0>25}", 4990);
        let deep = PageRequest { limit: 10, after: Some(cursor.clone()) };
        let active = UserFilter { status: Some(UserStatus::Active), ..UserFilter::default() };
        let first = PageRequest { limit: 10, after: None };
        let prefix = UserFilter { email_prefix: Some("4990".into()), ..UserFilter::default() };
        let lists = [
            (UserFilter::default(), &deep, format!("'{a}', '{cursor}', 11")),
            (active.clone(), &deep, format!("'{a}', '{cursor}', 'active', 11")),
            // A search by prefix reads its range of the email key (migration 0020).
            (prefix, &first, format!("'{a}', '4990', '4991', '4990', 11")),
        ];
        let mut plans = Vec::new();
        let mut tx = store.tenant_tx(&a).await.unwrap();
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await.unwrap();
        for (n, (filter, page, arguments)) in lists.iter().enumerate() {
            let sql = gatehouse_store_postgres::testing::user_list_sql(&a, filter, page);
            sqlx::query(&format!("PREPARE user_list_{n} AS {sql}")).execute(&mut *tx).await.unwrap();
            let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE user_list_{n}({arguments})");
            plans
                .push((filter.clone(), sqlx::query_scalar::<_, serde_json::Value>(&explain).fetch_one(&mut *tx).await));
        }
        tx.rollback().await.unwrap();
        for (filter, plan) in plans {
            let plan = plan.unwrap();
            assert!(rows_read(&plan[0]["Plan"], "users") <= 11, "{filter:?}: {plan}");
        }
        // The key sorts in code point order whatever the database's default collation
        // (under a language's, a prefix is not one range of it).
        let mut tx = store.tenant_tx(&a).await.unwrap();
        let collation: Option<String> = sqlx::query_scalar(
            "SELECT collation_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'users' AND column_name = 'email_normalized'",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(collation.as_deref(), Some("C"));
        // The store's own page, and no plan of it kept for the next tenant or cursor.
        let lister = PgStore::connect(&schema.url, 1).await.unwrap();
        let last = lister.list_users(&a, &active, &deep).await.unwrap();
        assert_eq!(last.data.len(), 10);
        let mut tx = lister.tenant_tx(&a).await.unwrap();
        let kept = kept_statements(&mut tx, "%FROM users%").await;
        tx.rollback().await.unwrap();
        assert!(kept.is_empty(), "{kept:?}");
    }

    /// Every list with a cursor starts its index walk at the cursor, even under a generic
    /// plan: the cursor is an index condition, `id > $n` (bound to `''` on the first
    /// page), never the filter `($n IS NULL OR id > $n)`, with which page k re-read the
    /// k - 1 pages before it. (Nor `id > COALESCE($n, '')`: under row-level security
    /// Postgres keeps an expression it cannot prove leakproof out of index conditions.)
    /// The store's own statements are explained: each list runs once on a connection
    /// that plans generically, then its prepared statements are read back from Postgres.
    #[tokio::test]
    async fn every_list_starts_its_walk_at_the_cursor_under_a_generic_plan() {
        use gatehouse_core::ids::OrganizationId;
        use gatehouse_core::page::PageRequest;
        use gatehouse_core::store::{
            AdminTokenStore, MessagingStore, OperatorStore, OrgFilter, OrgStore, SecretKeyStore, TenantStore,
        };
        let schema = TestSchema::create().await.unwrap();
        let generic = format!("{}%20-c%20plan_cache_mode%3Dforce_generic_plan%20-c%20enable_seqscan%3Doff", schema.url);
        // One connection for tenant work: every list below runs on it.
        let store = PgStore::connect(&generic, 1).await.unwrap();
        let tenant = TenantId::generate();
        let page = PageRequest { limit: 10, after: Some("x".into()) };
        store.list_tenants(None, &page).await.unwrap();
        store.list_secret_keys(&tenant, &page).await.unwrap();
        store.list_admin_tokens(&page).await.unwrap();
        store.list_messages(&tenant, &page).await.unwrap();
        store.list_orgs(&tenant, &OrgFilter::default(), &page).await.unwrap();
        store.list_members(&tenant, &OrganizationId::generate(), &page).await.unwrap();
        store.list_operators(&page).await.unwrap();
        let mut tx = store.tenant_tx(&tenant).await.unwrap();
        let lists: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, statement, cardinality(parameter_types)::int8 FROM pg_prepared_statements
             WHERE statement LIKE '%ORDER BY%LIMIT%'",
        )
        .persistent(false)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let mut plans = Vec::new();
        for (name, statement, parameters) in &lists {
            let nulls = vec!["NULL"; usize::try_from(*parameters).unwrap()].join(", ");
            let explain = format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({nulls})");
            plans.push((
                statement.clone(),
                sqlx::query_scalar::<_, serde_json::Value>(&explain).fetch_one(&mut *tx).await,
            ));
        }
        tx.rollback().await.unwrap();
        assert_eq!(plans.len(), 7, "{lists:?}");
        fn cursor_bounds_a_scan(node: &serde_json::Value) -> bool {
            node["Index Cond"].as_str().is_some_and(|c| c.contains("id > $"))
                || node["Plans"].as_array().into_iter().flatten().any(cursor_bounds_a_scan)
        }
        let filtered: Vec<String> = plans
            .into_iter()
            .map(|(statement, plan)| (statement, plan.unwrap()))
            .filter(|(_, plan)| !cursor_bounds_a_scan(&plan[0]["Plan"]))
            .map(|(statement, plan)| format!("{statement}\n{plan}"))
            .collect();
        assert!(filtered.is_empty(), "{filtered:#?}");
    }

    /// A sweep of ended sessions reads the ended ones through their indexes, not every
    /// session: here three ended among 5,000 live sessions, which a sequential scan would
    /// read in full every ten minutes on every replica.
    #[tokio::test]
    async fn the_session_sweep_reads_only_ended_sessions() {
        use gatehouse_core::session::RefreshToken;
        use gatehouse_core::store::{SessionStore, UserStore};
        use gatehouse_core::user::{Email, User};
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "sweep-plan").await;
        let user = User::signing_up(&a, Email::parse("sweep@example.com").unwrap(), None, now());
        store.create_user(&a, &user, &event(&a)).await.unwrap();
        let live = live_session(&a, &user.id);
        let token = |days| RefreshToken {
            hash: generate_secret("rt_").hash,
            created_at: now(),
            expires_at: now() + time::Duration::days(days),
        };
        store.create_session(&a, &live, &token(1), &event(&a)).await.unwrap();
        for _ in 0..3 {
            let mut ended = live_session(&a, &user.id);
            ended.expires_at = now() - time::Duration::days(10);
            store.create_session(&a, &ended, &token(1), &event(&a)).await.unwrap();
        }
        let mut tx = store.tenant_tx(&a).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions SELECT (jsonb_populate_record(NULL::sessions, to_jsonb(s) || jsonb_build_object(
                 'id', s.id || '_' || g))).*
             FROM sessions s, generate_series(1, 5000) g WHERE s.id = $1",
        )
        .bind(live.id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        analyze(&schema, "sessions").await;
        let [tokens, sessions] = gatehouse_store_postgres::testing::session_sweep_sql();
        let mut tx = store.system_tx().await.unwrap();
        // The store sends them unnamed: planned for the cut-off, as a custom plan is.
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await.unwrap();
        let mut plans = Vec::new();
        for (n, statement) in [tokens, sessions].into_iter().enumerate() {
            sqlx::query(&format!("PREPARE sweep_{n}(timestamptz, int8) AS {statement}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE sweep_{n}(now() - interval '7 days', 1000)");
            plans.push(sqlx::query_scalar::<_, serde_json::Value>(&explain).fetch_one(&mut *tx).await);
        }
        tx.rollback().await.unwrap();
        for plan in plans {
            let plan = plan.unwrap();
            // The three ended sessions (then each again by key for the delete), and their
            // three tokens.
            assert!(rows_read(&plan[0]["Plan"], "sessions") <= 6, "{plan}");
            assert!(rows_read(&plan[0]["Plan"], "refresh_tokens") <= 6, "{plan}");
        }
        // And the store's sweep deletes exactly those three sessions and three tokens.
        assert_eq!(store.sweep_ended_sessions(now() - time::Duration::days(7), 1000).await.unwrap(), 6);
    }

    /// The sweep of finished messages finds the three old ones among 5,000 lately sent
    /// and a pending one, through the partial index of 0023, and deletes just those.
    #[tokio::test]
    async fn the_message_sweep_reads_only_old_finished_messages() {
        use gatehouse_core::ids::MessageId;
        use gatehouse_core::messaging::{Channel, DeliveryOutcome, MessageKind, OutboxMessage};
        use gatehouse_core::store::MessagingStore;
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "outbox-plan").await;
        let queued = |days_ago: i64| OutboxMessage {
            id: MessageId::generate(),
            tenant_id: a.clone(),
            channel: Channel::Email,
            recipient: "someone@example.com".into(),
            kind: MessageKind::MagicLink,
            sealed: vec![1, 2, 3],
            created_at: now() - time::Duration::days(days_ago),
        };
        let lately = queued(1);
        let old: Vec<_> = (0..3).map(|_| queued(40)).collect();
        let mut finished = old.clone();
        finished.push(lately.clone());
        store.enqueue_messages(&a, &finished, &event(&a)).await.unwrap();
        let at = now();
        store.claim_due_messages(at, at + time::Duration::minutes(1), 10).await.unwrap();
        for m in &finished {
            let sent = DeliveryOutcome::Sent { at, keep_content: false };
            store.finish_delivery(&a, &m.id, &sent, &event(&a)).await.unwrap();
        }
        // An old message still waiting for its first attempt.
        store.enqueue_messages(&a, &[queued(40)], &event(&a)).await.unwrap();
        let mut tx = store.tenant_tx(&a).await.unwrap();
        sqlx::query(
            "INSERT INTO outbox SELECT (jsonb_populate_record(NULL::outbox, to_jsonb(o) || jsonb_build_object(
                 'id', o.id || '_' || g))).*
             FROM outbox o, generate_series(1, 5000) g WHERE o.id = $1",
        )
        .bind(lately.id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        analyze(&schema, "outbox").await;
        let statement = gatehouse_store_postgres::testing::finished_message_sweep_sql();
        let mut tx = store.system_tx().await.unwrap();
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await.unwrap();
        sqlx::query(&format!("PREPARE sweep(timestamptz, int8) AS {statement}")).execute(&mut *tx).await.unwrap();
        let explain = "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE sweep(now() - interval '30 days', 1000)";
        let plan = sqlx::query_scalar::<_, serde_json::Value>(explain).fetch_one(&mut *tx).await;
        tx.rollback().await.unwrap();
        let plan = plan.unwrap();
        // The three old sent messages, then each again by key for the delete.
        assert!(rows_read(&plan[0]["Plan"], "outbox") <= 6, "{plan}");
        // And the store's sweep deletes exactly those three.
        assert_eq!(store.sweep_finished_messages(now() - time::Duration::days(30), 1000).await.unwrap(), 3);
    }

    /// Sign-ins and refreshes insert sessions and refresh tokens at thousands per second
    /// in one tenant. Their foreign keys lock the rows they point at until commit, so a
    /// key to `tenants` made every such write share a lock on the tenant's one row (a
    /// new MultiXact each time). They now reach the tenant through the user and the
    /// session: an open rotation and an open sign-in leave the tenant row free, while a
    /// row that names another tenant than its parent's is still refused.
    #[tokio::test]
    async fn sign_ins_and_rotations_lock_no_tenant_row_and_keep_their_parents_tenant() {
        use gatehouse_core::session::RefreshToken;
        use gatehouse_core::store::{SessionStore, UserStore};
        use gatehouse_core::user::{Email, User};
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let a = tenant_with_key(&store, "lock-a").await;
        let b = tenant_with_key(&store, "lock-b").await;
        let user = User::signing_up(&a, Email::parse("locks@example.com").unwrap(), None, now());
        store.create_user(&a, &user, &event(&a)).await.unwrap();
        let session = live_session(&a, &user.id);
        let token = generate_secret("rt_");
        let refresh =
            RefreshToken { hash: token.hash.clone(), created_at: now(), expires_at: now() + time::Duration::days(1) };
        store.create_session(&a, &session, &refresh, &event(&a)).await.unwrap();

        // Another connection takes the tenant row exclusively, without waiting, after
        // each write of an open transaction: a rotation's, then a sign-in's.
        async fn lock_tenant_row(store: &PgStore, tenant: &TenantId) -> Result<String, sqlx::Error> {
            let mut other = store.system_tx().await.unwrap();
            let row = sqlx::query_scalar("SELECT id FROM tenants WHERE id = $1 FOR UPDATE NOWAIT")
                .bind(tenant.as_str())
                .fetch_one(&mut *other)
                .await;
            other.rollback().await?;
            row
        }
        let mut open = store.tenant_tx(&a).await.unwrap();
        let rotation = sqlx::query(gatehouse_store_postgres::testing::rotation_sql())
            .bind(a.as_str())
            .bind(token.hash.as_str())
            .bind(now())
            .bind(now() - time::Duration::seconds(2))
            .bind(b"sealed".as_slice())
            .bind("successor-hash")
            .bind(now())
            .bind(now() + time::Duration::days(1))
            .bind(EventId::generate().as_str())
            .bind(a.as_str())
            .bind("refresh_token.rotated")
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(serde_json::json!({}))
            .bind(now())
            .fetch_one(&mut *open)
            .await;
        let successors: Result<i64, _> =
            sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE token_hash = 'successor-hash'")
                .fetch_one(&mut *open)
                .await;
        let after_rotation = lock_tenant_row(&store, &a).await;
        let sign_in = sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr)
             VALUES ($1, $2, $3, now(), now(), now() + interval '1 day', now(), '[\"pwd\"]')",
        )
        .bind(gatehouse_core::ids::SessionId::generate().as_str())
        .bind(a.as_str())
        .bind(user.id.as_str())
        .execute(&mut *open)
        .await
        .map(|done| done.rows_affected());
        let after_sign_in = lock_tenant_row(&store, &a).await;
        open.rollback().await.unwrap();
        assert!(rotation.is_ok(), "{rotation:?}");
        assert_eq!(successors.ok(), Some(1), "the rotation inserted its successor");
        assert_eq!(sign_in.ok(), Some(1), "the sign-in inserted its session");
        for (after, locked) in [("rotation", after_rotation), ("sign-in", after_sign_in)] {
            assert_eq!(locked.as_deref().ok(), Some(a.as_str()), "an open {after} locked the tenant row: {locked:?}");
        }

        // Rows naming another tenant than their parent's are refused.
        let mut tx = store.system_tx().await.unwrap();
        let foreign_user = sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr)
             VALUES ('ses_smuggled', $1, $2, now(), now(), now() + interval '1 day', now(), '[]')",
        )
        .bind(b.as_str())
        .bind(user.id.as_str())
        .execute(&mut *tx)
        .await;
        tx.rollback().await.unwrap();
        let mut tx = store.system_tx().await.unwrap();
        let foreign_session = sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at)
             VALUES ('smuggled-hash', $1, $2, now(), now() + interval '1 day')",
        )
        .bind(b.as_str())
        .bind(session.id.as_str())
        .execute(&mut *tx)
        .await;
        tx.rollback().await.unwrap();
        for (what, outcome) in [("session", foreign_user), ("refresh token", foreign_session)] {
            let refused = matches!(&outcome, Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation());
            assert!(refused, "a {what} of tenant B under tenant A's parent: {outcome:?}");
        }
    }

    /// Pooled connections are not pinged before each use (only after it, by sqlx), so
    /// one that the server dropped while it sat idle must still be caught: after the
    /// bypass window it is pinged, found dead and replaced, and the caller never sees it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_dropped_while_idle_is_replaced_before_use() {
        use gatehouse_core::store::Store;
        use sqlx::{ConnectOptions, Connection};
        let schema = TestSchema::create().await.unwrap();
        let store = PgStore::connect(&schema.url, 1).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap();
        let admin = gatehouse_store_postgres::testing::base_url().parse::<sqlx::postgres::PgConnectOptions>();
        let mut admin = admin.unwrap().connect().await.unwrap();
        let ended: bool =
            sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)").bind(pid).fetch_one(&mut admin).await.unwrap();
        assert!(ended, "the server ended the pooled connection");
        admin.close().await.unwrap();
        tokio::time::sleep(gatehouse_store_postgres::IDLE_PING_AFTER + std::time::Duration::from_millis(200)).await;
        store.ping().await.expect("the dead connection was replaced, not handed out");
        let replaced: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap();
        assert_ne!(replaced, pid);
    }

    #[tokio::test]
    async fn the_application_role_is_not_the_owner_and_cannot_bypass_rls() {
        let schema = TestSchema::create().await.unwrap();
        let store = schema.store().await.unwrap();
        let (user, bypass): (String, bool) =
            sqlx::query_as("SELECT current_user::text, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(user, gatehouse_store_postgres::APP_ROLE);
        assert!(!bypass);
    }
}
