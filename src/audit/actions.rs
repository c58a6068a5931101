//! Every audit action the gateway records, in one place: the README's table is checked against it.

/// What an audit event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    UserCreated,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    OrganizationCreated,
    OrganizationUpdated,
    MemberAdded,
    MemberRemoved,
    OrganizationBrandingUpdated,
    InvitationCreated,
    InvitationResent,
    InvitationRevoked,
    InvitationAccepted,
    InvitationExpired,
    EmailDeliveryRetried,
    WebhookEndpointCreated,
    WebhookEndpointUpdated,
    WebhookEndpointDeleted,
    WebhookSecretRotated,
    WebhookEndpointDisabled,
    WebhookMessageExhausted,
    WebhookMessageRetried,
    WebhookReplayRequested,
    LoginSucceeded,
    LoginFailed,
    LoginLocked,
    SessionRefreshed,
    RefreshReused,
    SessionRevoked,
    SessionSteppedUp,
    StepUpFailed,
    PasskeyRegistered,
    PasskeyRegistrationFailed,
    PasskeyRenamed,
    PasskeyDeleted,
    PasskeyCounterRegressed,
    PasskeySetupLinkCreated,
    ApiKeyCreated,
    ApiKeyRevoked,
    PolicyCreated,
    PolicyUpdated,
    PolicyDeleted,
    PolicyAttached,
    PolicyDetached,
    CedarSchemaPut,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    RoleAssigned,
    RoleUnassigned,
    SigningKeyRotated,
    AuthorizationDenied,
    AuditExported,
    AuditPersonalDataErased,
    AuditPurged,
}

