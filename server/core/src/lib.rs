//! Gatehouse domain: identifiers, tenants, credentials for the management API, audit
//! events, the services that implement the use cases, and the *traits* that storage
//! backends and ephemeral stores implement (with their conformance suites).
//!
//! This crate must not depend on HTTP frameworks or SQL drivers: the app crate adapts it
//! to HTTP, the store crates adapt it to databases.

pub mod access;
pub mod argon_memory;
pub mod audit;
pub mod clock;
pub mod credentials;
pub mod dns;
pub mod ephemeral;
pub mod error;
pub mod hash_threads;
pub mod ids;
pub mod messaging;
pub mod mfa;
pub mod operator;
pub mod org;
pub mod page;
pub mod passkey;
pub mod password;
pub mod secret;
pub mod services;
pub mod session;
pub mod signing;
pub mod store;
pub mod tenant;
pub mod user;

#[cfg(feature = "conformance")]
pub mod conformance;
