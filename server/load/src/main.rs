//! `gatehouse-load`: drives a running Gatehouse over real HTTP and reports throughput and
//! latency, always beside a ceiling measured in the same run (this machine is shared
//! and noisy, so only ratios compare across runs). Also measures cold start and idle
//! memory of the binary. Loopback only; every loop is bounded in time and count.

/// The server's allocator, so the bare ceilings run the store code as the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bare_argon;
mod cpu_split;
mod lean_http;
mod paired;
mod refresh_chains;
mod suite;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "gatehouse-load", about = "Load and start-up measurements for Gatehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// `GET /healthz`: the HTTP stack alone (the ceiling for management reads).
    Health,
    /// `GET /v1/tenants/{id}` with the tenant's secret key.
    TenantRead,
    /// `GET /v1/tenants?limit=20` with an operator token.
    TenantList,
    /// `POST /t/{t}/auth/login` with a correct password (needs the server to trust
    /// loopback as a proxy: each request carries its own `X-Forwarded-For`).
    Login,
    /// `POST /t/{t}/auth/refresh`, each worker following its own rotating token.
    Refresh,
    /// `GET /t/{t}/.well-known/jwks.json`.
    Jwks,
    /// `POST /t/{t}/auth/signup` with a new address each time.
    Signup,
}

/// The server under load and the operator token that sets up its tenants.
#[derive(Debug, clap::Args)]
struct Server {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Operator token (tenants, accounts and secret keys are created with it).
    #[arg(long, env = "GATEHOUSE_LOAD_TOKEN")]
    token: String,
}

