//! Organizations' white-label settings: read with the organization, set by its owners, validated
//! here (https URLs, `#rrggbb` colors, a supported locale).

use crate::app::App;
use crate::audit::{self, AuditAction, Event};
use crate::authz::{Action, Resource, guard};
use crate::branding::Branding;
use crate::db::models::BrandingRow;
use crate::db::{Id, branding as rows, organizations};
use crate::error::{Error, Result};
use crate::identity::organizations::organization_target;
use crate::identity::{Actor, validate};

/// The settings as emails and pages use them.
pub fn view(row: BrandingRow) -> Branding {
    Branding {
        display_name: row.display_name,
        logo_url: row.logo_url,
        primary_color: row.primary_color,
        email_from_name: row.email_from_name,
        support_email: row.support_email,
        default_locale: row.default_locale,
    }
}

/// Replaces an organization's branding (every field; `None` clears one). Needs
/// `organization.update` there.
pub async fn update(app: &App, actor: &Actor, organization_id: Id, wanted: Branding) -> Result<Branding> {
    guard::check(
        app,
        actor,
        Action::OrganizationUpdate,
        Resource::Organization(organization_id),
    )
    .await?;
    let checked = check(wanted)?;
    let now = app.now();
    let row = BrandingRow {
        organization_id,
        display_name: checked.display_name.clone(),
        logo_url: checked.logo_url.clone(),
        primary_color: checked.primary_color.clone(),
        email_from_name: checked.email_from_name.clone(),
        support_email: checked.support_email.clone(),
        default_locale: checked.default_locale.clone(),
        updated_at: now,
    };
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        let organization = organizations::find(tx, organization_id)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        let before = rows::find(tx, organization_id)
            .await?
            .map(view)
            .unwrap_or_default();
        rows::upsert(tx, &row).await?;
        let event = Event::by(actor, AuditAction::OrganizationBrandingUpdated)
            .in_organization(Some(organization_id))
            .target(organization_target(&organization))
            .change("displayName", &before.display_name, &checked.display_name)
            .change("logoUrl", &before.logo_url, &checked.logo_url)
            .change("primaryColor", &before.primary_color, &checked.primary_color)
            .change("emailFromName", &before.email_from_name, &checked.email_from_name)
            .change("supportEmail", &before.support_email, &checked.support_email)
            .change("defaultLocale", &before.default_locale, &checked.default_locale);
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(checked)
}

/// Branding of an organization, for those who may read the organization.
pub async fn get(app: &App, organization_id: Id) -> Result<Branding> {
    let mut conn = app.db.conn().await?;
    Ok(rows::find(&mut conn, organization_id)
        .await?
        .map(view)
        .unwrap_or_default())
}

fn check(wanted: Branding) -> Result<Branding> {
    let text = |field: &str, value: Option<String>| -> Result<Option<String>> {
        match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(value) => validate::name(field, value, 100).map(Some),
        }
    };
    let logo_url = match wanted.logo_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => Some(https_url("logoUrl", url)?),
    };
    let primary_color = match wanted.primary_color.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(color) => Some(hex_color("primaryColor", color)?),
    };
    let support_email = match wanted.support_email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(email) => Some(validate::email("supportEmail", email)?),
    };
    let default_locale = match wanted.default_locale.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(tag) if crate::i18n::is_supported(tag) => Some(tag.to_owned()),
        Some(tag) => {
            let known: Vec<&str> = crate::i18n::supported().collect();
            return Err(Error::bad_input(
                "defaultLocale",
                format!("{tag:?} is not a supported locale (one of {})", known.join(", ")),
            ));
        }
    };
    Ok(Branding {
        display_name: text("displayName", wanted.display_name)?,
        email_from_name: text("emailFromName", wanted.email_from_name)?,
        logo_url,
        primary_color,
        support_email,
        default_locale,
    })
}

/// An absolute `https://` URL of at most 2,048 characters with a host and nothing that needs
/// quoting in HTML or CSS.
fn https_url(field: &str, url: &str) -> Result<String> {
    let refuse = || Error::bad_input(field, "must be an https:// URL");
    let rest = url.strip_prefix("https://").ok_or_else(refuse)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let fine =
        |c: char| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`' | '(' | ')');
    if url.len() > 2048 || host.is_empty() || host.contains('@') || !url.chars().all(fine) {
        return Err(refuse());
    }
    Ok(url.to_owned())
}

/// `#rrggbb`, lower-cased.
fn hex_color(field: &str, color: &str) -> Result<String> {
    match color.strip_prefix('#') {
        Some(hex) if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(color.to_ascii_lowercase())
        }
        _ => Err(Error::bad_input(field, "must be a color as #rrggbb")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_colors() {
        assert!(https_url("f", "https://cdn.example.com/logo.png").is_ok());
        for bad in [
            "http://x.com/a.png",
            "https://",
            "https://a.com/\"onerror",
            "javascript:alert(1)",
            "https://u@x.com",
        ] {
            assert!(https_url("f", bad).is_err(), "{bad}");
        }
        assert_eq!(hex_color("f", "#A1B2C3").unwrap(), "#a1b2c3");
        for bad in ["a1b2c3", "#a1b2c", "#ggg000", "red"] {
            assert!(hex_color("f", bad).is_err(), "{bad}");
        }
    }
}
