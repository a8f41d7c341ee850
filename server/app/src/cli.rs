//! The `gatehouse` command line.

use crate::config::Config;
use crate::startup;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Gatehouse: multi-tenant identity service.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Write the OpenAPI documents generated from the code.
    Openapi {
        /// Folder to write gatehouse.json (3.1) and gatehouse-3.0.json into.
        #[arg(long, default_value = "openapi")]
        out: PathBuf,
        /// Only check that the files are up to date; exit 1 if not.
        #[arg(long)]
        check: bool,
    },
    /// Validate the configuration and exit.
    CheckConfig,
    /// Manage token signing keys.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        action: KeysCommand,
    },
}

/// `gatehouse keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate a tenant's signing keys: the published next key starts signing.
    Rotate {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi { out, check }) = &cli.command {
        return openapi(out, *check);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::CheckConfig)) {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    crate::telemetry::init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Migrate) => startup::migrate(&config).await.map(|()| println!("migrations applied")),
            Some(Command::Keys { action: KeysCommand::Rotate { tenant } }) => rotate_keys(config, &tenant).await,
            _ => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn rotate_keys(config: Config, slug: &str) -> anyhow::Result<()> {
    let prepared = startup::prepare_with(config, false).await?;
    let services = &prepared.state.services;
    let tenant = services.auth.tenant(slug).await.map_err(|_| anyhow::anyhow!("no tenant with slug {slug:?}"))?;
    let kid = services.keys.rotate_as_system(&tenant).await.map_err(|e| anyhow::anyhow!("rotation failed: {e}"))?;
    println!("{kid}");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let server = startup::start(config).await?;
    if let Some(token) = &server.bootstrap_token {
        println!(
            "\nNo operator exists yet. This one-time bootstrap admin token is shown only now:\n\n    {}\n\n\
             Use it as `Authorization: Bearer …` on /v1, create your own tokens, then revoke it.\n",
            token.expose()
        );
    }
    tracing::info!(
        listen = %server.local_addr,
        ready_ms = started.elapsed().as_millis() as u64,
        "gatehouse ready"
    );
    startup::shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await
}

fn openapi(out: &std::path::Path, check: bool) -> ExitCode {
    if check {
        if crate::openapi::is_fresh(out) {
            return ExitCode::SUCCESS;
        }
        eprintln!("gatehouse: {} is stale; run `gatehouse openapi`", out.display());
        return ExitCode::FAILURE;
    }
    match crate::openapi::write(out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
