//! Row structs: what a table holds, read and written as whole rows. Not GraphQL types.

use diesel::{AsChangeset, Insertable, Queryable, Selectable};

use crate::db::enums::{ActorType, Outcome, SessionMethod, UserStatus};
use crate::db::types::{Id, Timestamp};

use crate::db::schema::{
    api_keys, audit_chains, audit_events, audit_inbox, audit_targets, cedar_schemas, invitation_batches,
    invitations, jobs, memberships, organization_branding, organizations, passkey_setup_links, passkeys,
    policies, refresh_tokens, role_assignments, role_policies, roles, sessions, signing_keys, users,
    webauthn_ceremonies, webhook_attempts, webhook_endpoints, webhook_messages,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Id,
    /// Stored lower-cased, so uniqueness is case-insensitive on both backends.
    pub email: String,
    pub display_name: String,
    /// Argon2id PHC string; `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    pub status: UserStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub id: Id,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub id: Id,
    pub organization_id: Id,
    pub user_id: Id,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: Id,
    pub user_id: Id,
    /// How the session was opened.
    pub auth_method: SessionMethod,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_refreshed_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
    /// When the session last proved a second factor (a passkey sign-in or step-up).
    pub mfa_verified_at: Option<Timestamp>,
    /// Until when the session counts as MFA-verified (`context.mfa`).
    pub mfa_expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: Id,
    pub session_id: Id,
    /// SHA-256 of the secret part of the token.
    pub secret_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// Address of the client that spent the token (a retry must come from the same one).
    pub used_ip: Option<String>,
    /// User agent of the client that spent the token.
    pub used_user_agent: Option<String>,
    /// The token issued when this one was spent.
    pub replaced_by: Option<Id>,
    /// Random half of what the successor's secret is derived from (the other half is this token's
    /// secret, never stored); erased once the successor is spent.
    pub successor_salt: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    /// The public, displayable start of the key (`pck_…`), unique, used to find the row.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub secret_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub id: Id,
    /// JOSE algorithm name; `EdDSA` (Ed25519).
    pub algorithm: String,
    /// PKCS#8 document of the private key.
    pub private_key: Vec<u8>,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    pub created_at: Timestamp,
    /// When instances stop signing with the key (a later key's `activates_at`); it stays
    /// published and verifies for one token lifetime more.
    pub retired_at: Option<Timestamp>,
    /// When instances start signing with the key; until then it is only published.
    pub activates_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles)]
pub struct RoleRow {
    pub id: Id,
    /// Machine name, unique among global roles or within its organization.
    pub key: String,
    pub name: String,
    pub description: String,
    /// `None` for roles defined for every organization.
    pub organization_id: Option<Id>,
    /// JSON array of gateway action names (`"*"` for all).
    pub permissions: String,
    pub built_in: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = policies)]
pub struct PolicyRow {
    pub id: Id,
    pub name: String,
    pub description: String,
    /// Cedar source of one policy or template.
    pub source: String,
    /// `static` or `template` (has a `?principal` slot).
    pub kind: String,
    /// `permit` or `forbid`.
    pub effect: String,
    pub enabled: bool,
    /// 1 on creation, +1 on every change.
    pub version: i64,
    pub created_by: Option<Id>,
    pub updated_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = role_policies)]
pub struct RolePolicyRow {
    pub role_id: Id,
    pub policy_id: Id,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = role_assignments)]
pub struct RoleAssignmentRow {
    pub id: Id,
    pub user_id: Id,
    pub role_id: Id,
    /// `None` for a global assignment, which applies in every organization.
    pub organization_id: Option<Id>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cedar_schemas)]
pub struct CedarSchemaRow {
    /// The Cedar namespace the fragment declares.
    pub namespace: String,
    pub source: String,
    pub updated_by: Option<Id>,
    pub updated_at: Timestamp,
}

