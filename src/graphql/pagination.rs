//! Relay connection arguments in, Relay connections out, over keyset pages: one way for every
//! connection, whatever its key (row ids, or the audit log's positions).

use async_graphql::SimpleObject;
use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{ObjectType, OutputType};

use super::ids::{Cursor, parse_cursor};
use crate::db::{Direction, Id, Page, PageOf, Window};
use crate::error::{Error, Result};

/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;

/// Fields every connection carries besides edges and page info.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// How many items match, across all pages.
    pub total_count: i64,
}

/// A Relay connection of `N` with opaque keyset cursors.
pub type Paged<N> = Connection<Cursor, N, ConnectionFields, EmptyFields>;

/// The four Relay arguments, as received.
#[derive(Debug, Default, Clone)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn new(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Self {
        Self {
            first,
            after,
            last,
            before,
        }
    }

    /// Validates the arguments into a keyset [`Page`] over row ids, oldest first.
    pub fn page(&self) -> Result<Page> {
        self.page_by(|field, text| parse_cursor(field, text).map(|c| c.0), false)
    }

    /// Validates the arguments into a keyset [`Page`] whose cursors `decode` reads (naming the
    /// argument in its error), in ascending or descending key order.
    pub fn page_by<K: Copy>(
        &self,
        decode: impl Fn(&str, &str) -> Result<K>,
        descending: bool,
    ) -> Result<Page<K>> {
        let after = self.after.as_deref().map(|c| decode("after", c)).transpose()?;
        let before = self.before.as_deref().map(|c| decode("before", c)).transpose()?;
        let (limit, from_end) = window(self.first, self.last, after.is_some(), before.is_some())?;
        let direction = if from_end {
            Direction::Backward
        } else {
            Direction::Forward
        };
        Ok(Page {
            after,
            before,
            limit,
            direction,
            descending,
        })
    }
}

/// The complexity of a connection field: its selection once per row of the largest page the
/// arguments allow, so that nested connections multiply as their rows would.
pub fn connection_complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let rows = first
        .or(last)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    usize::try_from(rows)
        .unwrap_or(1)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// Validates `first`/`last` into a page size and whether the page is taken from the far end of the
/// window (`last`, or `before` without `after` and without a size).
pub fn window(first: Option<i32>, last: Option<i32>, after: bool, before: bool) -> Result<(i64, bool)> {
    let size = |field: &str, value: i32| {
        if !(0..=MAX_PAGE_SIZE).contains(&value) {
            return Err(Error::bad_input(
                field,
                format!("must be between 0 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(i64::from(value))
    };
    match (first, last) {
        (Some(_), Some(_)) => Err(Error::bad_input("last", "pass either first or last, not both")),
        (Some(first), None) => Ok((size("first", first)?, false)),
        (None, Some(last)) => Ok((size("last", last)?, true)),
        (None, None) => Ok((i64::from(DEFAULT_PAGE_SIZE), before && !after)),
    }
}

/// Builds the connection for `rows`, mapping each to its node and keying each by `id_of`.
pub fn connection<T, N>(
    page: &Page,
    result: PageOf<T>,
    id_of: impl Fn(&T) -> Id,
    node: impl Fn(T) -> N,
) -> Paged<N>
where
    N: OutputType,
{
    let window = Window {
        rows: result.rows,
        has_more: result.has_more,
    };
    let fields = ConnectionFields {
        total_count: result.total_count,
    };
    connection_with(page, window, |row| Cursor(id_of(row)), node, fields)
}

/// Builds a connection over any keyset page: page info from the page and whether more rows lie
/// beyond it, an edge per row with the cursor `cursor_of` gives it, and `fields` besides.
pub fn connection_with<K, T, C, N, F>(
    page: &Page<K>,
    window: Window<T>,
    cursor_of: impl Fn(&T) -> C,
    node: impl Fn(T) -> N,
    fields: F,
) -> Connection<C, N, F, EmptyFields>
where
    C: CursorType + Send + Sync,
    N: OutputType,
    F: ObjectType,
{
    let (has_previous, has_next) = match page.direction {
        Direction::Forward => (page.after.is_some(), window.has_more),
        Direction::Backward => (window.has_more, page.before.is_some()),
    };
    let mut connection = Connection::with_additional_fields(has_previous, has_next, fields);
    connection.edges.extend(
        window
            .rows
            .into_iter()
            .map(|row| Edge::new(cursor_of(&row), node(row))),
    );
    connection
}