impl AuditAction {
    /// Every action, in the order the README lists them.
    pub const ALL: [AuditAction; 55] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::OrganizationCreated,
        Self::OrganizationUpdated,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::OrganizationBrandingUpdated,
        Self::InvitationCreated,
        Self::InvitationResent,
        Self::InvitationRevoked,
        Self::InvitationAccepted,
        Self::InvitationExpired,
        Self::EmailDeliveryRetried,
        Self::WebhookEndpointCreated,
        Self::WebhookEndpointUpdated,
        Self::WebhookEndpointDeleted,
        Self::WebhookSecretRotated,
        Self::WebhookEndpointDisabled,
        Self::WebhookMessageExhausted,
        Self::WebhookMessageRetried,
        Self::WebhookReplayRequested,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginLocked,
        Self::SessionRefreshed,
        Self::RefreshReused,
        Self::SessionRevoked,
        Self::SessionSteppedUp,
        Self::StepUpFailed,
        Self::PasskeyRegistered,
        Self::PasskeyRegistrationFailed,
        Self::PasskeyRenamed,
        Self::PasskeyDeleted,
        Self::PasskeyCounterRegressed,
        Self::PasskeySetupLinkCreated,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::PolicyCreated,
        Self::PolicyUpdated,
        Self::PolicyDeleted,
        Self::PolicyAttached,
        Self::PolicyDetached,
        Self::CedarSchemaPut,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::RoleAssigned,
        Self::RoleUnassigned,
        Self::SigningKeyRotated,
        Self::AuthorizationDenied,
        Self::AuditExported,
        Self::AuditPersonalDataErased,
        Self::AuditPurged,
    ];

    /// The dotted name stored and shown, e.g. `policy.created`.
    pub fn name(self) -> &'static str {
        self.describe().0
    }

    /// When the gateway records it.
    pub fn description(self) -> &'static str {
        self.describe().1
    }

    pub fn parse(name: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::UserCreated => (
                "user.created",
                "an account was created (by an administrator or at bootstrap)",
            ),
            Self::UserUpdated => (
                "user.updated",
                "an account's email, display name or password changed",
            ),
            Self::UserDisabled => ("user.disabled", "an account was disabled and its sessions ended"),
            Self::UserEnabled => ("user.enabled", "a disabled account was enabled again"),
            Self::OrganizationCreated => ("organization.created", "an organization was created"),
            Self::OrganizationUpdated => ("organization.updated", "an organization's name or slug changed"),
            Self::MemberAdded => ("member.added", "a user joined an organization"),
            Self::MemberRemoved => ("member.removed", "a user left an organization"),
            Self::OrganizationBrandingUpdated => (
                "organization.branding_updated",
                "an organization's branding (name in emails, logo, color, sender, support address, locale) changed",
            ),
            Self::InvitationCreated => (
                "invitation.created",
                "someone was invited to an organization (the email is queued)",
            ),
            Self::InvitationResent => (
                "invitation.resent",
                "an invitation was sent again with a new link and expiry (the old link died)",
            ),
            Self::InvitationRevoked => ("invitation.revoked", "a pending invitation was withdrawn"),
            Self::InvitationAccepted => (
                "invitation.accepted",
                "an invitation was accepted: the invitee joined with its roles",
            ),
            Self::InvitationExpired => ("invitation.expired", "a pending invitation lapsed unanswered"),
            Self::EmailDeliveryRetried => (
                "email.delivery_retried",
                "an administrator put a dead email delivery back in the queue",
            ),
            Self::WebhookEndpointCreated => (
                "webhook.endpoint_created",
                "a webhook endpoint was created (its secret is never recorded)",
            ),
            Self::WebhookEndpointUpdated => (
                "webhook.endpoint_updated",
                "a webhook endpoint's URL, event types, state or options changed",
            ),
            Self::WebhookEndpointDeleted => (
                "webhook.endpoint_deleted",
                "a webhook endpoint and its queued messages were deleted",
            ),
            Self::WebhookSecretRotated => (
                "webhook.secret_rotated",
                "a webhook endpoint's secret was replaced; the old one signs until the overlap ends",
            ),
            Self::WebhookEndpointDisabled => (
                "webhook.endpoint_disabled",
                "the gateway disabled a webhook endpoint (410 Gone, or failing for too long)",
            ),
            Self::WebhookMessageExhausted => (
                "webhook.message_exhausted",
                "a webhook message failed every attempt and went to the dead-letter queue",
            ),
            Self::WebhookMessageRetried => (
                "webhook.message_retried",
                "an administrator queued a failed or dead webhook message again",
            ),
            Self::WebhookReplayRequested => (
                "webhook.replay_requested",
                "an administrator redelivered a range of events, or recovered failed messages, to an endpoint",
            ),
            Self::LoginSucceeded => (
                "session.login_succeeded",
                "a password or passkey sign-in opened a session (`authMethod` says which)",
            ),
            Self::LoginFailed => (
                "session.login_failed",
                "a sign-in was refused (unknown email or credential, wrong password, failed passkey \
                 assertion, disabled account or rate limit)",
            ),
            Self::LoginLocked => (
                "session.login_locked",
                "too many failed logins for one account (from any address), or failed passkey sign-ins \
                 from one client (`authMethod: passkey`): they are refused until `lockedUntil`",
            ),
            Self::SessionRefreshed => (
                "session.refreshed",
                "a refresh token was exchanged for new tokens",
            ),
            Self::RefreshReused => (
                "session.refresh_reused",
                "a refresh token was presented again: the session was revoked",
            ),
            Self::SessionRevoked => ("session.revoked", "a session was ended (logout or revocation)"),
            Self::SessionSteppedUp => (
                "session.stepped_up",
                "a session proved a second factor with a passkey: it counts as MFA-verified until `mfaExpiresAt`",
            ),
            Self::StepUpFailed => (
                "session.step_up_failed",
                "a step-up passkey assertion was refused",
            ),
            Self::PasskeyRegistered => ("passkey.registered", "a passkey was registered to an account"),
            Self::PasskeyRegistrationFailed => (
                "passkey.registration_failed",
                "a passkey registration was refused (bad response, wrong origin, expired or replayed ceremony, …)",
            ),
            Self::PasskeyRenamed => ("passkey.renamed", "a passkey was renamed"),
            Self::PasskeyDeleted => ("passkey.deleted", "a passkey was removed from an account"),
            Self::PasskeyCounterRegressed => (
                "passkey.counter_regressed",
                "a passkey's signature counter went backwards (a possible clone): the sign-in was refused",
            ),
            Self::PasskeySetupLinkCreated => (
                "passkey.setup_link_created",
                "a link to register a passkey was issued for an account",
            ),
            Self::ApiKeyCreated => ("api_key.created", "an API key was created"),
            Self::ApiKeyRevoked => ("api_key.revoked", "an API key was revoked"),
            Self::PolicyCreated => ("policy.created", "a Cedar policy was created"),
            Self::PolicyUpdated => (
                "policy.updated",
                "a policy's source, name, description or state changed",
            ),
            Self::PolicyDeleted => ("policy.deleted", "a policy was deleted"),
            Self::PolicyAttached => ("policy.attached", "a policy template was attached to a role"),
            Self::PolicyDetached => ("policy.detached", "a policy template was detached from a role"),
            Self::CedarSchemaPut => ("cedar_schema.put", "a Cedar schema fragment was stored"),
            Self::RoleCreated => ("role.created", "a role was created"),
            Self::RoleUpdated => (
                "role.updated",
                "a role's name, description or permissions changed",
            ),
            Self::RoleDeleted => ("role.deleted", "a role was deleted"),
            Self::RoleAssigned => ("role.assigned", "a role was assigned to a user"),
            Self::RoleUnassigned => ("role.unassigned", "a role assignment was removed"),
            Self::SigningKeyRotated => ("signing_key.rotated", "the access-token signing key was rotated"),
            Self::AuthorizationDenied => (
                "authorization.denied",
                "the engine refused a gateway operation to its caller",
            ),
            Self::AuditExported => ("audit.exported", "audit events were exported"),
            Self::AuditPersonalDataErased => (
                "audit.personal_data_erased",
                "a user's personal data was pseudonymized in the audit log",
            ),
            Self::AuditPurged => ("audit.purged", "events older than a date were deleted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn names_are_unique_dotted_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for action in AuditAction::ALL {
            assert!(seen.insert(action.name()), "{} twice", action.name());
            assert!(action.name().contains('.'), "{} is not dotted", action.name());
            assert_eq!(AuditAction::parse(action.name()), Some(action));
        }
    }
}
