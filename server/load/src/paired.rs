//! Measures paired with their ceiling in the same run, slice by slice, because the
//! host's speed moves within seconds: `login-ratio` (sign-ins against bare Argon2) and
//! `login-tail` (the sign-in p99 at a share of the peak, against one bare verify and a
//! bare hashing queue at the same share), and `refresh-ratio` (refreshes against the
//! bare store rotation).

use crate::refresh_chains::{HttpChains, StoreChains};
use crate::{bare_argon, client, cores, cpu_split, login_slice, login_tenant, open_loop_slice, quantile};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The median, least and greatest of per-round figures (at least one).
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// `x` rounded to `places` decimal places, for printed figures.
fn rounded(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// Keycloak's published sizing: password logins per second per vCPU of Keycloak itself
/// (its database is sized apart).
const KEYCLOAK_LOGINS_PER_VCPU: f64 = 15.0;
/// Keycloak's published sizing: refresh-token grants per second per vCPU.
const KEYCLOAK_REFRESHES_PER_VCPU: f64 = 120.0;

/// The CPU milliseconds Gatehouse's own process spent per operation (its hashing
/// threads and the rest) in one `cpu_ms_per_…` split of [`cpu_split`].
fn server_ms(cpu: &Value) -> f64 {
    ["gatehouse_hashing", "gatehouse_other"].iter().filter_map(|group| cpu.get(group).and_then(Value::as_f64)).sum()
}

/// Per-core figures to set beside Keycloak's sizing (`keycloak`, per vCPU), from the
/// rounds' served rates and server CPU per operation (medians): the rate over every core
/// of this host, which also runs the database and this tool; and what one core given to
/// the server alone does at the measured cost, the database excluded as Keycloak's
/// sizing excludes its own.
fn per_core(rates: Vec<f64>, server_ms: Vec<f64>, cores: usize, keycloak: f64) -> Value {
    let (rate, _, _) = spread(rates);
    let (ms, _, _) = spread(server_ms);
    json!({
        "host_cores": cores,
        "per_host_core": rounded(rate / cores.max(1) as f64, 1),
        "per_server_core": if ms > 0.0 { rounded(1000.0 / ms, 1) } else { 0.0 },
        "keycloak_sizing_per_vcpu": keycloak,
    })
}

/// Bare Argon2 verifies on every core for `seconds`: (verifies/s, median ms, p99 ms).
async fn ceiling_slice(seconds: u64) -> anyhow::Result<(f64, f64, f64)> {
    let cores = cores();
    tokio::task::spawn_blocking(move || bare_argon::verifies(cores, seconds, true)).await?
}

/// See [`crate::Command::LoginRatio`].
pub async fn login_ratio(url: &str, token: &str, accounts: usize, rounds: usize, slice: u64) -> anyhow::Result<Value> {
    let client = client()?;
    let base = login_tenant(&client, url, token, "ratio", accounts).await?;
    let counter = Arc::new(AtomicU64::new(1_000_000));
    let errors = Arc::new(AtomicU64::new(0));
    let mut before = ceiling_slice(slice).await?.0;
    let (mut ratios, mut rates, mut server_costs, mut rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Where each sign-in's CPU went (hashing threads, the rest of the server,
        // Postgres, Redis, this tool), so the ratio can be read as a quotient of costs.
        let (cpu_before, started) = (cpu_split::Snapshot::take(), Instant::now());
        let rate = login_slice(&client, &base, accounts, slice, &counter, &errors).await?;
        let logins = (rate * started.elapsed().as_secs_f64()).round() as usize;
        let cpu = cpu_split::Snapshot::take().per_request_since(&cpu_before, logins);
        let after = ceiling_slice(slice).await?.0;
        let ratio = rate / ((before + after) / 2.0).max(f64::EPSILON);
        server_costs.push(server_ms(&cpu));
        rates.push(rate);
        rows.push(json!({"ceiling_before": rounded(before, 2), "logins_per_second": rounded(rate, 2), "ceiling_after": rounded(after, 2), "ratio": rounded(ratio, 2), "cpu_ms_per_login": cpu}));
        ratios.push(ratio);
        before = after;
    }
    let (median, min, max) = spread(ratios);
    Ok(json!({
        "scenario": "Login / Argon2 ceiling, alternating slices",
        "concurrency": accounts,
        "slice_seconds": slice,
        "errors": errors.load(Ordering::Relaxed),
        "rounds": rows,
        "ratio_median": rounded(median, 3),
        "ratio_min": rounded(min, 3),
        "ratio_max": rounded(max, 3),
        "logins_per_core": per_core(rates, server_costs, cores(), KEYCLOAK_LOGINS_PER_VCPU),
    }))
}

/// How [`refresh_ratio`] measures: see [`crate::Command::RefreshRatio`].
pub struct RefreshShape {
    /// Chains of refresh tokens on each side.
    pub chains: usize,
    pub rounds: usize,
    /// Seconds per slice.
    pub slice: u64,
    /// Postgres connections the bare side opens.
    pub connections: u32,
}

/// One slice's figures: rotations per second, p99 in ms, and the CPU each rotation
/// cost each process group (from `/proc`).
struct SliceFigures {
    rate: f64,
    p99_ms: f64,
    cpu: Value,
}

impl SliceFigures {
    /// Times one slice run by `slice` (which returns each task's latencies in µs).
    async fn of<F>(slice: F) -> anyhow::Result<Self>
    where
        F: Future<Output = anyhow::Result<Vec<Vec<u32>>>>,
    {
        let cpu_before = cpu_split::Snapshot::take();
        let started = Instant::now();
        let mut all: Vec<u32> = slice.await?.into_iter().flatten().collect();
        let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
        let cpu = cpu_split::Snapshot::take().per_request_since(&cpu_before, all.len());
        all.sort_unstable();
        Ok(Self { rate: all.len() as f64 / elapsed, p99_ms: f64::from(quantile(&all, 0.99)) / 1000.0, cpu })
    }
}

/// See [`crate::Command::RefreshRatio`].
pub async fn refresh_ratio(url: &str, token: &str, database_url: &str, shape: &RefreshShape) -> anyhow::Result<Value> {
    let client = client()?;
    let mut bare = StoreChains::open(&client, url, token, database_url, shape.connections, shape.chains).await?;
    let mut served = HttpChains::open(&client, url, token, shape.chains).await?;
    let errors = Arc::new(AtomicU64::new(0));
    // Warm-up, not counted: fresh tables run slower for their first seconds.
    let warm = Duration::from_secs(2);
    bare.rotate_for(warm, &errors).await?;
    served.refresh_for(warm, &errors).await?;
    errors.store(0, Ordering::Relaxed);

    let slice = Duration::from_secs(shape.slice);
    let mut before = SliceFigures::of(bare.rotate_for(slice, &errors)).await?;
    let (mut ratios, mut p99_ratios, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rates, mut server_costs) = (Vec::new(), Vec::new());
    for _ in 0..shape.rounds {
        let server = SliceFigures::of(served.refresh_for(slice, &errors)).await?;
        let after = SliceFigures::of(bare.rotate_for(slice, &errors)).await?;
        let ratio = server.rate / ((before.rate + after.rate) / 2.0).max(f64::EPSILON);
        let p99_ratio = server.p99_ms / ((before.p99_ms + after.p99_ms) / 2.0).max(f64::EPSILON);
        rows.push(json!({
            "ceiling_before": rounded(before.rate, 2),
            "refreshes_per_second": rounded(server.rate, 2),
            "ceiling_after": rounded(after.rate, 2),
            "ratio": rounded(ratio, 2),
            "p99_ms": server.p99_ms,
            "ceiling_p99_ms": after.p99_ms,
            "cpu_ms_per_refresh": server.cpu,
            "cpu_ms_per_bare_rotation": after.cpu,
        }));
        ratios.push(ratio);
        p99_ratios.push(p99_ratio);
        rates.push(server.rate);
        server_costs.push(server_ms(&server.cpu));
        before = after;
    }
    let (median, min, max) = spread(ratios);
    let (p99_median, _, _) = spread(p99_ratios);
    Ok(json!({
        "scenario": "Refresh / bare store rotation, alternating slices",
        "concurrency": shape.chains,
        "bare_connections": shape.connections,
        "slice_seconds": shape.slice,
        "errors": errors.load(Ordering::Relaxed),
        "rounds": rows,
        "ratio_median": rounded(median, 3),
        "ratio_min": rounded(min, 3),
        "ratio_max": rounded(max, 3),
        "p99_over_ceiling_p99_median": rounded(p99_median, 3),
        "refreshes_per_core": per_core(rates, server_costs, cores(), KEYCLOAK_REFRESHES_PER_VCPU),
    }))
}

/// How [`login_tail`] measures: see [`crate::Command::LoginTail`].
pub struct TailShape {
    pub accounts: usize,
    pub rounds: usize,
    pub slice: u64,
    pub open: u64,
    pub load: f64,
}

/// How far a round's load may stray from the one asked for and still count as steady.
const STEADY_LOAD_TOLERANCE: f64 = 0.10;

/// Whether a round offered `effective` of the peak it met, within
/// [`STEADY_LOAD_TOLERANCE`] of the `target` share.
fn steady(effective: f64, target: f64) -> bool {
    (effective / target.max(f64::EPSILON) - 1.0).abs() <= STEADY_LOAD_TOLERANCE
}

/// See [`crate::Command::LoginTail`].
pub async fn login_tail(url: &str, token: &str, shape: &TailShape) -> anyhow::Result<Value> {
    let client = client()?;
    let base = login_tenant(&client, url, token, "tail", shape.accounts).await?;
    let counter = Arc::new(AtomicU64::new(2_000_000));
    let errors = Arc::new(AtomicU64::new(0));
    // Warm-up, not counted: the first counted round should not pay for the server's
    // and this tool's cold connections and caches.
    login_slice(&client, &base, shape.accounts, shape.slice, &counter, &errors).await?;
    let mut before = ceiling_slice(shape.slice).await?;
    let (mut quotients, mut steady_quotients, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    let mut bare_quotients = Vec::new();
    for _ in 0..shape.rounds {
        let peak = login_slice(&client, &base, shape.accounts, shape.slice, &counter, &errors).await?;
        let rate = peak * shape.load;
        let (host_before, hashes_before) = (cpu_split::HostTicks::now(), hash_totals(&client, url).await);
        let logins = open_loop_slice(&client, &base, shape.accounts, shape.open, rate, &counter, &errors).await?;
        let steal = cpu_split::HostTicks::now().zip(host_before).and_then(|(now, then)| now.steal_percent_since(then));
        // Inside the server over the slice: a hash's mean run time on its thread and mean
        // wait for one. Beside the bare verify, they tell a slow hash from a long queue.
        let hashes = hash_totals(&client, url).await.zip(hashes_before).map(|(now, then)| {
            let count = (now.2 - then.2).max(1.0);
            (rounded((now.0 - then.0) / count * 1000.0, 1), rounded((now.1 - then.1) / count * 1000.0, 1))
        });
        // The peak again, right after: the host's speed moves within seconds, and a
        // round whose capacity fell (or rose) did not run at the share it was asked for.
        let peak_after = login_slice(&client, &base, shape.accounts, shape.slice, &counter, &errors).await?;
        let after = ceiling_slice(shape.slice).await?;
        // The control: bare verifies at the same share of the bare ceiling, queued for
        // one thread per core as the server queues hashes — the tail of this host alone.
        let (cores, bare_rate, open) = (cores(), after.0 * shape.load, shape.open);
        let bare = tokio::task::spawn_blocking(move || bare_argon::fixed_rate(cores, bare_rate, open)).await??;
        let effective = rate / ((peak + peak_after) / 2.0).max(f64::EPSILON);
        let mut latencies: Vec<u32> = logins.iter().map(|(_, l)| *l).collect();
        latencies.sort_unstable();
        let p50 = f64::from(quantile(&latencies, 0.50)) / 1000.0;
        let p99 = f64::from(quantile(&latencies, 0.99)) / 1000.0;
        let verify = (before.1 + after.1) / 2.0;
        let quotient = p99 / verify.max(f64::EPSILON);
        let bare_p99 = f64::from(quantile(&bare, 0.99)) / 1000.0;
        let bare_quotient = bare_p99 / verify.max(f64::EPSILON);
        rows.push(json!({
            "ceiling_before": rounded(before.0, 1), "verify_ms_p50_before": rounded(before.1, 1),
            "peak_logins_per_second": rounded(peak, 1), "offered_per_second": rounded(rate, 1), "logins": logins.len(),
            "p50_ms": rounded(p50, 1), "p99_ms": rounded(p99, 1),
            "peak_after_logins_per_second": rounded(peak_after, 1),
            "effective_load": rounded(effective, 2),
            "ceiling_after": rounded(after.0, 1), "verify_ms_p50_after": rounded(after.1, 1),
            "p99_over_verify": rounded(quotient, 2),
            "server_hash_ms_mean": hashes.map(|h| h.0), "server_hash_queue_ms_mean": hashes.map(|h| h.1),
            "bare_offered_per_second": rounded(bare_rate, 1),
            "bare_p50_ms": rounded(f64::from(quantile(&bare, 0.50)) / 1000.0, 1), "bare_p99_ms": rounded(bare_p99, 1),
            "bare_p99_over_verify": rounded(bare_quotient, 2),
            // A round whose tail comes with stolen time was stalled by the host.
            "host_steal_percent": steal,
        }));
        quotients.push(quotient);
        bare_quotients.push(bare_quotient);
        if steady(effective, shape.load) {
            steady_quotients.push(quotient);
        }
        before = after;
    }
    let steady_rounds = steady_quotients.len();
    let steady_median = (!steady_quotients.is_empty()).then(|| rounded(spread(steady_quotients).0, 2));
    let (median, min, max) = spread(quotients);
    Ok(json!({
        "scenario": "Login p99 at a fixed share of peak / one bare verify",
        "load": shape.load,
        "concurrency": shape.accounts,
        "errors": errors.load(Ordering::Relaxed),
        "rounds": rows,
        "p99_over_verify_median": rounded(median, 2),
        "p99_over_verify_min": rounded(min, 2),
        "p99_over_verify_max": rounded(max, 2),
        // Rounds whose offered rate was within 10 % of the asked share of the mean
        // of the peaks just before and after them, and their median.
        "steady_rounds": steady_rounds,
        "p99_over_verify_median_steady": steady_median,
        // The same quotient for bare verifies queued at the same share, no server.
        "bare_p99_over_verify_median": rounded(spread(bare_quotients).0, 2),
    }))
}

/// The server's password-hash totals from its `/metrics`: (seconds run, seconds
/// queued, hashes), or `None` when the page or the series are missing.
async fn hash_totals(client: &reqwest::Client, url: &str) -> Option<(f64, f64, f64)> {
    let text = client.get(format!("{url}/metrics")).send().await.ok()?.text().await.ok()?;
    parse_hash_totals(&text)
}

/// [`hash_totals`] from the text of a Prometheus exposition.
fn parse_hash_totals(text: &str) -> Option<(f64, f64, f64)> {
    let value = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
    };
    Some((
        value("gatehouse_password_hash_seconds_sum")?,
        value("gatehouse_password_hash_queue_seconds_sum")?,
        value("gatehouse_password_hash_seconds_count")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice's rate is its rotations over its wall time, and its p99 comes from all
    /// tasks' latencies together.
    #[tokio::test]
    async fn slice_figures_pool_the_tasks_and_divide_by_wall_time() -> anyhow::Result<()> {
        let figures = SliceFigures::of(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(vec![vec![1_000; 60], vec![2_000; 39], vec![9_000]])
        })
        .await?;
        // 100 rotations in at least 0.2 s: at most 500/s (and well above 50/s).
        assert!(figures.rate <= 500.0 && figures.rate > 50.0, "rate {}", figures.rate);
        assert!((figures.p99_ms - 9.0).abs() < f64::EPSILON, "p99 {}", figures.p99_ms);
        Ok(())
    }

    /// The server's cost is its two thread groups', never the database's or this tool's.
    #[test]
    fn the_server_cost_adds_its_hashing_and_other_threads_only() {
        let cpu = json!({"gatehouse_hashing": 17.5, "gatehouse_other": 0.5, "postgres": 1.2, "load_tool": 0.2});
        assert!((server_ms(&cpu) - 18.0).abs() < 1e-9);
        assert!((server_ms(&json!({"gatehouse_other": 0.25, "postgres": 0.5})) - 0.25).abs() < 1e-9);
    }

    /// Per host core divides the median rate by the cores; per server core inverts the
    /// median CPU cost; a round that measured no cost reads zero, not infinity.
    #[test]
    fn per_core_figures_come_from_the_medians() {
        let figures = per_core(vec![2_000.0, 1_800.0, 2_400.0], vec![0.30, 0.25, 0.20], 2, 120.0);
        assert_eq!(figures["per_host_core"], json!(1_000.0));
        assert_eq!(figures["per_server_core"], json!(4_000.0));
        assert_eq!(figures["host_cores"], json!(2));
        assert_eq!(figures["keycloak_sizing_per_vcpu"], json!(120.0));
        assert_eq!(per_core(vec![5.0], vec![0.0], 2, 15.0)["per_server_core"], json!(0.0));
    }

    #[test]
    fn spread_gives_median_least_and_greatest() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
    }

    #[test]
    fn a_round_is_steady_only_near_the_asked_share() {
        assert!(steady(0.80, 0.8));
        assert!(steady(0.87, 0.8), "9 % above the asked share");
        assert!(steady(0.73, 0.8), "9 % below");
        assert!(!steady(0.90, 0.8), "the capacity fell by a tenth during the round");
        assert!(!steady(0.70, 0.8));
    }

    #[test]
    fn hash_totals_come_from_the_exposition() {
        let text = "# HELP gatehouse_password_hash_seconds Time a password hash ran.\n\
                    gatehouse_password_hash_queue_seconds_sum 0.5\n\
                    gatehouse_password_hash_queue_seconds_count 10\n\
                    gatehouse_password_hash_seconds_sum 0.25\n\
                    gatehouse_password_hash_seconds_count 10\n\
                    gatehouse_password_hash_seconds_bucket{le=\"0.001\"} 0\n";
        assert_eq!(parse_hash_totals(text), Some((0.25, 0.5, 10.0)));
        assert_eq!(parse_hash_totals("gatehouse_password_hash_seconds_sum 1\n"), None, "series missing");
    }
}
