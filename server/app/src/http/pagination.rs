//! The `?limit=&cursor=` query and list envelopes shared by every list route.

use gatehouse_core::error::ServiceError;
use gatehouse_core::page::PageRequest;
use serde::Deserialize;
use utoipa::IntoParams;

/// Pagination parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page requested.
    pub fn page(&self) -> Result<PageRequest, ServiceError> {
        PageRequest::parse(self.limit, self.cursor.as_deref())
    }
}

/// Declares a concrete list envelope `{ "data": [...], "next_cursor": ... }`.
macro_rules! list_response {
    ($name:ident, $item:ty) => {
        #[doc = concat!("A page of `", stringify!($item), "`.")]
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            /// The items, oldest first.
            pub data: Vec<$item>,
            /// Cursor for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }

        impl From<gatehouse_core::page::Page<$item>> for $name {
            fn from(page: gatehouse_core::page::Page<$item>) -> Self {
                Self { data: page.data, next_cursor: page.next_cursor }
            }
        }
    };
}
pub(crate) use list_response;
