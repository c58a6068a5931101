//! GraphQL types and resolvers for organizations' white-label settings.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::context::ContextExt;
use super::ids::parse_id;
use crate::branding::Branding as Settings;
use crate::identity::branding;

/// An organization's white-label settings, used by its invitation emails and the accept page.
pub struct Branding(pub Settings);

#[Object]
impl Branding {
    /// The name shown in emails and pages instead of the organization's name.
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    /// An https URL of the logo shown in emails and pages.
    async fn logo_url(&self) -> Option<&str> {
        self.0.logo_url.as_deref()
    }

    /// Accent color as `#rrggbb`.
    async fn primary_color(&self) -> Option<&str> {
        self.0.primary_color.as_deref()
    }

    /// The sender name of emails (the address is the gateway's `PORTCULLIS_EMAIL_FROM`).
    async fn email_from_name(&self) -> Option<&str> {
        self.0.email_from_name.as_deref()
    }

    /// Where replies to emails go.
    async fn support_email(&self) -> Option<&str> {
        self.0.support_email.as_deref()
    }

    /// The language of emails and pages when an invitation names none (e.g. `de`).
    async fn default_locale(&self) -> Option<&str> {
        self.0.default_locale.as_deref()
    }
}

/// An organization's whole branding; omitted or empty fields are cleared.
#[derive(InputObject)]
pub struct UpdateOrganizationBrandingInput {
    /// The organization.
    organization_id: ID,
    /// Name shown in emails and pages (1–100 characters).
    display_name: Option<String>,
    /// An https URL of the logo.
    logo_url: Option<String>,
    /// Accent color as `#rrggbb`.
    primary_color: Option<String>,
    /// Sender name of emails.
    email_from_name: Option<String>,
    /// Where replies go.
    support_email: Option<String>,
    /// A supported locale tag (`en`, `de`, `fr`, …).
    default_locale: Option<String>,
}

/// The branding as stored by `updateOrganizationBranding`.
#[derive(SimpleObject)]
pub struct BrandingPayload {
    /// The branding as it is now.
    branding: Branding,
}

#[derive(Default)]
pub struct BrandingMutation;

#[Object]
impl BrandingMutation {
    /// Sets an organization's branding (needs `organization.update` there: organization owners).
    async fn update_organization_branding(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationBrandingInput,
    ) -> async_graphql::Result<BrandingPayload> {
        let organization_id = parse_id("organizationId", &input.organization_id)?;
        let wanted = Settings {
            display_name: input.display_name,
            logo_url: input.logo_url,
            primary_color: input.primary_color,
            email_from_name: input.email_from_name,
            support_email: input.support_email,
            default_locale: input.default_locale,
        };
        let stored = branding::update(ctx.app()?, ctx.actor()?, organization_id, wanted).await?;
        Ok(BrandingPayload {
            branding: Branding(stored),
        })
    }
}
