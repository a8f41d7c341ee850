//! actix-web middleware and extractors over `gatehouse-verify`.
//!
//! Planned; nothing is implemented yet. It only adapts `gatehouse-verify` and holds no
//! validation logic of its own.
