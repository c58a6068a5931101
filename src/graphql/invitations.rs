//! GraphQL types and resolvers for invitations: create (one or many), list, resend, revoke, the
//! public preview behind a token, and accepting.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::loaders::Loaders;
use super::organizations::{Branding, Membership, Organization, readable_organization};
use super::pagination::{PageArgs, Paged, connection};
use super::passkeys::{PasskeyCeremony, StartInvitationPasskeyInput};
use super::roles::Role;
use super::sessions::AuthPayload;
use super::users::User;
use crate::authz::{Action, Resource, guard};
use crate::db::Id;
use crate::db::invitations::{InvitationFilter as RowFilter, ShownStatus};
use crate::db::models::InvitationRow;
use crate::identity::{validate, visibility};
use crate::invitations::accept::{self, Acceptance};
use crate::invitations::create::{self, NewInvitation, RowResult};
use crate::invitations::{InvitationStatus as Status, manage};
use crate::passkeys::NewPasskey;

/// An invitation to join an organization.
pub struct Invitation(pub InvitationRow);

/// Where an invitation stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Sent, not yet answered, not expired.
    Pending,
    /// The invitee joined.
    Accepted,
    /// Withdrawn by an administrator.
    Revoked,
    /// Lapsed unanswered (a pending invitation reads as expired the moment `expiresAt` passes).
    Expired,
}

impl From<Status> for InvitationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Accepted => Self::Accepted,
            Status::Revoked => Self::Revoked,
            Status::Expired => Self::Expired,
        }
    }
}

impl From<InvitationStatus> for ShownStatus {
    fn from(status: InvitationStatus) -> Self {
        match status {
            InvitationStatus::Pending => Self::Pending,
            InvitationStatus::Accepted => Self::Accepted,
            InvitationStatus::Revoked => Self::Revoked,
            InvitationStatus::Expired => Self::Expired,
        }
    }
}

#[Object]
impl Invitation {
    /// Stable identifier (a UUIDv7).
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// The invited address (normalized to lower case).
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Where the invitation stands now.
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<InvitationStatus> {
        Ok(Status::of(&self.0, ctx.app()?.now())?.into())
    }

    /// The organization; null if you may not read it.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        readable_organization(ctx, self.0.organization_id).await
    }

    /// The roles the invitee receives on accepting; empty if you may not read the organization's roles.
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Role>> {
        let (app, actor) = (ctx.app()?, ctx.actor()?);
        let loaders = ctx.data::<Loaders>()?;
        let roles = loaders
            .invitation_roles
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let readable = guard::allows(
            app,
            actor,
            Action::RoleRead,
            Resource::Organization(self.0.organization_id),
        )
        .await?;
        Ok(if readable {
            roles.into_iter().map(Role).collect()
        } else {
            Vec::new()
        })
    }

    /// Who invited; null if you may not read that account (or it is gone).
    async fn invited_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        self.person(ctx, self.0.invited_by_user_id).await
    }

    /// The API key the invitation was made with, if it was made with one.
    async fn invited_with_api_key_id(&self) -> Option<ID> {
        self.0.invited_by_api_key_id.map(to_id)
    }

    /// The personal message shown in the email.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// The language of the email and the accept page (else the organization's, else English).
    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }

    /// When the link stops working.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at.0
    }

    /// How many times the email was sent (1 + resends).
    async fn send_count(&self) -> i32 {
        self.0.send_count
    }

    /// When the email was last (re)sent.
    async fn last_sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_sent_at.map(|at| at.0)
    }

    /// Who accepted; null if not accepted or you may not read the account.
    async fn accepted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        self.person(ctx, self.0.accepted_by_user_id).await
    }

    /// When it was accepted.
    async fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.0.accepted_at.map(|at| at.0)
    }

    /// Who revoked it; null if not revoked or you may not read the account.
    async fn revoked_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        self.person(ctx, self.0.revoked_by_user_id).await
    }

    /// When it was revoked.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at.map(|at| at.0)
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }
}

impl Invitation {
    /// A user named by the invitation, when the caller may read the account or the
    /// organization's members.
    async fn person(&self, ctx: &Context<'_>, id: Option<Id>) -> async_graphql::Result<Option<User>> {
        let Some(id) = id else {
            return Ok(None);
        };
        let loaders = ctx.data::<Loaders>()?;
        let Some(user) = loaders.users.load_one(id).await? else {
            return Ok(None);
        };
        let visible = visibility::member(ctx.app()?, ctx.actor()?, id, self.0.organization_id).await?;
        Ok(visible.then_some(User(user)))
    }
}