/// One audit event. `targets` and `metadata` are JSON; `actor_name`, target display names, `ip`,
/// `user_agent` and `metadata` are the personal part, covered by `personal_digest` (salted) so that
/// erasing them leaves the hash chain intact.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct AuditEventRow {
    pub id: Id,
    /// Commit order across the whole log: cursors and live feeds follow it.
    pub seq: i64,
    pub occurred_at: Timestamp,
    pub action: String,
    pub actor_type: ActorType,
    pub actor_id: Option<Id>,
    /// The user behind the actor (the user itself, or an API key's owner).
    pub actor_user_id: Option<Id>,
    pub actor_name: Option<String>,
    pub organization_id: Option<Id>,
    pub outcome: Outcome,
    pub targets: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: String,
    pub version: i32,
    pub salt: String,
    pub personal_digest: String,
    pub prev_hash: String,
    pub hash: String,
    pub erased_at: Option<Timestamp>,
}

/// An event waiting in the inbox for its position (PostgreSQL's audited transactions write these):
/// everything but the position and the hashes that depend on it. The personal digest is final.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_inbox, treat_none_as_default_value = false)]
pub struct PendingEventRow {
    pub id: Id,
    pub occurred_at: Timestamp,
    pub action: String,
    pub actor_type: ActorType,
    pub actor_id: Option<Id>,
    pub actor_user_id: Option<Id>,
    pub actor_name: Option<String>,
    pub organization_id: Option<Id>,
    pub outcome: Outcome,
    pub targets: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: String,
    pub version: i32,
    pub salt: String,
    pub personal_digest: String,
}

impl PendingEventRow {
    /// The event at position `seq`, linked to `prev_hash`, with its hash still to be computed.
    pub fn positioned(self, seq: i64, prev_hash: String) -> AuditEventRow {
        AuditEventRow {
            id: self.id,
            seq,
            occurred_at: self.occurred_at,
            action: self.action,
            actor_type: self.actor_type,
            actor_id: self.actor_id,
            actor_user_id: self.actor_user_id,
            actor_name: self.actor_name,
            organization_id: self.organization_id,
            outcome: self.outcome,
            targets: self.targets,
            ip: self.ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
            metadata: self.metadata,
            version: self.version,
            salt: self.salt,
            personal_digest: self.personal_digest,
            prev_hash,
            hash: String::new(),
            erased_at: None,
        }
    }
}

/// A target of an audit event, for filtering by type and id.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_targets, treat_none_as_default_value = false)]
pub struct AuditTargetRow {
    pub event_id: Id,
    pub position: i32,
    pub target_type: String,
    pub target_id: String,
    /// Personal data: erased with the event's other personal fields.
    pub display_name: Option<String>,
}

/// The head of one hash chain (an organization's, or the gateway-wide one), and where verification
/// starts after a purge.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_chains)]
pub struct AuditChainRow {
    pub chain: String,
    pub head_seq: i64,
    pub head_hash: String,
    pub anchor_seq: i64,
    pub anchor_hash: String,
}

/// An organization's white-label settings; every field optional (the gateway's defaults apply).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = organization_branding, treat_none_as_null = true)]
pub struct BrandingRow {
    pub organization_id: Id,
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub email_from_name: Option<String>,
    pub support_email: Option<String>,
    pub default_locale: Option<String>,
    pub updated_at: Timestamp,
}

/// An invitation to join an organization. Its roles are in `invitation_roles`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = invitations, treat_none_as_null = true)]
pub struct InvitationRow {
    pub id: Id,
    pub organization_id: Id,
    /// Normalized: trimmed and lower-cased.
    pub email: String,
    pub message: Option<String>,
    pub locale: Option<String>,
    /// `pending`, `accepted`, `revoked` or `expired` as stored; a pending row past `expires_at`
    /// reads as expired before the sweep marks it.
    pub status: String,
    /// SHA-256 of the token in the latest email; `None` until that email is sent.
    pub token_hash: Option<Vec<u8>>,
    pub invited_by_user_id: Option<Id>,
    pub invited_by_api_key_id: Option<Id>,
    pub expires_at: Timestamp,
    pub send_count: i32,
    pub last_sent_at: Option<Timestamp>,
    pub accepted_by_user_id: Option<Id>,
    pub accepted_at: Option<Timestamp>,
    pub revoked_by_user_id: Option<Id>,
    pub revoked_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The remembered answer to one bulk invitation call, for its idempotency key.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitation_batches)]
