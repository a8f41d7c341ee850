//! The ephemeral-store conformance suite, against Redis and the in-process store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed step is a failed test"
)]

mod redis_store {
    use gatehouse_core::ephemeral::EphemeralStore;
    use std::sync::Arc;

    async fn make() -> Arc<dyn EphemeralStore> {
        let url = std::env::var("GATEHOUSE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("ghtest:{}:", gatehouse_core::ids::EventId::generate());
        Arc::new(
            gatehouse_ephemeral_redis::RedisStore::connect(&url, &prefix)
                .await
                .unwrap(),
        )
    }

    gatehouse_core::ephemeral_conformance_tests!(make);

    #[tokio::test]
    async fn an_unreachable_redis_reports_unavailable_instead_of_hanging() {
        // Port 1 on loopback: nothing listens there.
        let result =
            gatehouse_ephemeral_redis::RedisStore::connect("redis://127.0.0.1:1", "x:").await;
        assert!(matches!(
            result,
            Err(gatehouse_core::ephemeral::EphemeralError::Unavailable(_))
        ));
    }
}

mod memory_store {
    use gatehouse_core::ephemeral::EphemeralStore;
    use gatehouse_core::ephemeral::memory::MemoryStore;
    use std::sync::Arc;

    async fn make() -> Arc<dyn EphemeralStore> {
        Arc::new(MemoryStore::new())
    }

    gatehouse_core::ephemeral_conformance_tests!(make);
}