/// What the accept page shows to whoever holds an invitation link (no credentials needed).
#[derive(SimpleObject)]
pub struct InvitationPreview {
    /// The organization's name (its branding's display name when set).
    organization_name: String,
    /// The organization's white-label settings.
    branding: Branding,
    /// The inviter's display name, when known.
    inviter_name: Option<String>,
    /// Names of the roles offered.
    roles: Vec<String>,
    /// The invited address, partly hidden (`j***@example.com`).
    masked_email: String,
    /// When the link stops working.
    expires_at: DateTime<Utc>,
    /// The language chosen for the invitee, when set.
    locale: Option<String>,
}

/// Narrows `invitations`.
#[derive(InputObject, Default)]
pub struct InvitationFilter {
    /// One organization's invitations (`invitation.list` there); omitted: every organization's
    /// (`invitation.list` gateway-wide).
    organization_id: Option<ID>,
    /// Any of these statuses.
    statuses: Option<Vec<InvitationStatus>>,
    /// Case-insensitive text found in the email.
    email: Option<String>,
    /// Only invitations made by this user.
    invited_by: Option<ID>,
    /// Created after this instant.
    created_after: Option<DateTime<Utc>>,
    /// Created before this instant.
    created_before: Option<DateTime<Utc>>,
    /// Expiring before this instant.
    expiring_before: Option<DateTime<Utc>>,
}

impl InvitationFilter {
    fn into_rows(self) -> async_graphql::Result<RowFilter> {
        Ok(RowFilter {
            organization_ids: self
                .organization_id
                .as_ref()
                .map(|id| parse_id("filter.organizationId", id).map(|id| vec![id]))
                .transpose()?,
            statuses: self
                .statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            email: validate::search("filter.email", self.email)?,
            invited_by: self
                .invited_by
                .as_ref()
                .map(|id| parse_id("filter.invitedBy", id))
                .transpose()?,
            created_after: self.created_after.map(Into::into),
            created_before: self.created_before.map(Into::into),
            expiring_before: self.expiring_before.map(Into::into),
        })
    }
}

/// One person to invite.
#[derive(InputObject, Clone)]
pub struct InvitationRowInput {
    /// Their email address.
    email: String,
    /// Roles to grant in the organization on accepting (at least one). Offering a role needs what
    /// assigning it needs: `role.assign` there and every permission the role carries.
    role_ids: Vec<ID>,
    /// A personal note for the email (at most 1,000 characters).
    message: Option<String>,
    /// The language of the email and accept page, e.g. `de` (else the organization's default).
    locale: Option<String>,
}

impl InvitationRowInput {
    /// Unparseable role ids become ids that match no role, so the row gets its INVALID result.
    fn into_new(self) -> NewInvitation {
        NewInvitation {
            email: self.email,
            role_ids: self
                .role_ids
                .iter()
                .map(|id| parse_id("roleIds", id).unwrap_or(Id(uuid::Uuid::nil())))
                .collect(),
            message: self.message,
            locale: self.locale,
        }
    }
}

/// A new invitation.
#[derive(InputObject)]
pub struct CreateInvitationInput {
    /// The organization to join.
    organization_id: ID,
    #[graphql(flatten)]
    invitation: InvitationRowInput,
}

/// Many invitations to one organization.
#[derive(InputObject)]
pub struct CreateInvitationsInput {
    /// The organization to join.
    organization_id: ID,
    /// Up to 1,000 people.
    invitations: Vec<InvitationRowInput>,
    /// Makes retries safe: the same key and payload within 24 hours returns the first answer and
    /// creates nothing; the same key with another payload is a CONFLICT.
    idempotency_key: Option<String>,
}

/// What became of one row of `createInvitations`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum InvitationRowStatus {
    /// Created; the email is on its way.
    Created,
    /// The address belongs to a member already.
    AlreadyMember,
    /// A pending invitation for the address exists (see `invitation`).
    DuplicatePending,
    /// The row is malformed (see `field` and `message`).
    Invalid,
    /// You may not offer one of the row's roles here.
    Forbidden,
}

