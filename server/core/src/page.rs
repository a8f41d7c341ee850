//! Cursor pagination: stable under inserts because it seeks past the last id seen.

use crate::error::ServiceError;
use base64::Engine;
use serde::Serialize;

/// Largest page a caller may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 20;

/// Which page to read: at most `limit` items with ids after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// Exclusive lower bound on the id; `None` for the first page.
    pub after: Option<String>,
}

impl PageRequest {
    /// The first page of the given size.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// Parses the `limit` and `cursor` query parameters.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::invalid("limit", "must be 1 to 100"));
        }
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(Self { limit, after })
    }

    /// How many rows a store should fetch: one more than the limit, to know if more exist.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The cursor as a lower bound on the id: the empty string, below every id, on the
    /// first page. A statement that compares `id > $n` with it always has a bound its
    /// index walk starts from, where `($n IS NULL OR id > $n)` would be a filter over
    /// every earlier page (under Postgres's generic plans, and always on SQLite).
    pub fn lower_bound(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in id order.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in id order.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, id_of: impl Fn(&T) -> &str) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(id_of(last)))
        } else {
            None
        };
        Self { data: rows, next_cursor }
    }

    /// Converts every item.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { data: self.data.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

const CURSOR_VERSION: &str = "v1:";

/// The opaque cursor that continues a walk after the row with this id.
pub fn encode_cursor(last_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{last_id}"))
}

fn decode_cursor(cursor: &str) -> Result<String, ServiceError> {
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| ServiceError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| ServiceError::InvalidCursor)?;
    let id = text.strip_prefix(CURSOR_VERSION).ok_or(ServiceError::InvalidCursor)?;
    let well_formed =
        (5..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(ServiceError::InvalidCursor);
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_links_to_the_next_and_the_cursor_round_trips() {
        let request = PageRequest::first(2);
        let page = Page::from_rows(vec!["tnt_a1", "tnt_b2", "tnt_c3"], &request, |s| s);
        assert_eq!(page.data, ["tnt_a1", "tnt_b2"]);
        let cursor = page.next_cursor.unwrap();
        let next = PageRequest::parse(Some(2), Some(&cursor)).unwrap();
        assert_eq!(next.after.as_deref(), Some("tnt_b2"));
        let last = Page::from_rows(vec!["tnt_c3"], &next, |s| s);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn forged_cursors_and_limits_are_refused() {
        assert!(matches!(PageRequest::parse(None, Some("!!!")), Err(ServiceError::InvalidCursor)));
        let sql = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("v1:x' OR 1=1 --");
        assert!(matches!(PageRequest::parse(None, Some(&sql)), Err(ServiceError::InvalidCursor)));
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(101), None).is_err());
    }
}
