//! Gatehouse operator console and hosted login pages.
//!
//! Planned: a Leptos application served at `/console` and `/t/{t}/login`, built only on
//! the public APIs through `gatehouse-sdk`. It must not depend on server internals
//! (`gatehouse-core`, the stores). Nothing is implemented yet.
