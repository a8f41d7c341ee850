//! Behaviour when things go wrong: shutdown with requests in flight, Redis going away.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    let addr = s.server.as_ref().unwrap().local_addr;
    let body = br#"{"slug": "in-flight", "name": "In flight"}"#;
    let token = s.admin.clone();
    let (half, rest) = body.split_at(10);
    // Send the headers and half the body, then ask the server to stop.
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(half).unwrap();
    stream.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = s.server.take().unwrap();
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "shutdown did not wait for the in-flight request");
    let rest = rest.to_vec();
    let reply = tokio::task::spawn_blocking(move || {
        stream.write_all(&rest).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    tokio::time::timeout(Duration::from_secs(10), stopping).await.unwrap().unwrap().unwrap();
    // And nothing accepts connections any more.
    assert!(TcpStream::connect(addr).is_err());
}

/// A private Redis on a free loopback port, killed on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_credential_checks_fail_closed_and_readiness_fails() {
    let mut redis = PrivateRedis::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let s = TestServer::start_with(Backend::Postgres, &[("GATEHOUSE_REDIS_URL", &url)]).await;
    assert_eq!(s.get("/v1/tenants", &s.admin).await.status, 200);
    let t = s.tenant("redis-down").await;
    let slug = t["slug"].as_str().unwrap().to_owned();
    let login_body = serde_json::json!({"email": "u@example.com", "password": "violet kettle drums"});
    let signup = s.send(s.client.post(s.url(&format!("/t/{slug}/auth/signup"))).json(&login_body)).await;
    assert_eq!(signup.status, 201);
    assert_eq!(s.send(s.client.get(s.url("/readyz"))).await.status, 200);

    redis.stop();
    let refused = s.get("/v1/tenants", &s.admin).await;
    refused.assert_problem(503, "unavailable");
    assert!(refused.header("retry-after").is_some());
    s.get("/v1/tenants", "sk_guessing").await.assert_problem(503, "unavailable");
    s.send(s.client.get(s.url("/readyz"))).await.assert_problem(503, "unavailable");
    // Credential endpoints of the auth API fail closed too: no rate limit, no sign-in.
    let login = s
        .send(
            s.client
                .post(s.url("/t/any-tenant/auth/login"))
                .json(&serde_json::json!({"email": "a@b.co", "password": "x"})),
        )
        .await;
    assert_eq!(login.status / 100, 4, "unknown tenant is still a 404 without Redis");
    let refused_login = s.send(s.client.post(s.url(&format!("/t/{slug}/auth/login"))).json(&login_body)).await;
    refused_login.assert_problem(503, "unavailable");
    // Liveness is about the process, not its dependencies.
    assert_eq!(s.send(s.client.get(s.url("/healthz"))).await.status, 200);
}
