//! Relay connection arguments in, Relay connections out, over keyset pages.

use async_graphql::SimpleObject;
use async_graphql::connection::{Connection, Edge, EmptyFields};

use super::ids::{Cursor, parse_cursor};
use crate::db::{Direction, Id, Page, PageOf};
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

    /// Validates the arguments into a keyset [`Page`].
    pub fn page(&self) -> Result<Page> {
        let after = self
            .after
            .as_deref()
            .map(|c| parse_cursor("after", c))
            .transpose()?;
        let before = self
            .before
            .as_deref()
            .map(|c| parse_cursor("before", c))
            .transpose()?;
        let (limit, from_end) = window(self.first, self.last, after.is_some(), before.is_some())?;
        let direction = if from_end {
            Direction::Backward
        } else {
            Direction::Forward
        };
        Ok(Page {
            after: after.map(|c| c.0),
            before: before.map(|c| c.0),
            limit,
            direction,
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
    N: async_graphql::OutputType,
{
    let (has_previous, has_next) = match page.direction {
        Direction::Forward => (page.after.is_some(), result.has_more),
        Direction::Backward => (result.has_more, page.before.is_some()),
    };
    let mut connection = Connection::with_additional_fields(
        has_previous,
        has_next,
        ConnectionFields {
            total_count: result.total_count,
        },
    );
    connection.edges.extend(
        result
            .rows
            .into_iter()
            .map(|row| Edge::new(Cursor(id_of(&row)), node(row))),
    );
    connection
}
