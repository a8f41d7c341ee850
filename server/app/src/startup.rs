//! Start-up: open the stores, resolve the master key, bootstrap the first operator
//! token, bind, and serve until told to stop (finishing in-flight requests).

use crate::config::{Config, Database, MasterKey, MasterKeySource};
use crate::http;
use crate::state::{AppState, AppStateInner};
use crate::telemetry::Metrics;
use anyhow::{Context, bail};
use axum::serve::{ListenerExt, TapIo};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::ephemeral::EphemeralStore;
use gatehouse_core::ephemeral::memory::MemoryStore;
use gatehouse_core::password::PasswordHasher;
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::{ServiceConfig, Services};
use gatehouse_core::signing::Sealer;
use gatehouse_core::store::Store;
use gatehouse_ephemeral_redis::RedisStore;
use gatehouse_store_postgres::PgStore;
use gatehouse_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// SQLite reader connections.
const SQLITE_READERS: u32 = 4;

/// Opens the configured database; SQLite is migrated here, Postgres must already be.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database {
        Database::Sqlite { url, .. } => Arc::new(
            SqliteStore::open(url, SQLITE_READERS).await.context("GATEHOUSE_DATABASE_URL: cannot open SQLite")?,
        ),
        Database::Postgres { url } => {
            let migrated = PgStore::is_migrated(url).await.context("GATEHOUSE_DATABASE_URL: cannot reach Postgres")?;
            if !migrated {
                bail!("GATEHOUSE_DATABASE_URL: the database schema is not up to date; run `gatehouse migrate` first");
            }
            let store = PgStore::connect(url, config.database_max_connections)
                .await
                .context("GATEHOUSE_DATABASE_URL: cannot connect to Postgres")?;
            Arc::new(store)
        }
    })
}

/// Applies migrations (`gatehouse migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    match &config.database {
        Database::Sqlite { url, .. } => drop(SqliteStore::open(url, 1).await?),
        Database::Postgres { url } => PgStore::migrate(url).await?,
    }
    Ok(())
}

/// Opens Redis, or the in-process store when none is configured.
pub async fn open_ephemeral(config: &Config) -> anyhow::Result<Arc<dyn EphemeralStore>> {
    Ok(match &config.redis_url {
        Some(urls) => Arc::new(
            RedisStore::connect(urls, &config.redis_prefix).await.context("GATEHOUSE_REDIS_URL: cannot connect")?,
        ),
        None => Arc::new(MemoryStore::new()),
    })
}

/// Reads the master key, generating the file beside the SQLite database on first start.
pub fn resolve_master_key(source: &MasterKeySource) -> anyhow::Result<MasterKey> {
    match source {
        MasterKeySource::Given(key) => Ok(key.clone()),
        MasterKeySource::File(path) => read_or_create_key_file(path),
    }
}

fn read_or_create_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let key = MasterKey::generate();
            file.write_all(key.encode().as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("GATEHOUSE_MASTER_KEY: cannot write {}", path.display()))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("GATEHOUSE_MASTER_KEY: cannot read {}", path.display()))?;
            MasterKey::parse(&text)
                .map_err(|m| anyhow::anyhow!("GATEHOUSE_MASTER_KEY: the key file {} {m}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("GATEHOUSE_MASTER_KEY: cannot create {}", path.display())),
    }
}

/// Password hashes run at most one per core at a time.
fn hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Everything start-up produces before binding.
#[derive(Debug)]
pub struct Prepared {
    /// Application state.
    pub state: AppState,
    /// The bootstrap operator token, when one was just created.
    pub bootstrap_token: Option<SecretString>,
}

/// Opens stores and wires services.
pub async fn prepare(config: Config) -> anyhow::Result<Prepared> {
    prepare_with(config, true).await
}

