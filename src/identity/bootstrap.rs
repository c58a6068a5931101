//! First start: create the configured super-administrator, or say how to.

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::engine::SUPER_ADMIN_ROLE;
use crate::db::models::RoleAssignmentRow;
use crate::db::{Id, cedar_schemas, role_assignments, users};
use crate::error::{Error, Result};
use crate::identity::users::user_target;
use crate::identity::users::{NewUser, insert};
use crate::identity::validate;

/// Creates `PORTCULLIS_ADMIN_EMAIL` as super-administrator while no gateway-wide super-administrator
/// exists at all. Idempotent, never touches an existing account, and does not come back once the
/// administrator changed their email: the configuration only seeds the first administrator.
pub async fn run(app: &App) -> Result<()> {
    let config = &app.config;
    match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => {
            let email = validate::email("PORTCULLIS_ADMIN_EMAIL", email)?;
            let super_admin: Id = SUPER_ADMIN_ROLE
                .parse()
                .map_err(|e| Error::internal(anyhow::anyhow!("super_admin id: {e}")))?;
            let mut conn = app.db.conn().await?;
            if role_assignments::any_global(&mut conn, super_admin).await? {
                tracing::debug!("a super-administrator exists: no bootstrap");
                return Ok(());
            }
            if users::find_by_email(&mut conn, &email).await?.is_some() {
                // Promoting an existing account from configuration would hand it the gateway.
                tracing::warn!(
                    "no super-administrator exists, and PORTCULLIS_ADMIN_EMAIL names an existing \
                     account, which bootstrap does not promote: set an address no account has"
                );
                return Ok(());
            }
            drop(conn);
            let new = NewUser {
                email: email.clone(),
                display_name: "Administrator".to_owned(),
                password: Some(password.clone()),
            };
            let user = insert(app, new, None).await?;
            let assignment = RoleAssignmentRow {
                id: Id::new_v7(),
                user_id: user.id,
                role_id: super_admin,
                organization_id: None,
                created_at: app.now(),
            };
            let mut conn = app.db.conn().await?;
            let event = Event::system(AuditAction::RoleAssigned)
                .target(user_target(&user))
                .target(Target::new("role", super_admin, "Super administrator".to_owned()))
                .target(Target::new("role_assignment", assignment.id, None))
                .with("reason", "bootstrap");
            conn.transaction(async |tx| {
                role_assignments::insert(tx, &assignment).await?;
                cedar_schemas::bump_version(tx).await?;
                audit::record(tx, assignment.created_at, event).await
            })
            .await?;
            app.engine.refresh(&app.db).await?;
            tracing::info!(%email, "created the bootstrap super-administrator");
        }
        (None, None) => {
            let mut conn = app.db.conn().await?;
            if users::count_all(&mut conn).await? == 0 {
                tracing::warn!(
                    "no users yet: restart with PORTCULLIS_ADMIN_EMAIL and PORTCULLIS_ADMIN_PASSWORD \
                     set to create the first super-administrator"
                );
            }
        }
        _ => tracing::warn!(
            "set both PORTCULLIS_ADMIN_EMAIL and PORTCULLIS_ADMIN_PASSWORD to bootstrap an administrator"
        ),
    }
    Ok(())
}