pub struct InvitationBatchRow {
    pub organization_id: Id,
    pub idempotency_key: String,
    /// SHA-256 (hex) of the canonical payload: the same key with another payload is a conflict.
    pub payload_digest: String,
    /// The per-row results as JSON.
    pub results: String,
    pub created_at: Timestamp,
}

/// A unit of outbound work in the durable queue.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jobs, treat_none_as_null = true)]
pub struct JobRow {
    pub id: Id,
    /// What to do, e.g. `invitation.email`.
    pub kind: String,
    /// The kind's input as JSON.
    pub payload: String,
    pub organization_id: Option<Id>,
    pub recipient: Option<String>,
    /// `pending`, `running`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// When the job is (next) due.
    pub run_at: Timestamp,
    /// While running: when the claim lapses and another worker may take the job over.
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Jobs sharing a lane are throttled together (see `db::jobs::claim`).
    pub lane: Option<String>,
    /// Within an ordered lane: the job runs once every earlier one has settled.
    pub lane_position: Option<i64>,
}

/// Where and what a webhook delivers. (Its `Debug` leaves the secrets out.)
#[derive(Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = webhook_endpoints, treat_none_as_null = true)]
pub struct WebhookEndpointRow {
    pub id: Id,
    pub organization_id: Option<Id>,
    pub url: String,
    pub description: String,
    /// JSON array of action names and `prefix.*` patterns; empty: every event.
    pub event_types: String,
    pub enabled: bool,
    pub ordered: bool,
    pub include_sensitive: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    /// Audit events up to here have been turned into messages.
    pub cursor_seq: i64,
    pub next_position: i64,
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    pub owner_user_id: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for WebhookEndpointRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointRow")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("ordered", &self.ordered)
            .field("cursor_seq", &self.cursor_seq)
            .field("next_position", &self.next_position)
            .finish_non_exhaustive()
    }
}

/// One payload for one endpoint; its delivery state is the job with the same id.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_messages, treat_none_as_null = true)]
pub struct WebhookMessageRow {
    pub id: Id,
    pub endpoint_id: Id,
    /// `event`, `replay` or `test`.
    pub kind: String,
    pub event_id: Option<Id>,
    pub event_seq: Option<i64>,
    pub event_type: String,
    pub created_at: Timestamp,
}

/// One try at delivering a message.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts, treat_none_as_null = true)]
pub struct WebhookAttemptRow {
    pub id: Id,
    pub message_id: Id,
    pub endpoint_id: Id,
    pub attempted_at: Timestamp,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: Id,
    pub user_id: Id,
    /// base64url of the credential id.
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON: public key, signature counter, backup flags.
    pub credential: String,
    /// `platform` or `cross-platform`, as the browser reported it at registration.
    pub authenticator_attachment: Option<String>,
    /// JSON array of transport hints.
    pub transports: String,
    pub aaguid: Option<String>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_ceremonies)]
pub struct CeremonyRow {
    pub id: Id,
    /// `registration`, `authentication` or `step_up`.
    pub kind: String,
    pub user_id: Option<Id>,
    /// The ceremony's server-side state (JSON), what the finishing step verifies against.
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkey_setup_links)]
pub struct PasskeySetupLinkRow {
    pub id: Id,
    pub user_id: Id,
    /// SHA-256 of the link's token; the token itself is shown once.
    pub token_hash: Vec<u8>,
    pub created_by_user_id: Option<Id>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}
