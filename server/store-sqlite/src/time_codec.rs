//! Times are stored as INTEGER microseconds since the Unix epoch.

use gatehouse_core::store::StoreError;
use time::OffsetDateTime;

/// Encodes a time.
pub fn enc(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Decodes a time.
pub fn dec(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| StoreError::Backend(format!("corrupt time: {e}")))
}

/// Decodes an optional time.
pub fn dec_opt(micros: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    micros.map(dec).transpose()
}
