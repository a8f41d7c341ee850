//! Opaque, prefixed, sortable identifiers (`tnt_…`, `usr_…`, `skey_…`, …).
//!
//! Each id is a lowercase ULID behind a type prefix, so ids sort by creation time and a
//! leaked one says what it is.

use std::fmt;
use std::str::FromStr;

/// An id string did not have the expected prefix or ULID body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an id of the form {prefix}_<26 base32 characters>")]
pub struct InvalidId {
    /// The prefix the caller expected.
    pub prefix: &'static str,
}

/// ULIDs from one generator per process, so ids made in the same millisecond still sort
/// in creation order (pagination and the audit log rely on it).
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::LazyLock<std::sync::Mutex<ulid::Generator>> =
        std::sync::LazyLock::new(|| std::sync::Mutex::new(ulid::Generator::new()));
    let mut generator = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The type prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id, unique and later-sorting than ids made before it on this host.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, next_ulid().to_string().to_ascii_lowercase()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                let err = InvalidId { prefix: $prefix };
                let body = s
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or(err.clone())?;
                if body.len() != 26 || !body.starts_with(|c: char| ('0'..='7').contains(&c)) || ulid::Ulid::from_string(body).is_err() {
                    return Err(err);
                }
                Ok(Self(format!("{}_{}", $prefix, body.to_ascii_lowercase())))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9a-z]{26}$")))
                    .examples([concat!($prefix, "_01jq3v6m8k2r7x0a9b4c5d6e7f")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

define_id!(
    /// A tenant: one product's isolated user pool.
    TenantId,
    "tnt"
);
define_id!(
    /// A user of a tenant.
    UserId,
    "usr"
);
define_id!(
    /// A tenant secret key (`sk_…` credential) record.
    SecretKeyId,
    "skey"
);
define_id!(
    /// A token signing key (also the JWT `kid`).
    SigningKeyId,
    "key"
);
define_id!(
    /// A session: one sign-in and its family of refresh tokens.
    SessionId,
    "ses"
);
define_id!(
    /// An operator API token record.
    AdminTokenId,
    "tok"
);
define_id!(
    /// An audit event.
    EventId,
    "evt"
);
define_id!(
    /// A one-time secret: a link token or code sent to an address.
    OneTimeId,
    "otp"
);
define_id!(
    /// A message in the outbox.
    MessageId,
    "msg"
);
define_id!(
    /// A passkey (WebAuthn credential) of a user.
    PasskeyId,
    "pkey"
);
define_id!(
    /// An organization inside a tenant.
    OrganizationId,
    "org"
);
define_id!(
    /// An invitation to an organization.
    InvitationId,
    "inv"
);
define_id!(
    /// An operator account (a person who runs Gatehouse).
    OperatorId,
    "opr"
);
define_id!(
    /// A signed-in operator's session.
    OperatorSessionId,
    "ops"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_sort_by_creation() {
        let a = TenantId::generate();
        let b = TenantId::generate();
        assert!(a < b);
        let many: Vec<_> = (0..1000).map(|_| EventId::generate()).collect();
        assert!(many.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a.as_str().parse::<TenantId>(), Ok(a.clone()));
        assert!(a.as_str().starts_with("tnt_"));
    }

    #[test]
    fn ids_with_the_wrong_prefix_or_body_are_refused() {
        let key = SecretKeyId::generate();
        assert!(key.as_str().parse::<TenantId>().is_err());
        assert!("tnt_".parse::<TenantId>().is_err());
        assert!("tnt_zzzzzzzzzzzzzzzzzzzzzzzzzz".parse::<TenantId>().is_err());
        assert!("tnt_0uuuuuuuuuuuuuuuuuuuuuuuuu".parse::<TenantId>().is_err());
        assert!("tnt_01JQ3V6M8K2R7X0A9B4C5D6E7F".parse::<TenantId>().is_ok());
        assert!("tnt_01jq3v6m8k2r7x0a9b4c5d6e7".parse::<TenantId>().is_err());
    }
}
