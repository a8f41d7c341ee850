//! `suite`: every measure of the core-authentication targets (docs/benchmarks.md) in one
//! command. Each run gets a fresh database and a fresh server started here with the
//! benchmark environment, so a figure never depends on what an earlier run left behind,
//! and the summary sets the median of the runs beside each target: on a shared host a
//! single run of one binary can land on either side of a line it meets by the median.

use crate::{Scenario, paired, run_auth};
use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What [`run`] measures: see [`crate::Command::Suite`].
pub struct Shape {
    /// The gatehouse binary.
    pub binary: String,
    /// A Postgres database to create each run's database from (with `redis`).
    pub postgres: Option<String>,
    /// Redis for the Postgres runs.
    pub redis: Option<String>,
    /// Runs per backend.
    pub runs: usize,
    /// Rounds of the two ratios per run.
    pub rounds: usize,
    /// Rounds of the sign-in tail per run.
    pub tail_rounds: usize,
}

/// Connections the server's pool and the bare rotation each open (the benchmarks'
/// `GATEHOUSE_DATABASE_MAX_CONNECTIONS`).
const POOL: u32 = 10;
/// Seconds per slice of the paired measures.
const SLICE_SECONDS: u64 = 3;
/// How long a started server may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Which side of its line a figure must fall on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, figure: f64) -> bool {
        match self {
            Self::AtLeast(line) => figure >= line,
            Self::AtMost(line) => figure <= line,
        }
    }

    fn label(self) -> String {
        match self {
            Self::AtLeast(line) => format!("≥ {line:.2}"),
            Self::AtMost(line) => format!("≤ {line:.2}"),
        }
    }
}

/// One figure the suite reports: where it is read from a measure's output, and its
/// target if it has one.
struct Figure {
    measure: Measure,
    label: &'static str,
    /// JSON pointer into the measure's output.
    pointer: &'static str,
    target: Option<Target>,
}

/// The measures of one run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    RefreshRatio,
    LoginRatio,
    LoginTail,
    Jwks,
    Signup,
}

const MEASURES: [Measure; 5] =
    [Measure::RefreshRatio, Measure::LoginRatio, Measure::LoginTail, Measure::Jwks, Measure::Signup];

const FIGURES: [Figure; 8] = [
    Figure {
        measure: Measure::RefreshRatio,
        label: "refreshes ÷ bare store rotation",
        pointer: "/ratio_median",
        target: Some(Target::AtLeast(0.80)),
    },
    Figure {
        measure: Measure::LoginRatio,
        label: "sign-ins ÷ bare Argon2 verifies",
        pointer: "/ratio_median",
        target: Some(Target::AtLeast(0.90)),
    },
    Figure {
        measure: Measure::LoginTail,
        label: "sign-in p99 at 80 % of peak ÷ one verify",
        pointer: "/p99_over_verify_median",
        target: Some(Target::AtMost(2.5)),
    },
    Figure {
        measure: Measure::LoginTail,
        label: "the same for a bare hashing queue (control)",
        pointer: "/bare_p99_over_verify_median",
        target: None,
    },
    Figure {
        measure: Measure::RefreshRatio,
        label: "refreshes per server core (Keycloak: 120 per vCPU)",
        pointer: "/refreshes_per_core/per_server_core",
        target: None,
    },
    Figure {
        measure: Measure::LoginRatio,
        label: "sign-ins per server core (Keycloak: 15 per vCPU)",
        pointer: "/logins_per_core/per_server_core",
        target: None,
    },
    Figure { measure: Measure::Jwks, label: "JWKS requests per second", pointer: "/requests_per_second", target: None },
    Figure { measure: Measure::Signup, label: "sign-ups per second", pointer: "/requests_per_second", target: None },
];

/// The backends a run can use.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite + in-process",
            Self::Postgres => "Postgres + Redis",
        }
    }
}

