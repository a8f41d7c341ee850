//! Chains of refresh tokens, rotated either bare through Gatehouse's store (the
//! ceiling) or through the running server over HTTP, for as long as asked and again
//! where they left off: what `refresh-ceiling`, `refresh-ratio` and `run --scenario
//! refresh` drive.

use crate::{forwarded, lean_http, signed_up};
use anyhow::Context;
use gatehouse_core::audit::RequestContext;
use gatehouse_core::ids::{EventId, TenantId};
use gatehouse_core::secret::{SecretHash, generate_secret};
use gatehouse_core::session::{RefreshOutcome, RefreshToken};
use gatehouse_core::store::{RotationEvent, Store};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Chains rotated bare through the store, on the server's own database.
pub struct StoreChains {
    store: Arc<dyn Store>,
    tenant_id: TenantId,
    /// Each chain's current token (handed to the tasks while they run).
    chains: Vec<SecretHash>,
}

impl StoreChains {
    /// A tenant with `accounts` sessions (made through the API), and a store connected to
    /// `database_url` (`sqlite://…` or `postgres://…`) with at most `connections`
    /// Postgres connections (the server's `GATEHOUSE_DATABASE_MAX_CONNECTIONS`, so both
    /// sides queue alike).
    pub async fn open(
        client: &reqwest::Client,
        url: &str,
        token: &str,
        database_url: &str,
        connections: u32,
        accounts: usize,
    ) -> anyhow::Result<Self> {
        let (tenant, tokens) = signed_up(client, url, token, "rceil", accounts).await?;
        let tenant_id: TenantId =
            tenant["id"].as_str().context("tenant id")?.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let store: Arc<dyn Store> = if database_url.starts_with("postgres") {
            Arc::new(gatehouse_store_postgres::PgStore::connect(database_url, connections).await?)
        } else {
            Arc::new(gatehouse_store_sqlite::SqliteStore::open(database_url, 4).await?)
        };
        Ok(Self { store, tenant_id, chains: tokens.iter().map(|t| SecretHash::of(t)).collect() })
    }

    /// Rotates every chain for `run`, one task per chain; each task's latencies (µs).
    /// A chain whose rotation fails stops and counts an error.
    pub async fn rotate_for(&mut self, run: Duration, errors: &Arc<AtomicU64>) -> anyhow::Result<Vec<Vec<u32>>> {
        let tasks = self.spawn(run, errors);
        gathered(tasks, |presented| self.chains.push(presented)).await
    }

    /// Spawns one rotating task per chain, handing the chains to them.
    pub fn spawn(&mut self, run: Duration, errors: &Arc<AtomicU64>) -> Vec<JoinHandle<(Vec<u32>, SecretHash)>> {
        // The server seals the successor (AES-GCM) before this call; a blob of that size
        // stands in for it, so only the SQL is measured.
        let sealed = vec![7u8; 96];
        let deadline = Instant::now() + run;
        let counter = Arc::new(AtomicU64::new(1));
        let mut tasks = Vec::new();
        for mut presented in self.chains.drain(..) {
            let (store, tenant_id, sealed, errors, counter) =
                (self.store.clone(), self.tenant_id.clone(), sealed.clone(), errors.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let now = time::OffsetDateTime::now_utc();
                    let next = generate_secret("rt_");
                    let successor = RefreshToken {
                        hash: next.hash.clone(),
                        created_at: now,
                        expires_at: now + time::Duration::days(30),
                    };
                    // The server records each rotation's audit event in the same
                    // transaction, with the caller's address and the request's id: the
                    // same row here, so the ceiling's inserts and index entries match.
                    let ctx = RequestContext {
                        ip: Some(forwarded(counter.fetch_add(1, Ordering::Relaxed))),
                        user_agent: None,
                        request_id: Some(format!("req_{}", EventId::generate().as_str().trim_start_matches("evt_"))),
                        accept_language: None,
                    };
                    let event = RotationEvent::new(now, &ctx, &tenant_id, false);
                    let t0 = Instant::now();
                    let grace = time::Duration::seconds(2);
                    let outcome = store
                        .rotate_refresh_token(&tenant_id, &presented, &successor, &sealed, now, grace, &event)
                        .await;
                    if let Ok(RefreshOutcome::Rotated { .. }) = outcome {
                        latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                        presented = next.hash;
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                (latencies, presented)
            }));
        }
        tasks
    }
}

