//! The ephemeral-store conformance suite, against standalone Redis, a Redis Cluster
//! started for the test, and the in-process store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod redis_store {
    use gatehouse_core::ephemeral::EphemeralStore;
    use std::sync::Arc;

    async fn make() -> ((), Arc<dyn EphemeralStore>) {
        let url = std::env::var("GATEHOUSE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("ghtest:{}:", gatehouse_core::ids::EventId::generate());
        ((), Arc::new(gatehouse_ephemeral_redis::RedisStore::connect(&url, &prefix).await.unwrap()))
    }

    gatehouse_core::ephemeral_conformance_tests!(make);

    #[tokio::test]
    async fn an_unreachable_redis_reports_unavailable_instead_of_hanging() {
        // Port 1 on loopback: nothing listens there.
        let result = gatehouse_ephemeral_redis::RedisStore::connect("redis://127.0.0.1:1", "x:").await;
        assert!(matches!(result, Err(gatehouse_core::ephemeral::EphemeralError::Unavailable(_))));
    }
}

mod redis_cluster {
    use gatehouse_core::ephemeral::EphemeralStore;
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Duration;

    /// Three cluster-mode `redis-server`s on loopback with every slot assigned; the
    /// processes and their files go when the guard drops.
    pub struct Cluster {
        nodes: Vec<Child>,
        dir: PathBuf,
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            for node in &mut self.nodes {
                let _ = node.kill();
                let _ = node.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A port whose cluster-bus port (port + 10000) is free too.
    fn free_port() -> u16 {
        for _ in 0..200 {
            let port = 20_000 + (rand_u16() % 10_000);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
            {
                return port;
            }
        }
        panic!("no free port pair");
    }

    fn rand_u16() -> u16 {
        let id = gatehouse_core::ids::EventId::generate();
        id.as_str().bytes().rev().take(4).fold(0u16, |acc, b| acc.wrapping_mul(31).wrapping_add(u16::from(b)))
    }

    fn start() -> (Cluster, Vec<u16>) {
        let dir = std::env::temp_dir().join(format!("gatehouse-cluster-{}", gatehouse_core::ids::EventId::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new("redis-server")
                .current_dir(&dir)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server must be installed");
            nodes.push(child);
            ports.push(port);
        }
        let cluster = Cluster { nodes, dir };
        for port in &ports {
            let mut up = false;
            for _ in 0..100 {
                if TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(up, "redis node {port} did not start");
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "redis-cli --cluster create failed");
        for _ in 0..100 {
            let info =
                Command::new("redis-cli").args(["-p", &ports[0].to_string(), "cluster", "info"]).output().unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                return (cluster, ports);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster never became ready");
    }

    async fn make() -> (Cluster, Arc<dyn EphemeralStore>) {
        let (cluster, ports) = tokio::task::spawn_blocking(start).await.unwrap();
        let urls: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
        let store = gatehouse_ephemeral_redis::RedisStore::connect(&urls.join(","), "ghtest:").await.unwrap();
        assert!(format!("{store:?}").contains("cluster"));
        (cluster, Arc::new(store))
    }

    gatehouse_core::ephemeral_conformance_tests!(make);
}

mod memory_store {
    use gatehouse_core::ephemeral::EphemeralStore;
    use gatehouse_core::ephemeral::memory::MemoryStore;
    use std::sync::Arc;

    async fn make() -> ((), Arc<dyn EphemeralStore>) {
        ((), Arc::new(MemoryStore::new()))
    }

    gatehouse_core::ephemeral_conformance_tests!(make);
}
