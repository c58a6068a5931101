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
use crate::db::models::{InvitationRow, MembershipRow, PasskeyRow, RoleAssignmentRow, UserRow};
use crate::db::{Id, cedar_schemas, memberships, passkeys, role_assignments, users};
use crate::error::{Error, Result};
use crate::identity::organizations::organization_target;
use crate::identity::sessions::{self, Grant};
use crate::identity::users::{ACTIVE, user_target};
use crate::identity::{Actor, ClientInfo, SessionMethod, passwords, validate};
use crate::passkeys::ceremony::{self, Ceremony, Purpose, Started};
use crate::passkeys::register::{self, Holder};
use crate::passkeys::{NewPasskey, credential, passkey_target};

/// What the invitee sends.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub token: String,
    /// For a new account: its password.
    pub password: Option<String>,
    /// For a new account: the name others see.
    pub display_name: Option<String>,
    /// For a new account without a password: the browser's answer to the registration ceremony
    /// started by [`start_passkey`].
    pub passkey: Option<PasskeyAnswer>,
}

/// A registration response and the ceremony it answers.
#[derive(Debug, Clone)]
pub struct PasskeyAnswer {
    pub ceremony_id: Id,
    pub credential: serde_json::Value,
}

/// Starts registering the passkey a new account will sign in with, instead of a password: the
/// ceremony is finished by [`accept`] with [`Acceptance::passkey`].
pub async fn start_passkey(
    app: &App,
    token: &str,
    display_name: &str,
    passkey: NewPasskey,
    client: &ClientInfo,
) -> Result<Started> {
    let invitation = by_token(app, token, client).await?;
    let mut conn = app.db.conn().await?;
    if users::find_by_email(&mut conn, &invitation.email)
        .await?
        .is_some()
    {
        return Err(Error::unauthenticated(
            "an account with the invited email exists: sign in, then accept the invitation",
        ));
    }
    drop(conn);
    let display_name = validate::name("displayName", display_name, 100)?;
    let holder = Holder {
        id: Id::new_v7(),
        email: &invitation.email,
        display_name: &display_name,
    };
    let purpose = Purpose::Invitation {
        invitation_id: invitation.id,
    };
    register::begin(app, holder, passkey, purpose).await
}

/// The invitee's new passkey, verified against the ceremony it answers (which must be this
/// invitation's); the account it was made for gets its id.
async fn invited_passkey(
    app: &App,
    invitation: &InvitationRow,
    answer: &PasskeyAnswer,
    client: &ClientInfo,
) -> Result<PasskeyRow> {
    let result = async {
        let response = credential::registration(&answer.credential)?;
        let now = app.now();
        let mut conn = app.db.conn().await?;
        let registration = match ceremony::take(&mut conn, answer.ceremony_id, now).await? {
            Some(Ceremony::Registration(registration))
                if registration.purpose
                    == (Purpose::Invitation {
                        invitation_id: invitation.id,
                    }) =>
            {
                registration
            }
            _ => return Err(register::unknown_ceremony()),
        };
        let passkey = register::verify(app, &registration, &response)?;
        credential::new_row(
            registration.user_id,
            &registration.name,
            &passkey,
            &response,
            &answer.credential,
            now,
        )
    }
    .await;
    if let Err(error) = &result {
        crate::passkeys::registration_refused(app, client, error).await?;
    }
    result
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
            let (id, password_hash, passkey) = match &input.passkey {
                Some(answer) => {
                    if input.password.is_some() {
                        return Err(Error::bad_input(
                            "password",
                            "give a password or a passkey, not both",
                        ));
                    }
                    let passkey = invited_passkey(app, &invitation, answer, client).await?;
                    (passkey.user_id, None, Some(passkey))
                }
                None => {
                    let password = input.password.unwrap_or_default();
                    validate::password("password", &password)?;
                    (Id::new_v7(), Some(passwords::hash(password).await?), None)
                }
            };
            let now = app.now();
            let user = UserRow {
                id,
                email: invitation.email.clone(),
                display_name,
                password_hash,
                status: ACTIVE,
                created_at: now,
                updated_at: now,
            };
            Joiner::New(NewAccount { user, passkey })
        }
    };
    let (accepted, membership) = join(app, &invitation, &joiner, client).await?;
    let (user, grant) = match joiner {
        Joiner::Existing(actor) => (actor.user, None),
        Joiner::New(account) => {
            let NewAccount { user, passkey } = account;
            let method = match passkey {
                Some(_) => SessionMethod::Passkey,
                None => SessionMethod::Password,
            };
            let grant = sessions::open(app, user.clone(), method, client).await?;
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
    New(NewAccount),
}

/// A new account and, when it has no password, its passkey.
struct NewAccount {
    user: UserRow,
    passkey: Option<PasskeyRow>,
}

impl Joiner {
    fn user(&self) -> &UserRow {
        match self {
            Self::Existing(actor) => &actor.user,
            Self::New(account) => &account.user,
        }
    }

    /// An event by the joiner.
    fn event(&self, action: AuditAction, client: &ClientInfo) -> Event {
        match self {
            Self::Existing(actor) => Event::by(actor, action),
            Self::New(account) => {
                Event::anonymous(action, client).as_user(account.user.id, &account.user.display_name)
            }
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
            if let Joiner::New(account) = joiner {
                let user = &account.user;
                users::insert(tx, user).await?;
                events.push(
                    joiner
                        .event(AuditAction::UserCreated, client)
                        .target(user_target(user))
                        .with("passwordSet", user.password_hash.is_some())
                        .with("invitation", accepted.id),
                );
                if let Some(passkey) = &account.passkey {
                    passkeys::insert(tx, passkey).await?;
                    events.push(
                        joiner
                            .event(AuditAction::PasskeyRegistered, client)
                            .target(user_target(user))
                            .target(passkey_target(passkey))
                            .with("via", "invitation"),
                    );
                }
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
