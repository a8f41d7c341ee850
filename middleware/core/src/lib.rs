//! `gatehouse-verify`: framework-free validation of Gatehouse access tokens.
//!
//! - [`Claims`] is the token contract, shared with the server that signs the tokens.
//! - [`validate`] checks one token against a [`KeySet`] offline.
//! - [`Verifier`] (feature `remote`, on by default) trusts one or more tenant issuers,
//!   discovers and caches their JWKS, refreshes it in the background, optionally
//!   introspects every token, and remembers tokens it has already verified.
//! - [`Denial`] and [`Requirement`] turn outcomes into RFC 6750 answers, so web-framework
//!   adapters (`gatehouse-axum`, `gatehouse-actix`) stay thin.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use gatehouse_verify::{Issuer, Verifier};
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://id.example.com/t/acme", "tnt_01J..."))
//!     .build()?;
//! let claims = verifier.verify("eyJ...").await?;
//! println!("user {} in tenant {}", claims.sub, claims.tid);
//! # Ok(()) }
//! ```

/// A scope, permission or role name fixed at compile time, for typed extractors such as
/// `RequireScope<DocsRead>` in the framework adapters. Declare one with [`required!`].
pub trait RequiredValue {
    /// The scope, permission or role.
    const VALUE: &'static str;
}

/// Declares a unit type naming a scope, permission or role:
/// `gatehouse_verify::required!(pub DocsRead = "docs:read");`
#[macro_export]
macro_rules! required {
    ($vis:vis $name:ident = $value:expr) => {
        #[doc = concat!("Requires `", $value, "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;
        impl $crate::RequiredValue for $name {
            const VALUE: &'static str = $value;
        }
    };
}

#[cfg(feature = "remote")]
mod cache;
mod claims;
mod denial;
mod error;
mod keys;
#[cfg(feature = "remote")]
mod remote;
mod validate;

#[cfg(feature = "remote")]
pub use cache::TokenCache;
pub use claims::{BUILT_IN_ORG_ROLES, Claims};
pub use denial::{Denial, Requirement, bearer_token};
pub use error::VerifyError;
pub use jsonwebtoken::Algorithm;
pub use keys::{KeySet, VerificationKey};
#[cfg(feature = "remote")]
pub use remote::{Issuer, Mode, Verifier, VerifierBuilder};
pub use validate::{Expectations, MAX_TOKEN_BYTES, unverified_issuer, validate};