/// The one field of a token set a refresh chain needs; the rest is skipped unparsed.
#[derive(serde::Deserialize)]
struct RefreshReply<'a> {
    refresh_token: &'a str,
}

/// One account's chain over HTTP: its keep-alive connection and current refresh token.
type HttpChain = (lean_http::Connection, String);

/// Chains rotated through the running server: `POST /t/{t}/auth/refresh`, one
/// keep-alive connection per chain (see [`lean_http`]).
pub struct HttpChains {
    path: Arc<str>,
    chains: Vec<HttpChain>,
    counter: Arc<AtomicU64>,
}

impl HttpChains {
    /// A tenant with `accounts` signed-up users, and one open connection per user.
    pub async fn open(client: &reqwest::Client, url: &str, token: &str, accounts: usize) -> anyhow::Result<Self> {
        let (tenant, tokens) = signed_up(client, url, token, "rhttp", accounts).await?;
        let slug = tenant["slug"].as_str().context("tenant slug")?;
        let mut chains = Vec::new();
        for refresh in tokens {
            chains.push((lean_http::Connection::open(url).await?, refresh));
        }
        let path = Arc::from(format!("/t/{slug}/auth/refresh"));
        Ok(Self { path, chains, counter: Arc::new(AtomicU64::new(1_000_000)) })
    }

    /// Refreshes every chain for `run`, one task per chain; each task's latencies (µs).
    /// A refused refresh or a broken connection counts an error and ends its chain.
    pub async fn refresh_for(&mut self, run: Duration, errors: &Arc<AtomicU64>) -> anyhow::Result<Vec<Vec<u32>>> {
        let tasks = self.spawn(run, errors);
        // A chain that failed is dropped: its token may be spent or its connection gone.
        gathered(tasks, |chain| self.chains.extend(chain)).await
    }

    /// Spawns one refreshing task per chain, handing the chains to them; each task
    /// gives back its latencies (µs) and its chain, unless the chain failed.
    pub fn spawn(&mut self, run: Duration, errors: &Arc<AtomicU64>) -> Vec<JoinHandle<(Vec<u32>, Option<HttpChain>)>> {
        let deadline = Instant::now() + run;
        let mut tasks = Vec::new();
        for (mut connection, mut refresh) in self.chains.drain(..) {
            let (path, errors, counter) = (self.path.clone(), errors.clone(), self.counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut alive = true;
                while alive && Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let body = serde_json::to_vec(&json!({"refresh_token": refresh})).unwrap_or_default();
                    match connection.post_json(&path, &forwarded(n), body).await {
                        Ok((status, body)) if status.is_success() => {
                            match serde_json::from_slice::<RefreshReply<'_>>(&body) {
                                Ok(reply) => {
                                    reply.refresh_token.clone_into(&mut refresh);
                                    latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                                }
                                Err(_) => alive = false,
                            }
                        }
                        Ok(_) | Err(_) => alive = false,
                    }
                    if !alive {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                (latencies, alive.then_some((connection, refresh)))
            }));
        }
        tasks
    }
}

/// The tasks' latencies alone, as [`crate::report`] takes them; a task's panic reaches
/// the report as a panic, not as an empty run.
pub fn latencies_only<T: Send + 'static>(tasks: Vec<JoinHandle<(Vec<u32>, T)>>) -> Vec<JoinHandle<Vec<u32>>> {
    let only = |task: JoinHandle<(Vec<u32>, T)>| async move {
        match task.await {
            Ok((latencies, _)) => latencies,
            Err(failed) => std::panic::resume_unwind(failed.into_panic()),
        }
    };
    tasks.into_iter().map(|task| tokio::spawn(only(task))).collect()
}

/// Awaits one slice's tasks: each task's latencies, its chain handed to `keep`.
async fn gathered<T>(tasks: Vec<JoinHandle<(Vec<u32>, T)>>, mut keep: impl FnMut(T)) -> anyhow::Result<Vec<Vec<u32>>> {
    let mut latencies = Vec::new();
    for task in tasks {
        let (done, chain) = task.await?;
        latencies.push(done);
        keep(chain);
    }
    Ok(latencies)
}
