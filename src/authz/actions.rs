//! The gateway's own actions: one per operation, named as in `cedar/portcullis.cedarschema`.

/// A gateway operation. Roles grant these; the engine decides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    UserList,
    UserCreate,
    UserRead,
    UserUpdate,
    UserDisable,
    OrganizationList,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    MemberList,
    MemberAdd,
    MemberRemove,
    SessionList,
    SessionRevoke,
    ApiKeyList,
    ApiKeyCreate,
    ApiKeyRevoke,
    PolicyRead,
    PolicyCreate,
    PolicyUpdate,
    PolicyDelete,
    PolicyAttach,
    CedarSchemaRead,
    CedarSchemaWrite,
    RoleRead,
    RoleCreate,
    RoleUpdate,
    RoleDelete,
    RoleAssign,
    AuthorizeSelf,
    AuthorizeAny,
}

impl Action {
    /// Every action, in the order the README lists them.
    pub const ALL: [Action; 31] = [
        Self::UserList,
        Self::UserCreate,
        Self::UserRead,
        Self::UserUpdate,
        Self::UserDisable,
        Self::OrganizationList,
        Self::OrganizationCreate,
        Self::OrganizationRead,
        Self::OrganizationUpdate,
        Self::MemberList,
        Self::MemberAdd,
        Self::MemberRemove,
        Self::SessionList,
        Self::SessionRevoke,
        Self::ApiKeyList,
        Self::ApiKeyCreate,
        Self::ApiKeyRevoke,
        Self::PolicyRead,
        Self::PolicyCreate,
        Self::PolicyUpdate,
        Self::PolicyDelete,
        Self::PolicyAttach,
        Self::CedarSchemaRead,
        Self::CedarSchemaWrite,
        Self::RoleRead,
        Self::RoleCreate,
        Self::RoleUpdate,
        Self::RoleDelete,
        Self::RoleAssign,
        Self::AuthorizeSelf,
        Self::AuthorizeAny,
    ];

    /// The Cedar action id, e.g. `user.read` for `Portcullis::Action::"user.read"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::UserList => "user.list",
            Self::UserCreate => "user.create",
            Self::UserRead => "user.read",
            Self::UserUpdate => "user.update",
            Self::UserDisable => "user.disable",
            Self::OrganizationList => "organization.list",
            Self::OrganizationCreate => "organization.create",
            Self::OrganizationRead => "organization.read",
            Self::OrganizationUpdate => "organization.update",
            Self::MemberList => "member.list",
            Self::MemberAdd => "member.add",
            Self::MemberRemove => "member.remove",
            Self::SessionList => "session.list",
            Self::SessionRevoke => "session.revoke",
            Self::ApiKeyList => "api_key.list",
            Self::ApiKeyCreate => "api_key.create",
            Self::ApiKeyRevoke => "api_key.revoke",
            Self::PolicyRead => "policy.read",
            Self::PolicyCreate => "policy.create",
            Self::PolicyUpdate => "policy.update",
            Self::PolicyDelete => "policy.delete",
            Self::PolicyAttach => "policy.attach",
            Self::CedarSchemaRead => "cedar_schema.read",
            Self::CedarSchemaWrite => "cedar_schema.write",
            Self::RoleRead => "role.read",
            Self::RoleCreate => "role.create",
            Self::RoleUpdate => "role.update",
            Self::RoleDelete => "role.delete",
            Self::RoleAssign => "role.assign",
            Self::AuthorizeSelf => "authorize.self",
            Self::AuthorizeAny => "authorize.any",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }

    /// Actions every user may take on their own account, granted by a built-in policy.
    pub const SELF_SERVICE: [Action; 7] = [
        Self::UserRead,
        Self::UserUpdate,
        Self::SessionList,
        Self::SessionRevoke,
        Self::ApiKeyList,
        Self::ApiKeyCreate,
        Self::ApiKeyRevoke,
    ];
}
