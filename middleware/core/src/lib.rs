//! Framework-free validation of Gatehouse access tokens (JWKS discovery, caching,
//! claim checks).
//!
//! Planned; nothing is implemented yet. It must not depend on any web framework.
