//! Queries over `users`.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use super::enums::UserStatus;
use super::error::conflict_on;
use super::models::UserRow;
use super::page::paginate;
use super::schema::users;
use super::types::Id;
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `lower()`, the same on both backends (on SQLite once [`register_lower`] replaced it).
    fn lower(x: Text) -> Text;

    /// `lower()` as SQLite calls it, NULL in, NULL out: the signature [`register_lower`] registers.
    #[sql_name = "lower"]
    fn lower_nullable(x: diesel::sql_types::Nullable<Text>) -> diesel::sql_types::Nullable<Text>;
}

/// Replaces SQLite's `lower()`, which lowers ASCII letters only, with [`fold_case`], which lowers
/// every letter as PostgreSQL's does: case-insensitive searches then find `Élodie` for `élodie` on
/// both backends, and agree with the same search done in memory (the live feed).
pub(crate) fn register_lower(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
    lower_nullable_utils::register_impl(conn, |text: Option<String>| text.map(|text| fold_case(&text)))
}

/// Narrows a user listing; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of the email or display name.
    pub search: Option<String>,
    pub status: Option<UserStatus>,
}

const EMAIL_TAKEN: &str = "a user with this email already exists";

pub async fn insert(conn: &mut DbConn, row: &UserRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(users::table)
        .values(row)
        .execute(c)
        .await
        .map_err(conflict_on("email", EMAIL_TAKEN)))?;
    Ok(())
}

/// Writes every mutable column of `row`.
pub async fn update(conn: &mut DbConn, row: &UserRow) -> Result<()> {
    with_conn!(conn, |c| diesel::update(users::table.find(row.id))
        .set((
            users::email.eq(&row.email),
            users::display_name.eq(&row.display_name),
            users::password_hash.eq(&row.password_hash),
            users::status.eq(&row.status),
            users::updated_at.eq(row.updated_at),
        ))
        .execute(c)
        .await
        .map_err(conflict_on("email", EMAIL_TAKEN)))?;
    Ok(())
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<UserRow>> {
    let row = with_conn!(conn, |c| users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Reads the account and, on PostgreSQL, locks its row until the transaction ends: changes that
/// must see every other change to the account's credentials (its last passkey) queue up here.
/// SQLite's write transactions are serialized already.
pub async fn find_for_update(conn: &mut DbConn, id: Id) -> Result<Option<UserRow>> {
    let row = match conn {
        DbConn::Postgres(c, _) => {
            let c: &mut diesel_async::AsyncPgConnection = &mut *c;
            users::table
                .find(id)
                .select(UserRow::as_select())
                .for_update()
                .get_result(c)
                .await
                .optional()
        }
        DbConn::Sqlite(c, _) => {
            let c: &mut super::SqliteConn = &mut *c;
            users::table
                .find(id)
                .select(UserRow::as_select())
                .get_result(c)
                .await
                .optional()
        }
    }?;
    Ok(row)
}

pub async fn find_by_email(conn: &mut DbConn, email: &str) -> Result<Option<UserRow>> {
    let row = with_conn!(conn, |c| users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The users with the given ids, in no particular order (one statement, for DataLoaders).
pub async fn find_many(conn: &mut DbConn, ids: &[Id]) -> Result<Vec<UserRow>> {
    let rows = with_conn!(conn, |c| users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn count_all(conn: &mut DbConn) -> Result<i64> {
    let count = with_conn!(conn, |c| users::table.count().get_result(c).await)?;
    Ok(count)
}

/// A page of users matching `filter`, in creation order, with the total number of matches.
pub async fn list(conn: &mut DbConn, filter: &UserFilter, page: &Page) -> Result<PageOf<UserRow>> {
    let pattern = filter.search.as_deref().map(like_pattern);
    macro_rules! filtered {
        () => {{
            let mut query = users::table.into_boxed();
            if let Some(pattern) = &pattern {
                query = query.filter(
                    users::email
                        .like(pattern)
                        .escape('\\')
                        .or(lower(users::display_name).like(pattern).escape('\\')),
                );
            }
            if let Some(status) = &filter.status {
                query = query.filter(users::status.eq(status));
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(filtered!().select(UserRow::as_select()), users::id, page)
            .load(c)
            .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Lower-cases `text` as SQL `lower()` does on both backends (character by character), for
/// comparisons in memory that must agree with the database's.
pub fn fold_case(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// `%term%` for a case-insensitive LIKE, with LIKE's own wildcards escaped.
pub(crate) fn like_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for ch in fold_case(term).chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}