/// The result of one row, in input order.
#[derive(SimpleObject)]
pub struct InvitationRowResult {
    /// The row's position in the input (from 0).
    index: i32,
    status: InvitationRowStatus,
    /// The created invitation, or the pending one in the way.
    invitation: Option<Invitation>,
    /// For INVALID: the row's field at fault (`email`, `roleIds`, `message`, `locale`).
    field: Option<String>,
    /// Why the row was not created.
    message: Option<String>,
}

/// The answer to `createInvitations`.
#[derive(SimpleObject)]
pub struct CreateInvitationsPayload {
    /// One result per input row, in input order.
    results: Vec<InvitationRowResult>,
    /// Rows created by this call (0 when replayed).
    created_count: i32,
    /// True when this is the remembered answer to an earlier call with the same idempotency key.
    replayed: bool,
}

/// An invitation created or changed by a mutation.
#[derive(SimpleObject)]
pub struct InvitationPayload {
    /// The invitation as it is now.
    invitation: Invitation,
}

/// Accepting an invitation.
#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// The token from the email's link.
    token: String,
    /// For a new account: its password (at least 12 characters).
    password: Option<String>,
    /// For a new account: the name others see.
    display_name: Option<String>,
    /// For a new account without a password: the answer to the ceremony started by
    /// `startInvitationPasskey` (the account signs in with this passkey).
    passkey: Option<super::passkeys::FinishPasskeyCeremonyInput>,
}

/// The answer to `acceptInvitation`.
#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    /// The invitation, now accepted.
    invitation: Invitation,
    /// The membership the invitee now holds.
    membership: Membership,
    /// Tokens for the new account, when accepting created one (as `login` returns); null when
    /// you accepted while signed in.
    session: Option<AuthPayload>,
}

/// An invitation id.
#[derive(InputObject)]
pub struct InvitationIdInput {
    /// The invitation.
    id: ID,
}

#[derive(Default)]
pub struct InvitationQuery;

#[Object]
impl InvitationQuery {
    /// An invitation by id; null if it does not exist or you may not read it.
    async fn invitation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Invitation>> {
        let id = parse_id("id", &id)?;
        Ok(manage::get(ctx.app()?, ctx.actor()?, id).await?.map(Invitation))
    }

    /// Invitations, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<InvitationFilter>,
    ) -> async_graphql::Result<Paged<Invitation>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = filter.unwrap_or_default().into_rows()?;
        let result = manage::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, Invitation))
    }

    /// The invitation behind an emailed link, for the accept page: no credentials needed. Bad,
    /// spent, revoked and expired tokens are all NOT_FOUND; failed lookups are rate limited.
    async fn invitation_by_token(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<InvitationPreview> {
        let request = ctx.request()?;
        let preview = manage::preview(&request.app, &token, &request.client).await?;
        Ok(InvitationPreview {
            organization_name: preview
                .branding
                .display_name
                .clone()
                .unwrap_or_else(|| preview.organization.name.clone()),
            branding: Branding(preview.branding),
            inviter_name: preview.inviter_name,
            roles: preview.roles.into_iter().map(|role| role.name).collect(),
            masked_email: preview.masked_email,
            expires_at: preview.invitation.expires_at.0,
            locale: preview.invitation.locale,
        })
    }
}

