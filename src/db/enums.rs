//! Enum columns: stored as text on both backends (the migrations CHECK the values), read back as
//! the enum — an unknown stored value is an error, never a silent default.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteValue};

/// Who did it (an audit event's actor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum ActorType {
    User,
    ApiKey,
    System,
    Anonymous,
}

impl ActorType {
    pub const ALL: [ActorType; 4] = [Self::User, Self::ApiKey, Self::System, Self::Anonymous];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiKey => "api_key",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }

    /// The name clients see (GraphQL, exports, webhook payloads).
    pub fn public_name(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::ApiKey => "API_KEY",
            Self::System => "SYSTEM",
            Self::Anonymous => "ANONYMOUS",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// How it ended (an audit event's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by the policy engine.
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Success, Self::Failure, Self::Denied];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }

    /// The name clients see (GraphQL, exports, webhook payloads).
    pub fn public_name(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
            Self::Denied => "DENIED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// Whether an account may sign in (a user's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum UserStatus {
    Active,
    /// Cannot sign in; its sessions were ended and its API keys revoked.
    Disabled,
}

impl UserStatus {
    pub const ALL: [UserStatus; 2] = [Self::Active, Self::Disabled];

    /// The stored name (also the Cedar `status` attribute policies compare against).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How a stored session was opened (its `auth_method`); API keys never open sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum SessionMethod {
    Password,
    /// User verification: a second factor in itself.
    Passkey,
}

impl SessionMethod {
    pub const ALL: [SessionMethod; 2] = [Self::Password, Self::Passkey];

    /// The stored name (also what `Session.authMethod` and audit details show).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Passkey => "passkey",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// Text-backed `ToSql`/`FromSql` on both backends for an enum with `as_str` and `parse`.
macro_rules! text_enum {
    ($enum:ty, $what:literal) => {
        impl ToSql<Text, Pg> for $enum {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl ToSql<Text, Sqlite> for $enum {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(serialize::IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $enum {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, Pg>>::from_sql(value)?;
                <$enum>::parse(&text).ok_or_else(|| format!("unknown {} {text:?}", $what).into())
            }
        }

        impl FromSql<Text, Sqlite> for $enum {
            fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
                <$enum>::parse(&text).ok_or_else(|| format!("unknown {} {text:?}", $what).into())
            }
        }
    };
}

text_enum!(ActorType, "actor type");
text_enum!(Outcome, "outcome");
text_enum!(UserStatus, "user status");
text_enum!(SessionMethod, "session auth method");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_do_not_parse() {
        for t in ActorType::ALL {
            assert_eq!(ActorType::parse(t.as_str()), Some(t));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        for t in ActorType::ALL {
            assert_eq!(t.public_name(), t.as_str().to_ascii_uppercase());
        }
        for o in Outcome::ALL {
            assert_eq!(o.public_name(), o.as_str().to_ascii_uppercase());
        }
        for s in UserStatus::ALL {
            assert_eq!(UserStatus::parse(s.as_str()), Some(s));
        }
        for m in SessionMethod::ALL {
            assert_eq!(SessionMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(SessionMethod::parse("api_key"), None);
        assert_eq!(ActorType::parse("robot"), None);
        assert_eq!(UserStatus::parse("ACTIVE"), None);
        assert_eq!(Outcome::parse("SUCCESS"), None);
    }
}
