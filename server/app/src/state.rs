//! What every handler can reach, built once at start and passed explicitly.

use crate::config::Config;
use crate::telemetry::Metrics;
use gatehouse_core::clock::Clock;
use gatehouse_core::ephemeral::EphemeralStore;
use gatehouse_core::services::Services;
use gatehouse_core::store::Store;
use std::sync::Arc;

/// Shared application state: one `Arc`, so the per-request clones axum makes cost one
/// atomic increment.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What the state holds.
#[derive(Debug)]
pub struct AppStateInner {
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
    /// The GraphQL schema (built once).
    pub graphql: crate::graphql::GatehouseSchema,
}
