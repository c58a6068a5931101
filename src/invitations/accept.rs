//! Accepting an invitation: the invitee joins with the offered roles, creating an account first
//! when they have none.
//!
//! The invitation's status, the account, the membership, the role assignments and every audit
//! event are one transaction, guarded by the token still being the invitation's: of two accepts of
//! one token racing, exactly one wins and the other finds nothing.

use super::create::invitation_target;
use super::manage::by_token;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::roles::role_target;
use crate::db::invitations::{self as rows, ACCEPTED};
use crate::db::models::{InvitationRow, MembershipRow, RoleAssignmentRow, UserRow};
use crate::db::{Id, cedar_schemas, memberships, role_assignments, users};
use crate::error::{Error, Result};
use crate::identity::organizations::organization_target;
use crate::identity::sessions::{self, Grant};
use crate::identity::users::{ACTIVE, user_target};
use crate::identity::{Actor, ClientInfo, passwords, validate};

/// What the invitee sends.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub token: String,
    /// For a new account: its password.
    pub password: Option<String>,
    /// For a new account: the name others see.
    pub display_name: Option<String>,
}

/// What accepting did.
#[derive(Debug)]
pub struct Accepted {
    pub invitation: InvitationRow,
    pub user: UserRow,
    pub membership: MembershipRow,
    /// Tokens for the account, when accepting created it (as `login` gives).
    pub grant: Option<Grant>,
}

/// Accepts as `actor` (whose email must be the invited one) or, signed out, as a new account.
pub async fn accept(
    app: &App,
    actor: Option<&Actor>,
    input: Acceptance,
    client: &ClientInfo,
) -> Result<Accepted> {
    let invitation = by_token(app, &input.token, client).await?;
    let joiner = match actor {
        Some(actor) if actor.user.email != invitation.email => {
            return Err(Error::bad_input(
                "token",
                "this invitation was sent to another email address; sign in with that account to accept it",
            ));
        }
        Some(actor) => Joiner::Existing(actor.clone()),
        None => {
            let mut conn = app.db.conn().await?;
            if users::find_by_email(&mut conn, &invitation.email)
                .await?
                .is_some()
            {
                return Err(Error::unauthenticated(
                    "an account with the invited email exists: sign in, then accept the invitation",
                ));
            }
            let display_name =
                validate::name("displayName", input.display_name.as_deref().unwrap_or(""), 100)?;
            let password = input.password.unwrap_or_default();
            validate::password("password", &password)?;
            let now = app.now();
            Joiner::New(UserRow {
                id: Id::new_v7(),
                email: invitation.email.clone(),
                display_name,
                password_hash: Some(passwords::hash(password).await?),
                status: ACTIVE.to_owned(),
                created_at: now,
                updated_at: now,
            })
        }
    };
    let (accepted, membership) = join(app, &invitation, &joiner, client).await?;
    let (user, grant) = match joiner {
        Joiner::Existing(actor) => (actor.user, None),
        Joiner::New(user) => {
            let grant = sessions::open(app, user.clone(), client).await?;
            (user, Some(grant))
        }
    };
    Ok(Accepted {
        invitation: accepted,
        user,
        membership,
        grant,
    })
}

/// Who is joining.
enum Joiner {
    Existing(Actor),
    /// An account to create with the acceptance.
    New(UserRow),
}

impl Joiner {
    fn user(&self) -> &UserRow {
        match self {
            Self::Existing(actor) => &actor.user,
            Self::New(user) => user,
        }
    }

    /// An event by the joiner.
    fn event(&self, action: AuditAction, client: &ClientInfo) -> Event {
        match self {
            Self::Existing(actor) => Event::by(actor, action),
            Self::New(user) => Event::anonymous(action, client).as_user(user.id, &user.display_name),
        }
    }
}

async fn join(
    app: &App,
    invitation: &InvitationRow,
    joiner: &Joiner,
    client: &ClientInfo,
) -> Result<(InvitationRow, MembershipRow)> {
    let now = app.now();
    let user = joiner.user();
    let organization_id = invitation.organization_id;
    let mut accepted = invitation.clone();
    accepted.status = ACCEPTED.to_owned();
    accepted.token_hash = None;
    accepted.accepted_by_user_id = Some(user.id);
    accepted.accepted_at = Some(now);
    accepted.ended_at = Some(now);
    accepted.updated_at = now;
    let spent = invitation.token_hash.clone();
    let mut conn = app.db.conn().await?;
    let membership = conn
        .transaction(async |tx| {
            // First: the losing accept of a race waits here, then finds the token spent. (Who
            // accepted is written once a new account exists.)
            let mut claimed = accepted.clone();
            claimed.accepted_by_user_id = None;
            if !rows::update_if_pending(tx, &claimed, spent.as_deref()).await? {
                return Err(Error::NotFound("invitation"));
            }
            let organization = crate::db::organizations::find(tx, organization_id)
                .await?
                .ok_or(Error::NotFound("invitation"))?;
            let in_organization = |event: Event| event.in_organization(Some(organization_id));
            let mut events = Vec::new();
            if let Joiner::New(user) = joiner {
                users::insert(tx, user).await?;
                events.push(
                    joiner
                        .event(AuditAction::UserCreated, client)
                        .target(user_target(user))
                        .with("passwordSet", true)
                        .with("invitation", accepted.id),
                );
            }
            rows::set_accepted_by(tx, accepted.id, user.id).await?;
            let membership = match memberships::find(tx, organization_id, user.id).await? {
                Some(existing) => existing,
                None => {
                    let row = MembershipRow {
                        id: Id::new_v7(),
                        organization_id,
                        user_id: user.id,
                        created_at: now,
                    };
                    memberships::insert(tx, &row).await?;
                    events.push(in_organization(
                        joiner
                            .event(AuditAction::MemberAdded, client)
                            .target(user_target(user))
                            .target(organization_target(&organization)),
                    ));
                    row
                }
            };
            for (_, role) in rows::roles_of(tx, &[accepted.id]).await? {
                if role_assignments::find(tx, user.id, role.id, Some(organization_id))
                    .await?
                    .is_some()
                {
                    continue;
                }
                let row = RoleAssignmentRow {
                    id: Id::new_v7(),
                    user_id: user.id,
                    role_id: role.id,
                    organization_id: Some(organization_id),
                    created_at: now,
                };
                role_assignments::insert(tx, &row).await?;
                events.push(in_organization(
                    joiner
                        .event(AuditAction::RoleAssigned, client)
                        .target(user_target(user))
                        .target(role_target(&role))
                        .target(Target::new("role_assignment", row.id, None))
                        .with("invitation", accepted.id),
                ));
            }
            cedar_schemas::bump_version(tx).await?;
            events.push(in_organization(
                joiner
                    .event(AuditAction::InvitationAccepted, client)
                    .target(invitation_target(&accepted))
                    .target(user_target(user))
                    .with("email", &accepted.email),
            ));
            audit::record_all(tx, now, events).await?;
            Ok(membership)
        })
        .await?;
    app.engine.refresh(&app.db).await?;
    Ok((accepted, membership))
}