/// See [`crate::Command::Suite`].
pub async fn run(shape: &Shape) -> anyhow::Result<Value> {
    let mut backends = vec![Backend::Sqlite];
    if shape.postgres.is_some() {
        backends.push(Backend::Postgres);
    }
    let mut rows = Vec::new();
    for backend in backends {
        // Every measure's output of every run, by measure.
        let mut outputs: Vec<(Measure, Value)> = Vec::new();
        for n in 0..shape.runs {
            let server = Server::start(shape, backend, n).await?;
            let measured = measure_all(shape, &server, backend, n + 1).await;
            server.stop().await;
            outputs.extend(measured?);
        }
        for figure in &FIGURES {
            let runs: Vec<f64> = outputs
                .iter()
                .filter(|(m, _)| *m == figure.measure)
                .map(|(_, out)| out.pointer(figure.pointer).and_then(Value::as_f64).unwrap_or(f64::NAN))
                .collect();
            let errors: u64 = outputs
                .iter()
                .filter(|(m, _)| *m == figure.measure)
                .filter_map(|(_, out)| out.get("errors").and_then(Value::as_u64))
                .sum();
            rows.push(Row { backend, label: figure.label, target: figure.target, runs, errors });
        }
    }
    eprintln!("{}", markdown(&rows));
    Ok(json!({ "suite": rows.iter().map(Row::to_json).collect::<Vec<_>>() }))
}

/// One line of the summary.
struct Row {
    backend: Backend,
    label: &'static str,
    target: Option<Target>,
    runs: Vec<f64>,
    errors: u64,
}

impl Row {
    /// The median of the runs, which the target is judged by.
    fn median(&self) -> f64 {
        median(&self.runs)
    }

    fn to_json(&self) -> Value {
        json!({
            "backend": self.backend.name(),
            "figure": self.label,
            "runs": self.runs,
            "median_of_runs": self.median(),
            "target": self.target.map(Target::label),
            "met": self.target.map(|t| t.met(self.median())),
            "failed_requests": self.errors,
        })
    }
}

/// The median of `values` (the mean of the middle two when there is an even number);
/// NaN when there are none or one of them is NaN (a figure a run did not give).
fn median(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] }
}

/// A figure as docs/benchmarks.md prints it: three decimal places below 10, whole
/// numbers above.
fn shown(x: f64) -> String {
    if x.is_nan() {
        "—".to_owned()
    } else if x.abs() < 10.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.0}")
    }
}

/// The summary as a Markdown table.
fn markdown(rows: &[Row]) -> String {
    let mut out =
        String::from("| backend | figure | runs | median of runs | target | met |\n|---|---|---|---|---|---|\n");
    for row in rows {
        let runs: Vec<String> = row.runs.iter().copied().map(shown).collect();
        let (target, met) = match row.target {
            Some(t) => (t.label(), if t.met(row.median()) { "yes" } else { "no" }),
            None => ("—".to_owned(), "—"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | **{}** | {target} | {met} |\n",
            row.backend.name(),
            row.label,
            runs.join(", "),
            shown(row.median())
        ));
    }
    out
}

/// Runs each measure once against `server`, in order, printing each one's output as a
/// JSON line as it ends (labelled with the backend and the run).
async fn measure_all(
    shape: &Shape,
    server: &Server,
    backend: Backend,
    run: usize,
) -> anyhow::Result<Vec<(Measure, Value)>> {
    let (url, token) = (server.url.as_str(), server.token.as_str());
    let mut out = Vec::new();
    for measure in MEASURES {
        let output = match measure {
            Measure::RefreshRatio => {
                let refresh =
                    paired::RefreshShape { chains: 32, rounds: shape.rounds, slice: SLICE_SECONDS, connections: POOL };
                paired::refresh_ratio(url, token, &server.database_url, &refresh).await
            }
            Measure::LoginRatio => paired::login_ratio(url, token, 8, shape.rounds, SLICE_SECONDS).await,
            Measure::LoginTail => {
                let tail = paired::TailShape {
                    accounts: 8,
                    rounds: shape.tail_rounds,
                    slice: SLICE_SECONDS,
                    open: 10,
                    load: 0.8,
                };
                paired::login_tail(url, token, &tail).await
            }
            Measure::Jwks => run_auth(url, token, Scenario::Jwks, 32, 10).await,
            Measure::Signup => run_auth(url, token, Scenario::Signup, 32, 10).await,
        }
        .with_context(|| format!("{measure:?} against {url}"))?;
        println!(
            "{}",
            json!({"backend": backend.name(), "run": run, "measure": format!("{measure:?}"), "output": output})
        );
        out.push((measure, output));
    }
    Ok(out)
}

