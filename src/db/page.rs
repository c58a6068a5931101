//! Keyset pagination over UUIDv7 ids: stable while rows are inserted, no OFFSET scans.

use super::types::Id;

/// Which end of the ordered list a page is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `first`/`after`: oldest first, rows after the cursor.
    Forward,
    /// `last`/`before`: the newest rows before the cursor (returned in ascending order).
    Backward,
}

/// A window of an id-ordered list, as asked by Relay arguments.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: Option<Id>,
    pub before: Option<Id>,
    pub limit: i64,
    pub direction: Direction,
}

/// One page of rows plus whether more lie beyond it in the paging direction.
#[derive(Debug, Clone)]
pub struct PageOf<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
    pub total_count: i64,
}

impl Page {
    /// Rows to fetch: one more than asked, to learn whether another page exists.
    pub(crate) fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra probe row and puts rows in ascending id order.
    pub(crate) fn finish<T>(&self, mut rows: Vec<T>, total_count: i64) -> PageOf<T> {
        let has_more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit.max(0) as usize);
        if self.direction == Direction::Backward {
            rows.reverse();
        }
        PageOf {
            rows,
            has_more,
            total_count,
        }
    }
}

/// Applies a [`Page`] to a boxed query over a table whose key is a UUIDv7 `id` column.
macro_rules! paginate {
    ($query:expr, $id:expr, $page:expr) => {{
        let page: &$crate::db::Page = $page;
        let mut query = $query;
        if let Some(after) = page.after {
            query = query.filter($id.gt(after));
        }
        if let Some(before) = page.before {
            query = query.filter($id.lt(before));
        }
        match page.direction {
            $crate::db::Direction::Forward => query.order($id.asc()),
            $crate::db::Direction::Backward => query.order($id.desc()),
        }
        .limit(page.fetch_limit())
    }};
}
pub(crate) use paginate;
