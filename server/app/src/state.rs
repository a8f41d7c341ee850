//! What every handler can reach, built once at start and passed explicitly.

use crate::config::Config;
use crate::telemetry::Metrics;
use gatehouse_core::clock::Clock;
use gatehouse_core::ephemeral::EphemeralStore;
use gatehouse_core::services::Services;
use gatehouse_core::store::Store;
use std::sync::Arc;

/// Shared application state (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub services: Services,
    /// The database (for readiness and pool metrics only; handlers use services).
    pub store: Arc<dyn Store>,
    /// Rate limits, one-time values, caches.
    pub ephemeral: Arc<dyn EphemeralStore>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
}