/// A server started for one run, with its own database.
struct Server {
    child: tokio::process::Child,
    url: String,
    token: String,
    database_url: String,
    /// Where its SQLite file and its log live; removed at the end.
    dir: PathBuf,
    /// The Postgres database created for it: (the database it was created from, name).
    created: Option<(String, String)>,
}

/// `database` in place of the database named in `url`, keeping its options.
fn database_url_for(url: &str, database: &str) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url).context("--postgres is not a URL")?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.into())
}

impl Server {
    /// A fresh database for `backend`, migrated, and `gatehouse serve` on it on a free
    /// loopback port, answering `/readyz`. If the server does not come up, the database
    /// created for it is dropped and its log is left in place for the error to name.
    async fn start(shape: &Shape, backend: Backend, n: usize) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("gatehouse-suite-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (database_url, created) = match (backend, &shape.postgres) {
            (Backend::Postgres, Some(admin)) => {
                let name = format!("gatehouse_suite_{}_{n}", std::process::id());
                // One an earlier suite of the same process id left behind goes first.
                drop_database(admin, &name).await;
                let mut conn = sqlx::PgConnection::connect(admin).await.context("connecting to --postgres")?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
                conn.close().await?;
                (database_url_for(admin, &name)?, Some((admin.clone(), name)))
            }
            _ => (format!("sqlite://{}", dir.join("gatehouse.db").display()), None),
        };
        match Self::launch(shape, backend, dir, database_url, created.clone()).await {
            Ok(server) => Ok(server),
            Err(e) => {
                if let Some((admin, name)) = &created {
                    drop_database(admin, name).await;
                }
                Err(e)
            }
        }
    }

    /// `gatehouse migrate`, then `gatehouse serve` in `dir` on `database_url`, until it
    /// answers `/readyz` (killed if it does not).
    async fn launch(
        shape: &Shape,
        backend: Backend,
        dir: PathBuf,
        database_url: String,
        created: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // An operator token as the server's own secrets are made, and a master key.
        let token = gatehouse_core::secret::generate_secret("gh_admin_").value.expose().to_owned();
        let master_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let log = std::fs::File::create(dir.join("server.log"))?;
        // The server runs in its own directory: a relative path would not find it there.
        let binary = std::fs::canonicalize(&shape.binary).with_context(|| format!("no binary at {}", shape.binary))?;
        let command = |verb: &str| {
            let mut command = tokio::process::Command::new(&binary);
            command
                .arg(verb)
                .current_dir(&dir)
                .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
                .env("GATEHOUSE_DATABASE_URL", &database_url)
                .env("GATEHOUSE_DATABASE_MAX_CONNECTIONS", POOL.to_string())
                .env("GATEHOUSE_ADMIN_TOKEN", &token)
                .env("GATEHOUSE_MASTER_KEY", &master_key)
                // The tool sends each request from its own forwarded address, so the
                // per-IP limits (meant for real clients) do not cap one load generator.
                .env("GATEHOUSE_TRUSTED_PROXIES", "127.0.0.1")
                .env("GATEHOUSE_LOG", "warn")
                .env("GATEHOUSE_AUDIT_READS", "false")
                .env_remove("GATEHOUSE_REDIS_URL")
                .stdout(Stdio::null())
                .kill_on_drop(true);
            if let (Backend::Postgres, Some(redis)) = (backend, &shape.redis) {
                command.env("GATEHOUSE_REDIS_URL", redis).env("GATEHOUSE_REDIS_PREFIX", format!("suite{port}:"));
            }
            command
        };
        let migrated = command("migrate").stderr(log.try_clone()?).status().await.context("running migrate")?;
        if !migrated.success() {
            bail!("gatehouse migrate failed: see {}", dir.join("server.log").display());
        }
        let child = command("serve").stderr(log).spawn().with_context(|| format!("starting {}", shape.binary))?;
        let server = Self { child, url: format!("http://127.0.0.1:{port}"), token, database_url, dir, created };
        server.ready().await?;
        Ok(server)
    }

    async fn ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Ok(reply) = client.get(format!("{}/readyz", self.url)).send().await
                && reply.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server never became ready: see {}", self.dir.join("server.log").display())
    }

    /// Stops the server and removes its database and files.
    async fn stop(mut self) {
        let _ = self.child.kill().await;
        if let Some((admin, name)) = &self.created {
            drop_database(admin, name).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Drops the database `name` created through `admin`, with whatever is still connected
/// to it (best effort: a suite that cannot clean up still reports what it measured).
async fn drop_database(admin: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
        let _ = conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_runs_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[0.9, 0.7, 0.8]), 0.8);
        assert!((median(&[0.86, 0.80, 0.90, 0.84]) - 0.85).abs() < 1e-12);
        assert!(median(&[]).is_nan());
        // A run that did not give the figure leaves no median rather than a wrong one.
        assert!(median(&[0.9, f64::NAN, 0.8]).is_nan());
    }

    #[test]
    fn targets_count_the_line_itself_as_met_from_either_side() {
        assert!(Target::AtLeast(0.80).met(0.80));
        assert!(!Target::AtLeast(0.80).met(0.799));
        assert!(Target::AtMost(2.5).met(2.5));
        assert!(!Target::AtMost(2.5).met(2.51));
        assert!(!Target::AtLeast(0.80).met(f64::NAN));
        assert!(!Target::AtMost(2.5).met(f64::NAN));
    }

    #[test]
    fn the_table_shows_every_run_the_median_and_the_verdict() {
        let rows = [
            Row {
                backend: Backend::Postgres,
                label: "refreshes ÷ bare store rotation",
                target: Some(Target::AtLeast(0.80)),
                runs: vec![0.775, 0.857, 0.824],
                errors: 0,
            },
            Row {
                backend: Backend::Sqlite,
                label: "sign-ups per second",
                target: None,
                runs: vec![63.6, 61.2],
                errors: 0,
            },
        ];
        let table = markdown(&rows);
        assert!(table.contains("| Postgres + Redis | refreshes ÷ bare store rotation | 0.775, 0.857, 0.824 | **0.824** | ≥ 0.80 | yes |"), "{table}");
        assert!(table.contains("| SQLite + in-process | sign-ups per second | 64, 61 | **62** | — | — |"), "{table}");
        assert_eq!(rows[0].to_json()["met"], json!(true));
        assert_eq!(rows[1].to_json()["met"], Value::Null);
    }

    #[test]
    fn each_run_gets_its_own_database_beside_the_one_given() -> anyhow::Result<()> {
        let url = database_url_for("postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "gatehouse_suite_1_0")?;
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/gatehouse_suite_1_0?sslmode=disable");
        assert!(database_url_for("not a url", "x").is_err());
        Ok(())
    }

    /// Where the tests find Postgres, as the store's tests do.
    fn postgres_url() -> String {
        std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    #[tokio::test]
    async fn a_server_that_does_not_come_up_leaves_no_database_behind() -> anyhow::Result<()> {
        // `false` exits at once with a failure, as a broken `gatehouse migrate` would.
        let shape = Shape {
            binary: "/bin/false".into(),
            postgres: Some(postgres_url()),
            redis: Some("redis://127.0.0.1:6379".into()),
            runs: 1,
            rounds: 1,
            tail_rounds: 1,
        };
        let n = 7_000 + usize::from(rand::random::<u16>() % 1_000);
        let err = Server::start(&shape, Backend::Postgres, n).await.err().context("a failing binary started")?;
        assert!(format!("{err:#}").contains("migrate failed"), "{err:#}");
        let name = format!("gatehouse_suite_{}_{n}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&postgres_url()).await?;
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        assert_eq!(left, 0, "{name} was left behind");
        let _ =
            std::fs::remove_dir_all(std::env::temp_dir().join(format!("gatehouse-suite-{}-{n}", std::process::id())));
        Ok(())
    }

    #[test]
    fn every_figure_reads_a_measure_that_runs() {
        for figure in &FIGURES {
            assert!(MEASURES.contains(&figure.measure), "{}", figure.label);
            assert!(figure.pointer.starts_with('/'), "{}", figure.label);
        }
    }
}