/// The server's database, which the bare refresh ceiling writes to directly.
#[derive(Debug, clap::Args)]
struct Database {
    /// The server's database (`sqlite://…` or `postgres://…`).
    #[arg(long)]
    database_url: String,
    /// Postgres connections the bare side opens: give it what the server was given
    /// (`GATEHOUSE_DATABASE_MAX_CONNECTIONS`), so both sides queue alike.
    #[arg(long, default_value_t = 20)]
    connections: u32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates tenants (and one secret key) through the API.
    Seed {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Runs a scenario for a fixed time and prints one JSON line of results, with the
    /// CPU each request cost the server's hashing threads, its other threads, Postgres,
    /// Redis and this tool, and the host's steal over the run (Linux `/proc`).
    Run {
        #[command(flatten)]
        server: Server,
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to run (at most 300).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Open loop: send this many requests per second on a fixed schedule (latency
        /// counted from the scheduled time, so a slow server cannot hide its queue);
        /// only for the login scenario. Omit for a closed loop.
        #[arg(long)]
        rate: Option<u32>,
    },
    /// `GET` one loopback URL, optionally with a bearer token (e.g. a service behind the
    /// gatehouse-axum layer, to measure the middleware's cost beside an open route).
    Get {
        url: String,
        #[arg(long)]
        bearer: Option<String>,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to run (at most 300).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Bare Argon2id verifies (Gatehouse's default cost) on every core: the ceiling for
    /// password logins.
    Argon2Ceiling {
        /// Seconds to run (at most 60).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The refresh-rotation SQL (mark spent + insert successor + its audit event, as the
    /// server writes it, with a client address and a request id; one transaction) run
    /// bare through Gatehouse's store on the server's database, no HTTP: the ceiling for
    /// refreshes. Sessions are created through the API first, and 2 s of rotations warm
    /// the tables up before the counted run.
    RefreshCeiling {
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        database: Database,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to run (at most 300).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Password logins against the bare Argon2 ceiling in alternating slices (ceiling,
    /// logins, ceiling, …), so each ratio compares seconds-apart figures on a host whose
    /// speed drifts by minutes. Prints each round's ratio, the CPU each login cost each
    /// process group (from `/proc`), the median ratio, and logins per core beside
    /// Keycloak's sizing (per host core, and per core given to the server alone).
    LoginRatio {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Login slices (each between two ceiling slices).
        #[arg(long, default_value_t = 8)]
        rounds: usize,
        /// Seconds per slice (at most 30).
        #[arg(long, default_value_t = 3)]
        slice_seconds: u64,
    },
    /// Refreshes through the server against the bare store rotation (the
    /// `refresh-ceiling`) in alternating slices (ceiling, refreshes, ceiling, …) after
    /// 2 s of each uncounted, so each ratio compares seconds-apart figures. Prints each
    /// round's rates, p99s and CPU per request, the median ratio, and refreshes per core
    /// beside Keycloak's sizing (per host core, and per core given to the server alone).
    RefreshRatio {
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        database: Database,
        /// Chains of refresh tokens on each side (one task each).
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Refresh slices (each between two ceiling slices).
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Seconds per slice (at most 30).
        #[arg(long, default_value_t = 3)]
        slice_seconds: u64,
    },
    /// Sign-in latency at 80 % of peak against one bare verify, in rounds measured
    /// back to back after one uncounted slice of sign-ins (warm-up): bare Argon2 (the
    /// verify's median), logins as fast as they go (the peak), logins arriving at a
    /// fixed 80 % of that peak (their p50 and p99), the peak again, bare Argon2 again.
    /// Each round's p99 is divided by the median verify around it; each round also
    /// gives the server's mean hash time and queue wait over the slice (from its
    /// `/metrics`), and ends with a control: bare verifies arriving at the same share of
    /// the bare ceiling, queued for one thread per core, no server (their p99 over the
    /// same verify is the tail this host gives any hashing queue). Prints every round,
    /// the median of the quotients, and the median of the steady rounds: those whose
    /// offered rate stayed within 10 % of the asked share of the two peaks around them
    /// (on a host whose speed moves within seconds, the others ran at a different load
    /// than asked).
    LoginTail {
        #[command(flatten)]
        server: Server,
        /// Closed-loop clients measuring the peak (also the number of accounts).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Seconds of each ceiling and peak slice (at most 30).
        #[arg(long, default_value_t = 3)]
        slice_seconds: u64,
        /// Seconds of each fixed-rate slice (at most 60).
        #[arg(long, default_value_t = 10)]
        open_seconds: u64,
        /// The fixed rate as a share of the measured peak.
        #[arg(long, default_value_t = 0.8)]
        load: f64,
    },
    /// Starts the binary on a fresh SQLite file N times: time to ready and idle RSS.
    Startup {
        /// Path of the gatehouse binary.
        #[arg(long, default_value = "target/release/gatehouse")]
        binary: String,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Reuse this database URL instead of a fresh SQLite file per run.
        #[arg(long)]
        database_url: Option<String>,
        /// Master key, needed with Postgres.
        #[arg(long)]
        master_key: Option<String>,
    },
    /// Every measure of the core-authentication targets in one command, on servers it
    /// starts itself: for each backend (SQLite with the in-process store always;
    /// Postgres with Redis when both are given) and each of `--runs` runs, a fresh
    /// database and a fresh `gatehouse serve` on a free loopback port, then
    /// `refresh-ratio`, `login-ratio`, `login-tail`, JWKS and sign-ups. Prints each
    /// measure's output as a JSON line as it ends, then a summary: every run's figure,
    /// the median of the runs, and the target beside it (also as a Markdown table on
    /// stderr, for docs/benchmarks.md). About five minutes per run and backend.
    Suite {
        /// Path of the gatehouse binary (a release build).
        #[arg(long, default_value = "target/release/gatehouse")]
        binary: String,
        /// A Postgres database to connect to for creating (and dropping) one fresh
        /// database per run, e.g. `postgres://postgres@127.0.0.1:5432/test`.
        #[arg(long, requires = "redis")]
        postgres: Option<String>,
        /// Redis for the Postgres runs (each run uses its own key prefix).
        #[arg(long, requires = "postgres")]
        redis: Option<String>,
        /// Runs per backend, each on a fresh server and database (at most 9).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Rounds of `refresh-ratio` and `login-ratio` per run.
        #[arg(long, default_value_t = 8)]
        rounds: usize,
        /// Rounds of `login-tail` per run.
        #[arg(long, default_value_t = 5)]
        tail_rounds: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let figures = match Cli::parse().command {
        Command::Seed { server, tenants, concurrency } => seed(&server.url, &server.token, tenants, concurrency).await,
        Command::Run { server, scenario, concurrency, seconds, rate: Some(rate) } => {
            if !matches!(scenario, Scenario::Login) {
                bail!("--rate is supported for the login scenario");
            }
            open_loop_login(&server.url, &server.token, concurrency, seconds.min(300), rate.clamp(1, 10_000)).await
        }
        Command::Run { server, scenario, concurrency, seconds, rate: None } => {
            run(&server.url, &server.token, scenario, concurrency, seconds.min(300)).await
        }
        Command::Argon2Ceiling { seconds } => argon2_ceiling(seconds.min(60)).await,
        Command::Get { url, bearer, concurrency, seconds } => {
            get_url(&url, bearer.as_deref(), concurrency.clamp(1, 1024), seconds.min(300), &format!("GET {url}")).await
        }
        Command::RefreshCeiling { server, database, concurrency, seconds } => {
            refresh_ceiling(
                &server.url,
                &server.token,
                &database.database_url,
                database.connections.clamp(1, 500),
                concurrency.clamp(1, 256),
                seconds.min(300),
            )
            .await
        }
        Command::LoginRatio { server, concurrency, rounds, slice_seconds } => {
            paired::login_ratio(
                &server.url,
                &server.token,
                concurrency.clamp(1, 256),
                rounds.clamp(1, 50),
                slice_seconds.clamp(1, 30),
            )
            .await
        }
        Command::RefreshRatio { server, database, concurrency, rounds, slice_seconds } => {
            check_loopback(&server.url)?;
            let shape = paired::RefreshShape {
                chains: concurrency.clamp(1, 256),
                rounds: rounds.clamp(1, 50),
                slice: slice_seconds.clamp(1, 30),
                connections: database.connections.clamp(1, 500),
            };
            paired::refresh_ratio(&server.url, &server.token, &database.database_url, &shape).await
        }
        Command::LoginTail { server, concurrency, rounds, slice_seconds, open_seconds, load } => {
            let shape = paired::TailShape {
                accounts: concurrency.clamp(1, 256),
                rounds: rounds.clamp(1, 50),
                slice: slice_seconds.clamp(1, 30),
                open: open_seconds.clamp(1, 60),
                load: load.clamp(0.05, 1.0),
            };
            paired::login_tail(&server.url, &server.token, &shape).await
        }
        Command::Startup { binary, runs, database_url, master_key } => {
            startup(&binary, runs.min(50), database_url, master_key).await
        }
        Command::Suite { binary, postgres, redis, runs, rounds, tail_rounds } => {
            let shape = suite::Shape {
                binary,
                postgres,
                redis,
                runs: runs.clamp(1, 9),
                rounds: rounds.clamp(1, 50),
                tail_rounds: tail_rounds.clamp(1, 50),
            };
            suite::run(&shape).await
        }
    }?;
    println!("{figures}");
    Ok(())
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(512).timeout(Duration::from_secs(30)).build()?)
}

fn check_loopback(url: &str) -> anyhow::Result<()> {
    let host = reqwest::Url::parse(url)?.host_str().unwrap_or_default().to_owned();
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        bail!("refusing to send load to {host}: loopback only");
    }
    Ok(())
}

async fn create_tenant(client: &reqwest::Client, url: &str, token: &str, slug: &str) -> anyhow::Result<Value> {
    let reply = client
        .post(format!("{url}/v1/tenants"))
        .bearer_auth(token)
        .json(&json!({"slug": slug, "name": slug}))
        .send()
        .await?;
    if reply.status() != 201 {
        bail!("creating tenant {slug}: {} {}", reply.status(), reply.text().await.unwrap_or_default());
    }
    Ok(reply.json().await?)
}

async fn seed(url: &str, token: &str, tenants: usize, concurrency: usize) -> anyhow::Result<Value> {
    check_loopback(url)?;
    let client = client()?;
    let next = Arc::new(AtomicU64::new(0));
    let run_id = std::process::id();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, 64) {
        let (client, url, token, next) = (client.clone(), url.to_owned(), token.to_owned(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tenants as u64 {
                    return Ok::<(), anyhow::Error>(());
                }
                create_tenant(&client, &url, &token, &format!("seed-{run_id}-{i}")).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(json!({"seeded_tenants": tenants, "seconds": started.elapsed().as_secs_f64()}))
}

async fn run(url: &str, token: &str, scenario: Scenario, concurrency: usize, seconds: u64) -> anyhow::Result<Value> {
    check_loopback(url)?;
    if matches!(scenario, Scenario::Login | Scenario::Refresh | Scenario::Jwks | Scenario::Signup) {
        return run_auth(url, token, scenario, concurrency, seconds).await;
    }
    let client = client()?;
    let (path, bearer) = match scenario {
        Scenario::Health | Scenario::Login | Scenario::Refresh | Scenario::Jwks | Scenario::Signup => {
            ("/healthz".to_owned(), token.to_owned())
        }
        Scenario::TenantList => ("/v1/tenants?limit=20".to_owned(), token.to_owned()),
        Scenario::TenantRead => {
            let tenant = create_tenant(&client, url, token, &format!("load-{}", std::process::id())).await?;
            let id = tenant["id"].as_str().context("tenant id")?.to_owned();
            let key: Value = client
                .post(format!("{url}/v1/tenants/{id}/secret-keys"))
                .bearer_auth(token)
                .json(&json!({"name": "load"}))
                .send()
                .await?
                .json()
                .await?;
            (format!("/v1/tenants/{id}"), key["secret"].as_str().context("secret")?.to_owned())
        }
    };
    get_url(&format!("{url}{path}"), Some(&bearer), concurrency.clamp(1, 1024), seconds, &format!("{scenario:?}")).await
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn startup(
    binary: &str,
    runs: usize,
    database_url: Option<String>,
    master_key: Option<String>,
) -> anyhow::Result<Value> {
    let client = client()?;
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for run in 0..runs {
        let dir = std::env::temp_dir().join(format!("gatehouse-startup-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = 18_000 + u16::try_from(run).unwrap_or(0);
        let mut command = tokio::process::Command::new(binary);
        command
            .current_dir(&dir)
            .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("GATEHOUSE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(db) = &database_url {
            command.env("GATEHOUSE_DATABASE_URL", db);
        }
        if let Some(key) = &master_key {
            command.env("GATEHOUSE_MASTER_KEY", key);
        }
        let started = Instant::now();
        let mut child = command.spawn().with_context(|| format!("starting {binary}"))?;
        let ready_url = format!("http://127.0.0.1:{port}/readyz");
        let mut ready = None;
        for _ in 0..2000 {
            if let Ok(r) = client.get(&ready_url).send().await
                && r.status() == 200
            {
                ready = Some(started.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready = ready.context("the server never became ready")?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(kib) = child.id().and_then(rss_kib) {
            rss.push(kib);
        }
        child.kill().await?;
        let _ = std::fs::remove_dir_all(&dir);
        times.push(ready.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    rss.sort_unstable();
    Ok(json!({
        "runs": runs,
        "ready_ms_median": times.get(times.len() / 2),
        "ready_ms_max": times.last(),
        "idle_rss_mib_median": rss.get(rss.len() / 2).map(|k| *k as f64 / 1024.0),
    }))
}

const PASSWORD: &str = "violet kettle drums";

/// A per-request client address, so per-IP limits (meant for real clients) do not cap
/// a single load generator.
fn forwarded(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

async fn post_json(client: &reqwest::Client, url: &str, n: u64, body: &Value) -> anyhow::Result<reqwest::Response> {
    Ok(client.post(url).header("x-forwarded-for", forwarded(n)).json(body).send().await?)
}

/// The request paths of the sign-in and sign-up scenarios under one tenant, built once.
struct AuthPaths {
    login: String,
    signup: String,
}

impl AuthPaths {
    fn under(tenant_path: &str) -> Self {
        Self { login: format!("{tenant_path}/auth/login"), signup: format!("{tenant_path}/auth/signup") }
    }
}

async fn run_auth(
    url: &str,
    token: &str,
    scenario: Scenario,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Value> {
    let client = client()?;
    if matches!(scenario, Scenario::Refresh) {
        let mut chains = refresh_chains::HttpChains::open(&client, url, token, concurrency).await?;
        let errors = Arc::new(AtomicU64::new(0));
        let workers = refresh_chains::latencies_only(chains.spawn(Duration::from_secs(seconds), &errors));
        return report("Refresh", concurrency, workers, errors).await;
    }
    if matches!(scenario, Scenario::Jwks) {
        let slug = format!("jwks-{}", std::process::id());
        create_tenant(&client, url, token, &slug).await?;
        let jwks = format!("{url}/t/{slug}/.well-known/jwks.json");
        return get_url(&jwks, None, concurrency.clamp(1, 1024), seconds, &format!("{scenario:?}")).await;
    }
    // One account per worker (the login scenario signs in as it), signed up before the
    // clock starts.
    let (tenant, _) = signed_up(&client, url, token, "auth", concurrency).await?;
    let slug = tenant["slug"].as_str().context("tenant slug")?;
    let counter = Arc::new(AtomicU64::new(concurrency as u64 + 1));
    // Each worker drives its own keep-alive connection (see `lean_http`), opened before
    // the clock starts.
    let mut connections = Vec::new();
    for _ in 0..concurrency {
        connections.push(lean_http::Connection::open(url).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    let paths = Arc::new(AuthPaths::under(&format!("/t/{slug}")));
    for (w, mut connection) in connections.into_iter().enumerate() {
        let (paths, errors, counter) = (paths.clone(), errors.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                let (path, body) = match scenario {
                    Scenario::Signup => {
                        (&paths.signup, json!({"email": format!("s{n}-{w}@load.test"), "password": PASSWORD}))
                    }
                    _ => (&paths.login, json!({"email": format!("w{w}@load.test"), "password": PASSWORD})),
                };
                let body = serde_json::to_vec(&body).unwrap_or_default();
                match connection.post_json(path, &forwarded(n), body).await {
                    Ok((status, _)) if status.is_success() => {
                        latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    // The connection is gone: this worker cannot go on.
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            latencies
        }));
    }
    report(&format!("{scenario:?}"), concurrency, workers, errors).await
}

/// Creates a tenant named `prefix-<pid>` and signs up `accounts` accounts
/// (`w<n>@load.test`, [`PASSWORD`]): the tenant and each account's first refresh token.
async fn signed_up(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    prefix: &str,
    accounts: usize,
) -> anyhow::Result<(Value, Vec<String>)> {
    let slug = format!("{prefix}-{}", std::process::id());
    let tenant = create_tenant(client, url, token, &slug).await?;
    let mut tokens = Vec::new();
    for w in 0..accounts {
        let body = json!({"email": format!("w{w}@load.test"), "password": PASSWORD});
        let reply = post_json(client, &format!("{url}/t/{slug}/auth/signup"), w as u64 + 1, &body).await?;
        if !reply.status().is_success() {
            bail!("signup failed: {}", reply.status());
        }
        let set: Value = reply.json().await?;
        tokens.push(set["refresh_token"].as_str().context("signup failed: no refresh token")?.to_owned());
    }
    Ok((tenant, tokens))
}

/// A tenant named `prefix-<pid>` with `accounts` accounts that sign in with
/// [`PASSWORD`] (see [`signed_up`]); returns the tenant's base URL.
async fn login_tenant(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    prefix: &str,
    accounts: usize,
) -> anyhow::Result<String> {
    check_loopback(url)?;
    let (tenant, _) = signed_up(client, url, token, prefix, accounts).await?;
    Ok(format!("{url}/t/{}", tenant["slug"].as_str().context("tenant slug")?))
}

/// The cores this tool may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Closed-loop logins, one client per account, for `seconds`: logins per second.
/// `counter` numbers the requests (each gets its own client address).
async fn login_slice(
    client: &reqwest::Client,
    base: &str,
    accounts: usize,
    seconds: u64,
    counter: &Arc<AtomicU64>,
    errors: &Arc<AtomicU64>,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..accounts)
        .map(|w| {
            let (client, base, counter, errors) = (client.clone(), base.to_owned(), counter.clone(), errors.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let body = json!({"email": format!("w{w}@load.test"), "password": PASSWORD});
                    match post_json(&client, &format!("{base}/auth/login"), n, &body).await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            done += 1;
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                done
            })
        })
        .collect();
    let mut logins = 0;
    for worker in workers {
        logins += worker.await?;
    }
    Ok(logins as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON))
}

/// Logins at a fixed `rate` for `seconds`, each on its own schedule slot, spread over
/// the accounts. Latency runs from the slot, not from when a task got round to it (no
/// coordinated omission). Returns each successful login's (slot, latency in µs).
async fn open_loop_slice(
    client: &reqwest::Client,
    base: &str,
    accounts: usize,
    seconds: u64,
    rate: f64,
    counter: &Arc<AtomicU64>,
    errors: &Arc<AtomicU64>,
) -> anyhow::Result<Vec<(u64, u32)>> {
    let total = (rate * seconds as f64).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for slot in 0..total {
        let due = start + interval.mul_f64(slot as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, base, errors) = (client.clone(), base.to_owned(), errors.clone());
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let account = slot as usize % accounts.max(1);
        tasks.push(tokio::spawn(async move {
            let body = json!({"email": format!("w{account}@load.test"), "password": PASSWORD});
            match post_json(&client, &format!("{base}/auth/login"), n, &body).await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Some((slot, u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX)))
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }));
    }
    let mut done = Vec::with_capacity(tasks.len());
    for task in tasks {
        done.extend(task.await?);
    }
    Ok(done)
}

/// The `p` quantile of sorted values (0 when empty).
fn quantile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

async fn report(
    scenario: &str,
    concurrency: usize,
    workers: Vec<tokio::task::JoinHandle<Vec<u32>>>,
    errors: Arc<AtomicU64>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let cpu_before = cpu_split::Snapshot::take();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
    let cpu_after = cpu_split::Snapshot::take();
    let (cpu, steal) =
        (cpu_after.per_request_since(&cpu_before, all.len()), cpu_after.steal_percent_since(&cpu_before));
    all.sort_unstable();
    let pct = |p: f64| quantile(&all, p);
    Ok(json!({
        "scenario": scenario,
        "concurrency": concurrency,
        "requests": all.len(),
        "errors": errors.load(Ordering::Relaxed),
        // One decimal: at tens of logins per second, whole numbers hide percents.
        "requests_per_second": (all.len() as f64 / elapsed * 10.0).round() / 10.0,
        "p50_ms": f64::from(pct(0.50)) / 1000.0,
        "p90_ms": f64::from(pct(0.90)) / 1000.0,
        "p99_ms": f64::from(pct(0.99)) / 1000.0,
        // Where the run's CPU went, per request (from /proc; empty elsewhere).
        "cpu_ms_per_request": cpu,
        "host_steal_percent": steal,
    }))
}

async fn argon2_ceiling(seconds: u64) -> anyhow::Result<Value> {
    let cores = cores();
    // The ceiling is the best bare rate: each thread keeps its Argon2 memory between
    // verifies (as the server does). The allocating rate is shown for comparison.
    let (reused, one_verify_ms, one_verify_p99_ms) = bare_argon::verifies(cores, seconds, true)?;
    let (allocating, _, _) = bare_argon::verifies(cores, seconds.div_ceil(2), false)?;
    Ok(json!({
        "ceiling": "argon2id verify m=19456 t=2 p=1, memory reused",
        "cores": cores,
        "verifies_per_second": (reused * 10.0).round() / 10.0,
        "one_verify_ms_p50": one_verify_ms,
        // The host's own noise: bare verifies vary this much with nothing queued.
        "one_verify_ms_p99": one_verify_p99_ms,
        "verifies_per_second_allocating": (allocating * 10.0).round() / 10.0,
    }))
}

/// `GET url` from `concurrency` workers for `seconds`, reported under `label`.
async fn get_url(
    url: &str,
    bearer: Option<&str>,
    concurrency: usize,
    seconds: u64,
    label: &str,
) -> anyhow::Result<Value> {
    check_loopback(url)?;
    let client = client()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, bearer, errors) = (client.clone(), url.to_owned(), bearer.map(str::to_owned), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let mut request = client.get(&url);
                if let Some(token) = &bearer {
                    request = request.bearer_auth(token);
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    report(label, concurrency, workers, errors).await
}

async fn refresh_ceiling(
    url: &str,
    token: &str,
    database_url: &str,
    connections: u32,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Value> {
    check_loopback(url)?;
    let client = client()?;
    let mut chains =
        refresh_chains::StoreChains::open(&client, url, token, database_url, connections, concurrency).await?;
    let errors = Arc::new(AtomicU64::new(0));
    // Warm-up, not counted: on freshly created tables the first seconds run slower
    // (a run on a fresh Postgres database read 30 % below the next), which would flatter
    // the server's ratio against this ceiling.
    chains.rotate_for(Duration::from_secs(2), &errors).await?;
    errors.store(0, Ordering::Relaxed);
    let workers = refresh_chains::latencies_only(chains.spawn(Duration::from_secs(seconds), &errors));
    report("Refresh ceiling (store SQL, no HTTP)", concurrency, workers, errors).await
}

/// Logins at a fixed rate (see [`open_loop_slice`]).
async fn open_loop_login(url: &str, token: &str, accounts: usize, seconds: u64, rate: u32) -> anyhow::Result<Value> {
    let client = client()?;
    let accounts = accounts.clamp(1, 256);
    let base = login_tenant(&client, url, token, "open", accounts).await?;
    let counter = Arc::new(AtomicU64::new(100_000));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_split::Snapshot::take();
    // The schedule starts 100 ms after the slice is called (see `open_loop_slice`).
    let schedule_start = std::time::SystemTime::now() + Duration::from_millis(100);
    let by_slot = open_loop_slice(&client, &base, accounts, seconds, f64::from(rate), &counter, &errors).await?;
    let cpu_after = cpu_split::Snapshot::take();
    let (cpu, steal) =
        (cpu_after.per_request_since(&cpu_before, by_slot.len()), cpu_after.steal_percent_since(&cpu_before));
    let mut all: Vec<u32> = by_slot.iter().map(|(_, l)| *l).collect();
    // With GATEHOUSE_LOAD_TRACE set, every login's slot and latency (µs) go to stderr, to
    // see whether the tail is spread over the run or bunched (a cold pool, a checkpoint).
    // The first line gives the schedule's start in Unix milliseconds, to line the trace
    // up with what else was recorded on the host.
    if std::env::var_os("GATEHOUSE_LOAD_TRACE").is_some() {
        let start_ms = schedule_start.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        eprintln!("start_unix_ms {start_ms} rate {rate}");
        for (n, latency) in &by_slot {
            eprintln!("{n} {latency}");
        }
    }
    all.sort_unstable();
    let pct = |p: f64| quantile(&all, p);
    Ok(json!({
        "scenario": "Login (open loop)",
        "target_rate": rate,
        "requests": all.len(),
        "errors": errors.load(Ordering::Relaxed),
        "p50_ms": f64::from(pct(0.50)) / 1000.0,
        "p90_ms": f64::from(pct(0.90)) / 1000.0,
        "p99_ms": f64::from(pct(0.99)) / 1000.0,
        // Where the run's CPU went, per login (from /proc; empty elsewhere).
        "cpu_ms_per_login": cpu,
        "host_steal_percent": steal,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_read_sorted_values() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&sorted, 0.5), 51);
        assert_eq!(quantile(&sorted, 0.99), 100);
        assert_eq!(quantile::<u32>(&[], 0.99), 0);
    }
}
