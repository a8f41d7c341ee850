//! Scheduled key rotation, driven by an injected clock over the real SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

use gatehouse_core::access::Principal;
use gatehouse_core::audit::RequestContext;
use gatehouse_core::clock::ManualClock;
use gatehouse_core::ephemeral::memory::MemoryStore;
use gatehouse_core::password::{Argon2Cost, PasswordHasher};
use gatehouse_core::services::tenants::NewTenant;
use gatehouse_core::services::{ServiceConfig, Services};
use gatehouse_core::signing::{KeyStatus, Sealer};
use gatehouse_store_sqlite::SqliteStore;
use std::sync::Arc;

#[tokio::test]
async fn a_due_tenant_rotates_once_and_a_manual_one_never() {
    let path = std::env::temp_dir().join(format!("gatehouse-schedule-{}.db", gatehouse_core::ids::EventId::generate()));
    let store = Arc::new(SqliteStore::open(&format!("sqlite://{}", path.display()), 2).await.unwrap());
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let services = Services::new(
        store,
        Arc::new(MemoryStore::new()),
        clock.clone(),
        ServiceConfig {
            audit_reads: false,
            break_glass_token: None,
            password_hasher: PasswordHasher::new(
                Argon2Cost { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 },
                1,
                0,
            )
            .unwrap(),
            sealer: Arc::new(Sealer::new(&[3u8; 32]).unwrap()),
            public_url: "http://127.0.0.1:8080".into(),
            resolver: Arc::new(gatehouse_server::dns::HickoryTxt::new(None).unwrap()),
        },
    );
    let op = Principal::BreakGlass.operator().unwrap();
    let ctx = RequestContext::default();
    let create = |slug: &str, settings: serde_json::Value| NewTenant {
        slug: slug.into(),
        name: slug.into(),
        settings: Some(settings),
    };
    let due = services.tenants.create(&op, &ctx, create("due-tenant", serde_json::json!({}))).await.unwrap();
    let manual = services
        .tenants
        .create(&op, &ctx, create("manual-tenant", serde_json::json!({"signing_key_rotation_days": 0})))
        .await
        .unwrap();
    let first_due = services.keys.published(&due).await.unwrap();
    services.keys.published(&manual).await.unwrap();
    assert_eq!(services.keys.rotate_due_tenants().await.unwrap(), 0, "nothing is due on day one");

    clock.advance(time::Duration::days(91));
    assert_eq!(services.keys.rotate_due_tenants().await.unwrap(), 1, "the 90-day tenant is due");
    assert_eq!(services.keys.rotate_due_tenants().await.unwrap(), 0, "and rotates once");
    let after = services.keys.published(&due).await.unwrap();
    let next_before = first_due.iter().find(|k| k.status == KeyStatus::Next).unwrap();
    let active_after = after.iter().find(|k| k.status == KeyStatus::Active).unwrap();
    assert_eq!(active_after.id, next_before.id, "the key published in advance took over");
    let manual_keys = services.keys.published(&manual).await.unwrap();
    assert_eq!(manual_keys.iter().filter(|k| k.status == KeyStatus::Retired).count(), 0);

    clock.advance(time::Duration::days(91));
    assert_eq!(services.keys.rotate_due_tenants().await.unwrap(), 1, "due again a period later");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
