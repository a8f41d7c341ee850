//! `gatehouse-load`: drives a running Gatehouse over real HTTP and reports throughput and
//! latency, always beside a ceiling measured in the same run (this machine is shared
//! and noisy, so only ratios compare across runs). Also measures cold start and idle
//! memory of the binary. Loopback only; every loop is bounded in time and count.

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates tenants (and one secret key) through the API.
    Seed {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Operator token.
        #[arg(long, env = "GATEHOUSE_LOAD_TOKEN")]
        token: String,
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Runs a scenario for a fixed time and prints one JSON line of results.
    Run {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Operator token (a tenant and secret key are created for tenant scenarios).
        #[arg(long, env = "GATEHOUSE_LOAD_TOKEN")]
        token: String,
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to run (at most 300).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed { url, token, tenants, concurrency } => seed(&url, &token, tenants, concurrency).await,
        Command::Run { url, token, scenario, concurrency, seconds } => {
            run(&url, &token, scenario, concurrency, seconds.min(300)).await
        }
        Command::Startup { binary, runs, database_url, master_key } => {
            startup(&binary, runs.min(50), database_url, master_key).await
        }
    }
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

async fn seed(url: &str, token: &str, tenants: usize, concurrency: usize) -> anyhow::Result<()> {
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
    println!("{}", json!({"seeded_tenants": tenants, "seconds": started.elapsed().as_secs_f64()}));
    Ok(())
}

async fn run(url: &str, token: &str, scenario: Scenario, concurrency: usize, seconds: u64) -> anyhow::Result<()> {
    check_loopback(url)?;
    let client = client()?;
    let (path, bearer) = match scenario {
        Scenario::Health => ("/healthz".to_owned(), token.to_owned()),
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
    let target = format!("{url}{path}");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, 1024) {
        let (client, target, bearer, errors) = (client.clone(), target.clone(), bearer.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match client.get(&target).bearer_auth(&bearer).send().await {
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
    let started = Instant::now();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{}",
        json!({
            "scenario": format!("{scenario:?}"),
            "concurrency": concurrency,
            "requests": all.len(),
            "errors": errors.load(Ordering::Relaxed),
            "requests_per_second": (all.len() as f64 / elapsed).round(),
            "p50_ms": f64::from(pct(0.50)) / 1000.0,
            "p99_ms": f64::from(pct(0.99)) / 1000.0,
        })
    );
    Ok(())
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
) -> anyhow::Result<()> {
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
    println!(
        "{}",
        json!({
            "runs": runs,
            "ready_ms_median": times.get(times.len() / 2),
            "ready_ms_max": times.last(),
            "idle_rss_mib_median": rss.get(rss.len() / 2).map(|k| *k as f64 / 1024.0),
        })
    );
    Ok(())
}
