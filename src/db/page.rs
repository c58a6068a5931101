//! Keyset pagination, one kind for every list: a window of rows ordered by a unique, increasing key
//! (a UUIDv7 `id`, or the audit log's `seq`), read in either order. Stable while rows are inserted,
//! no OFFSET scans; one row more than asked is read to learn whether more lie beyond.

use super::types::Id;

/// Which end of the window a page is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `first`/`after`: the rows right after the cursor, in reading order.
    Forward,
    /// `last`/`before`: the rows right before the cursor (still returned in reading order).
    Backward,
}

/// A window of a key-ordered list, as Relay arguments (or a batch reader) ask for it.
#[derive(Debug, Clone, Copy)]
pub struct Page<K = Id> {
    /// Only rows after this key in reading order.
    pub after: Option<K>,
    /// Only rows before this key in reading order.
    pub before: Option<K>,
    /// Rows to return.
    pub limit: i64,
    pub direction: Direction,
    /// Reading order: descending keys (newest first) instead of ascending.
    pub descending: bool,
}

/// One page of rows plus whether more lie beyond it in the paging direction.
#[derive(Debug, Clone)]
pub struct Window<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
}

/// A [`Window`] with the number of rows matching across all pages.
#[derive(Debug, Clone)]
pub struct PageOf<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
    pub total_count: i64,
}

impl<K: Copy> Page<K> {
    /// The first `limit` rows after `after` (from the start without it), oldest first: what a
    /// reader walking a list in batches asks for.
    pub fn after(after: Option<K>, limit: i64) -> Self {
        Self {
            after,
            before: None,
            limit,
            direction: Direction::Forward,
            descending: false,
        }
    }

    /// The same window, stopping before `before`.
    pub fn before(self, before: K) -> Self {
        Self {
            before: Some(before),
            ..self
        }
    }

    /// The same window read newest first.
    pub fn newest_first(self) -> Self {
        Self {
            descending: true,
            ..self
        }
    }

    /// The key bounds of the window in key order: (exclusive lower, exclusive upper).
    pub(crate) fn bounds(&self) -> (Option<K>, Option<K>) {
        if self.descending {
            (self.before, self.after)
        } else {
            (self.after, self.before)
        }
    }

    /// Whether the query scans keys downwards: reading newest first, or taking an ascending
    /// window from its far end.
    pub(crate) fn scans_descending(&self) -> bool {
        self.descending != (self.direction == Direction::Backward)
    }

    /// Rows to fetch: one more than asked, to learn whether another page exists.
    pub(crate) fn fetch_limit(&self) -> i64 {
        self.limit.saturating_add(1)
    }

    /// Drops the extra probe row and puts rows in reading order.
    pub(crate) fn trim<T>(&self, mut rows: Vec<T>) -> Window<T> {
        let has_more = rows.len() as i64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(0));
        if self.direction == Direction::Backward {
            rows.reverse();
        }
        Window { rows, has_more }
    }

    /// [`trim`](Self::trim), with the total count of matching rows.
    pub(crate) fn finish<T>(&self, rows: Vec<T>, total_count: i64) -> PageOf<T> {
        let Window { rows, has_more } = self.trim(rows);
        PageOf {
            rows,
            has_more,
            total_count,
        }
    }
}

/// Applies a [`Page`] to a boxed query over a table whose unique, increasing key is `$key`.
macro_rules! paginate {
    ($query:expr, $key:expr, $page:expr) => {{
        let page = $page;
        let mut query = $query;
        let (lower, upper) = page.bounds();
        if let Some(lower) = lower {
            query = query.filter($key.gt(lower));
        }
        if let Some(upper) = upper {
            query = query.filter($key.lt(upper));
        }
        if page.scans_descending() {
            query.order($key.desc())
        } else {
            query.order($key.asc())
        }
        .limit(page.fetch_limit())
    }};
}
pub(crate) use paginate;
