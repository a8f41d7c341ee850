//! A real server on a random loopback port, over SQLite or Postgres, driven by HTTP.

#![allow(dead_code, reason = "each test crate uses a different subset")]

use gatehouse_server::config::{Config, MasterKey};
use gatehouse_server::startup::{self, Server};
use gatehouse_store_postgres::testing::TestSchema;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// SQLite file and the in-process ephemeral store.
    Sqlite,
    /// Postgres schema and Redis.
    Postgres,
}

/// Cleans up whatever the server's database needed.
enum Guard {
    Sqlite(PathBuf),
    Postgres(TestSchema),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Sqlite(path) = self {
            for suffix in ["", "-wal", "-shm", ".key"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// A reply: status, headers and the JSON body (`Null` if none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json error with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["code"], code, "{:?}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert_eq!(self.body["type"], format!("urn:gatehouse:problem:{code}"));
    }
}

/// A running server and a client for it.
pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    vars: HashMap<String, String>,
    guard: Guard,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts with extra `GATEHOUSE_*` variables.
    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into());
        let guard = match backend {
            Backend::Sqlite => {
                let path =
                    std::env::temp_dir().join(format!("gatehouse-it-{}.db", gatehouse_core::ids::EventId::generate()));
                vars.insert("GATEHOUSE_DATABASE_URL".into(), format!("sqlite://{}", path.display()));
                Guard::Sqlite(path)
            }
            Backend::Postgres => {
                let schema = TestSchema::create().await.unwrap();
                vars.insert("GATEHOUSE_DATABASE_URL".into(), schema.url.clone());
                vars.insert("GATEHOUSE_MASTER_KEY".into(), MasterKey::generate().encode());
                let redis =
                    std::env::var("GATEHOUSE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                vars.insert("GATEHOUSE_REDIS_URL".into(), redis);
                vars.insert(
                    "GATEHOUSE_REDIS_PREFIX".into(),
                    format!("ghtest:{}:", gatehouse_core::ids::EventId::generate()),
                );
                Guard::Postgres(schema)
            }
        };
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let server = startup::start(Config::from_vars(&vars).unwrap()).await.unwrap();
        let admin = match extra.iter().find(|(k, _)| *k == "GATEHOUSE_ADMIN_TOKEN") {
            Some((_, token)) => (*token).to_owned(),
            None => server.bootstrap_token.as_ref().unwrap().expose().to_owned(),
        };
        Self {
            base: format!("http://{}", server.local_addr),
            server: Some(server),
            admin,
            client: reqwest::Client::new(),
            backend,
            vars,
            guard,
        }
    }

    /// Stops the server gracefully and starts it again on the same database.
    pub async fn restart(&mut self) -> Option<String> {
        self.server.take().unwrap().shutdown().await.unwrap();
        let server = startup::start(Config::from_vars(&self.vars).unwrap()).await.unwrap();
        self.base = format!("http://{}", server.local_addr);
        let token = server.bootstrap_token.as_ref().map(|t| t.expose().to_owned());
        self.server = Some(server);
        token
    }

    /// A second server (a replica) on the same database and ephemeral store.
    pub async fn replica(&self) -> Server {
        startup::start(Config::from_vars(&self.vars).unwrap()).await.unwrap()
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Reply { status, headers, body }
    }

    /// The database URL the server runs on.
    pub fn database_url(&self) -> String {
        self.vars["GATEHOUSE_DATABASE_URL"].clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.get(self.url(path)).bearer_auth(token)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.delete(self.url(path)).bearer_auth(token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(path)).bearer_auth(token).json(&body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(self.client.patch(self.url(path)).bearer_auth(token).json(&body)).await
    }

    /// Creates a tenant as the operator; returns its JSON.
    pub async fn tenant(&self, slug: &str) -> Value {
        let slug = format!("{slug}-{}", &gatehouse_core::ids::EventId::generate().as_str()[20..]);
        let reply = self.post("/v1/tenants", &self.admin, serde_json::json!({"slug": slug, "name": slug})).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body
    }

    /// Creates a secret key for the tenant; returns (key JSON, secret).
    pub async fn secret_key(&self, tenant_id: &str) -> (Value, String) {
        let reply = self
            .post(&format!("/v1/tenants/{tenant_id}/secret-keys"), &self.admin, serde_json::json!({"name": "ci"}))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        let secret = reply.body["secret"].as_str().unwrap().to_owned();
        (reply.body, secret)
    }
}

/// A tenant as the end-user API sees it.
pub struct AuthTenant {
    pub id: String,
    pub slug: String,
}

impl TestServer {
    /// Creates a tenant (slug starting with `prefix`), with `settings` merged when not null.
    pub async fn auth_tenant(&self, prefix: &str, settings: Value) -> AuthTenant {
        let t = self.tenant(prefix).await;
        let id = t["id"].as_str().unwrap().to_owned();
        if !settings.is_null() {
            let r = self
                .patch(&format!("/v1/tenants/{id}"), &self.admin, serde_json::json!({ "settings": settings }))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        AuthTenant { id, slug: t["slug"].as_str().unwrap().to_owned() }
    }

    /// Runs raw SQL on the server's database with every tenant in reach (tests that age
    /// rows instead of waiting): `sqlite` on SQLite, `postgres` on Postgres.
    pub async fn sql(&self, sqlite: &str, postgres: &str) {
        let url = self.database_url();
        if url.starts_with("sqlite:") {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query(sqlite).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query("SET gatehouse.scope = 'system'").execute(&mut conn).await.unwrap();
            sqlx::query(postgres).execute(&mut conn).await.unwrap();
        }
    }

    /// A count read with raw SQL from the server's database, every tenant in reach (the
    /// same statement on both backends).
    pub async fn sql_count(&self, query: &str) -> i64 {
        let url = self.database_url();
        if url.starts_with("sqlite:") {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query("SET gatehouse.scope = 'system'").execute(&mut conn).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&mut conn).await.unwrap()
        }
    }

    /// `POST /t/{slug}/auth/{route}` without credentials.
    pub async fn auth(&self, t: &AuthTenant, route: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(&format!("/t/{}/auth/{route}", t.slug))).json(&body)).await
    }
}

/// Stamps each listed test function once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Base32 (RFC 4648) decoding of TOTP secrets.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        buffer = (buffer << 5) | ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 with SHA-1, 6 digits, 30 s steps, computed independently of the server.
pub fn code_at(secret: &[u8], step: u64) -> String {
    let mut mac = <hmac::Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(secret).unwrap();
    hmac::Mac::update(&mut mac, &step.to_be_bytes());
    let digest = hmac::Mac::finalize(mac).into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:06}", value % 1_000_000)
}

pub fn step_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 30
}
