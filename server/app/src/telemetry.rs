//! Logs (tracing, text or JSON) and Prometheus metrics.

use crate::config::{Config, LogFormat};
use gatehouse_core::hash_threads::{JobTiming, TimingObserver};
use gatehouse_core::store::PoolStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber (once per process; later calls do nothing).
pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Labels of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template (never the raw path, to bound cardinality).
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    pool_size: Gauge,
    pool_idle: Gauge,
    hash_wait: Histogram,
    hash_run: Histogram,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("db_pool_connections", "Open database connections", pool_size.clone());
        registry.register("db_pool_idle_connections", "Idle database connections", pool_idle.clone());
        // 1 ms to ~2 s in steps of 1.5: fine enough to tell a verify (tens of ms) that
        // ran alone from one that was stretched or queued behind others.
        let hash_histogram = || Histogram::new(exponential_buckets(0.001, 1.5, 20));
        let (hash_wait, hash_run) = (hash_histogram(), hash_histogram());
        registry.register(
            "password_hash_queue_seconds",
            "Time a password hash waited for a hashing thread (a rising tail means the hashing threads are saturated)",
            hash_wait.clone(),
        );
        registry.register("password_hash_seconds", "Time a password hash ran on its thread", hash_run.clone());
        Self { registry, requests, latency, pool_size, pool_idle, hash_wait, hash_run }
    }
}

impl Metrics {
    /// Records a finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.requests.get_or_create(&labels).inc();
        let route = RouteLabels { method: labels.method, route: labels.route };
        self.latency.get_or_create(&route).observe(seconds);
    }

    /// Records each password hash's queue wait and run time (for
    /// [`gatehouse_core::password::PasswordHasher::observed`]).
    pub fn hash_observer(&self) -> TimingObserver {
        let (wait, run) = (self.hash_wait.clone(), self.hash_run.clone());
        Arc::new(move |t: JobTiming| {
            wait.observe(t.waited.as_secs_f64());
            run.observe(t.ran.as_secs_f64());
        })
    }

    /// The text exposition, with pool gauges read now.
    pub fn render(&self, pool: PoolStats) -> String {
        self.pool_size.set(i64::from(pool.size));
        self.pool_idle.set(i64::from(pool.idle));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