/// Opens stores and wires services; `bootstrap` creates the first operator token when
/// none exists (only `serve` does, since only it prints the token).
pub async fn prepare_with(config: Config, bootstrap: bool) -> anyhow::Result<Prepared> {
    let master_key = resolve_master_key(&config.master_key)?;
    let store = open_store(&config).await?;
    let ephemeral = open_ephemeral(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let metrics = Arc::new(Metrics::default());
    let hasher =
        PasswordHasher::observed(config.argon2, hash_concurrency(), config.argon2_nice, Some(metrics.hash_observer()))?;
    let services = Services::new(
        store.clone(),
        ephemeral.clone(),
        clock.clone(),
        ServiceConfig {
            audit_reads: config.audit_reads,
            break_glass_token: config.admin_token.clone(),
            password_hasher: hasher,
            sealer: Arc::new(Sealer::new(&master_key.0)?),
            public_url: config.public_url.as_str().to_owned(),
            resolver: Arc::new(crate::dns::HickoryTxt::new(config.dns_resolver)?),
        },
    );
    let bootstrap_token =
        if bootstrap && config.admin_token.is_none() { services.admin_tokens.bootstrap().await? } else { None };
    let state = AppState::new(AppStateInner {
        services,
        store,
        ephemeral,
        clock,
        config: Arc::new(config),
        metrics,
        graphql: crate::graphql::schema(),
    });
    Ok(Prepared { state, bootstrap_token })
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The address it listens on.
    pub local_addr: SocketAddr,
    /// The bootstrap operator token, when one was just created.
    pub bootstrap_token: Option<SecretString>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    jobs: Vec<JoinHandle<()>>,
}

impl Server {
    /// Stops accepting connections, lets in-flight requests finish, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        for job in &self.jobs {
            job.abort();
        }
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// Starts serving on the configured address (port 0 picks a free one).
pub async fn start(config: Config) -> anyhow::Result<Server> {
    let listen = config.listen;
    let Prepared { state, bootstrap_token } = prepare(config).await?;
    let listener = bind(listen).await?;
    let local_addr = axum::serve::Listener::local_addr(&listener)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (email, sms) = crate::delivery::transports(&state.config)?;
    let delivery = gatehouse_core::services::delivery::Delivery::new(
        state.store.clone(),
        state.clock.clone(),
        state.services.messenger.clone(),
        email,
        sms,
    );
    let jobs = vec![
        tokio::spawn(rotate_keys_on_schedule(state.services.keys.clone(), state.config.key_rotation_check)),
        tokio::spawn(sweep_on_schedule(
            gatehouse_core::services::Retention::new(state.store.clone(), state.clock.clone()),
            SWEEP_EVERY,
        )),
        tokio::spawn(crate::delivery::run(
            delivery,
            state.config.delivery_poll,
            state.services.messenger.wake_signal(),
        )),
    ];
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server { local_addr, bootstrap_token, stop, task, jobs })
}

/// The API's listener: connections it accepts send small writes at once.
///
/// `axum::serve` leaves Nagle's algorithm on (axum 0.8 moved the choice to the
/// listener). With it on, a second small write while the first is unacknowledged — a
/// pipelined or streamed reply — waits for the peer's delayed ACK, up to 40 ms on Linux.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<TapIo<TcpListener, fn(&mut TcpStream)>> {
    let listener =
        TcpListener::bind(listen).await.with_context(|| format!("GATEHOUSE_LISTEN: cannot listen on {listen}"))?;
    Ok(listener.tap_io(without_nagle as fn(&mut TcpStream)))
}

/// Turns Nagle's algorithm off on an accepted connection (a failure only costs latency).
fn without_nagle(stream: &mut TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// Every `every`, rotates the keys of tenants whose active key is past its period. Every
/// replica runs this; the store rotates a due tenant once (ADR 7).
async fn rotate_keys_on_schedule(keys: gatehouse_core::services::KeyService, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; start-up need not wait for a sweep
    loop {
        ticker.tick().await;
        match keys.rotate_due_tenants().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rotated = n, "scheduled signing-key rotation"),
            Err(e) => tracing::warn!(error = %e, "scheduled signing-key rotation failed"),
        }
    }
}

/// How often what ended is swept (ADR 23).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Every `every`, deletes the sessions that ended a retention period ago, with their
/// refresh tokens, the one-time secrets that expired that long ago (ADR 23), and the
/// delivery records of messages sent or given up a month ago (ADR 25). Every
/// replica runs this; each batch deletes what is still there, so replicas only share
/// the work.
async fn sweep_on_schedule(retention: gatehouse_core::services::Retention, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; a start (or restart) need not sweep
    loop {
        ticker.tick().await;
        log_sweep("ended sessions and their refresh tokens", retention.sweep_ended_sessions().await);
        log_sweep("expired one-time secrets", retention.sweep_expired_one_time_secrets().await);
        log_sweep("the delivery records of finished messages", retention.sweep_finished_messages().await);
    }
}

/// Logs what one sweep did: the rows it deleted, or why it failed (the next period
/// tries again).
fn log_sweep(what: &str, swept: Result<u64, gatehouse_core::error::ServiceError>) {
    match swept {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "swept {what}"),
        Err(e) => tracing::warn!(error = %e, "sweeping {what} failed"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::bind;
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let mut listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(!client.nodelay().unwrap(), "a fresh client socket starts with Nagle on");
        let (accepted, peer) = listener.accept().await;
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(accepted.nodelay().unwrap(), "the server's side of the connection has TCP_NODELAY set");
    }
}