#[derive(Default)]
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// Invites one person. Refusals are errors: BAD_USER_INPUT naming the field, FORBIDDEN, or
    /// CONFLICT with `extensions.reason` ALREADY_MEMBER or DUPLICATE_PENDING (`existingId`).
    async fn create_invitation(
        &self,
        ctx: &Context<'_>,
        input: CreateInvitationInput,
    ) -> async_graphql::Result<InvitationPayload> {
        let organization_id = parse_id("organizationId", &input.organization_id)?;
        for id in &input.invitation.role_ids {
            parse_id("roleIds", id)?;
        }
        let row = create::create_one(
            ctx.app()?,
            ctx.actor()?,
            organization_id,
            input.invitation.into_new(),
        )
        .await?;
        Ok(InvitationPayload {
            invitation: Invitation(row),
        })
    }

    /// Invites up to 1,000 people at once: one result per row, in input order; acceptable rows
    /// are created even when others are refused.
    async fn create_invitations(
        &self,
        ctx: &Context<'_>,
        input: CreateInvitationsInput,
    ) -> async_graphql::Result<CreateInvitationsPayload> {
        let (app, actor) = (ctx.app()?, ctx.actor()?);
        let organization_id = parse_id("organizationId", &input.organization_id)?;
        let rows = input
            .invitations
            .into_iter()
            .map(InvitationRowInput::into_new)
            .collect();
        let outcome = create::create_many(app, actor, organization_id, rows, input.idempotency_key).await?;
        let found: std::collections::HashMap<Id, InvitationRow> =
            outcome.invitations.into_iter().map(|row| (row.id, row)).collect();
        let mut created_count = 0;
        let results = outcome
            .results
            .into_iter()
            .enumerate()
            .map(|(index, result)| {
                let (status, id, field, message) = match result {
                    RowResult::Created { invitation_id } => {
                        created_count += 1;
                        (InvitationRowStatus::Created, Some(invitation_id), None, None)
                    }
                    RowResult::AlreadyMember => (
                        InvitationRowStatus::AlreadyMember,
                        None,
                        Some("email".to_owned()),
                        Some("this address belongs to a member already".to_owned()),
                    ),
                    RowResult::DuplicatePending { invitation_id } => (
                        InvitationRowStatus::DuplicatePending,
                        Some(invitation_id),
                        Some("email".to_owned()),
                        Some("a pending invitation for this address exists".to_owned()),
                    ),
                    RowResult::Invalid { field, message } => {
                        (InvitationRowStatus::Invalid, None, Some(field), Some(message))
                    }
                    RowResult::Forbidden { message } => {
                        (InvitationRowStatus::Forbidden, None, None, Some(message))
                    }
                };
                InvitationRowResult {
                    index: index as i32,
                    status,
                    invitation: id.and_then(|id| found.get(&id).cloned()).map(Invitation),
                    field,
                    message,
                }
            })
            .collect();
        Ok(CreateInvitationsPayload {
            results,
            created_count: if outcome.replayed { 0 } else { created_count },
            replayed: outcome.replayed,
        })
    }

    /// Sends a pending invitation again with a new link (the old one stops working at once) and a
    /// new expiry; at most once a minute and five times in all (RATE_LIMITED, `retryAfterSeconds`).
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> async_graphql::Result<InvitationPayload> {
        let id = parse_id("id", &input.id)?;
        let row = manage::resend(ctx.app()?, ctx.actor()?, id).await?;
        Ok(InvitationPayload {
            invitation: Invitation(row),
        })
    }

    /// Withdraws a pending invitation: its link stops working.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> async_graphql::Result<InvitationPayload> {
        let id = parse_id("id", &input.id)?;
        let row = manage::revoke(ctx.app()?, ctx.actor()?, id).await?;
        Ok(InvitationPayload {
            invitation: Invitation(row),
        })
    }

    /// Starts registering the passkey an invitee's new account will sign in with instead of a
    /// password; finish it with `acceptInvitation(input: {token, displayName, passkey})`.
    async fn start_invitation_passkey(
        &self,
        ctx: &Context<'_>,
        input: StartInvitationPasskeyInput,
    ) -> async_graphql::Result<PasskeyCeremony> {
        let request = ctx.request()?;
        let new = NewPasskey {
            name: input.name,
            attachment: input.authenticator_attachment.into(),
        };
        let started = accept::start_passkey(
            &request.app,
            &input.token,
            &input.display_name,
            new,
            &request.client,
        )
        .await?;
        Ok(started.into())
    }

    /// Accepts an invitation. Signed in, your account's email must be the invited one. Signed
    /// out with no account for the email, give a display name and password: the account is
    /// created and its session tokens returned. Signed out with an account: sign in first.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> async_graphql::Result<AcceptInvitationPayload> {
        let request = ctx.request()?;
        let actor = request.principal.optional_actor()?;
        let passkey = match input.passkey {
            Some(answer) => Some(answer.into_answer()?),
            None => None,
        };
        let acceptance = Acceptance {
            token: input.token,
            password: input.password,
            display_name: input.display_name,
            passkey,
        };
        let accepted = accept::accept(&request.app, actor, acceptance, &request.client).await?;
        Ok(AcceptInvitationPayload {
            invitation: Invitation(accepted.invitation),
            membership: Membership(accepted.membership),
            session: accepted.grant.map(AuthPayload::from),
        })
    }
}
