//! Refusals, as checklists: every GraphQL operation against a caller without any role (and without
//! credentials at all), every relation against a caller who reaches the object it hangs off but
//! may not read the related one, and organization isolation for every organization-scoped
//! operation.
//!
//! A guard test keeps the first checklist complete, reading `schema.graphql`:
//! - each field of `Query` and `Mutation` must have a row, so a new operation cannot ship untested;
//! - each *relation* must have a row (`Type.field`) saying what an outsider sees there: null, a
//!   refusal, or nothing reachable at all. A relation is any field of an object type whose type
//!   (lists and `!` aside) is an object type, except
//!   - Relay plumbing: `pageInfo`, `edges` and `nodes` of a `…Connection`, `node` of an `…Edge`
//!     (the connection field itself is the relation, e.g. `Organization.members`);
//!   - the fields of a mutation's `…Payload`: the object the mutation acted on, answered under the
//!     mutation's own check and covered by its row (what hangs off it is covered as a relation);
//!   - the root types (`Query`, `Mutation`, `Subscription`), covered as operations;
//!   - [`PARTS`]: values that belong to their parent and name no other object (an event's
//!     context, a verification's mismatch); each entry says why it needs no read check of its own.
//!
//! A new relation therefore fails the guard until it gets a row or, if it is only a part of its
//! parent, a [`PARTS`] entry with its reason.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

/// What an operation must answer.
#[derive(Debug, Clone)]
enum Expect {
    /// No errors.
    Succeeds,
    /// No errors, and this value at this JSON pointer into `data`.
    Yields(&'static str, Value),
    /// No errors and a null result: the object is hidden, as if it did not exist.
    Hidden,
    /// An error with this `extensions.code`, and nothing returned in `data`.
    Refused(&'static str),
    /// For a relation field: an error with this code at the field's path, and no value there
    /// (the object it hangs off may be returned).
    Withheld(&'static str),
    /// No errors, and each of these values at its JSON pointer into `data`: for a relation, the
    /// object it hangs off (shown) and the relation (null).
    Shows(Vec<(&'static str, Value)>),
}

use Expect::{Hidden, Refused, Shows, Succeeds, Withheld, Yields};

const FORBIDDEN: Expect = Refused("FORBIDDEN");
const NOT_FOUND: Expect = Refused("NOT_FOUND");
const UNAUTHENTICATED: Expect = Refused("UNAUTHENTICATED");
const BAD_USER_INPUT: Expect = Refused("BAD_USER_INPUT");

/// Whether `body` (a whole GraphQL response) is what `expect` says; the reason when not.
fn verdict(body: &Value, expect: &Expect) -> Result<(), String> {
    let errors = body.get("errors");
    let data = &body["data"];
    let nothing_returned = match data {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(Value::is_null),
        _ => false,
    };
    match expect {
        Succeeds if errors.is_none() => Ok(()),
        Yields(pointer, want) if errors.is_none() && data.pointer(pointer) == Some(want) => Ok(()),
        Hidden if errors.is_none() && nothing_returned => Ok(()),
        Shows(values)
            if errors.is_none()
                && values
                    .iter()
                    .all(|(pointer, want)| data.pointer(pointer) == Some(want)) =>
        {
            Ok(())
        }
        Refused(code) if body["errors"][0]["extensions"]["code"] == *code && nothing_returned => Ok(()),
        Withheld(code) if body["errors"][0]["extensions"]["code"] == *code => {
            let path = body["errors"][0]["path"].as_array().cloned().unwrap_or_default();
            let mut at = data;
            for step in &path {
                at = match step {
                    Value::String(key) => &at[key.as_str()],
                    Value::Number(index) => &at[index.as_u64().unwrap_or(u64::MAX) as usize],
                    _ => &Value::Null,
                };
            }
            if !path.is_empty() && at.is_null() {
                Ok(())
            } else {
                Err(format!(
                    "expected {expect:?} with nothing at the error's path, got {body}"
                ))
            }
        }
        _ => Err(format!("expected {expect:?}, got {body}")),
    }
}

/// Which caller a row of the first checklist is asked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// A fresh user: no roles, no memberships.
    Nobody,
    /// A member of the organization, without roles (implicit `org_member` only).
    Member,
    /// A user with a global role granting only `organization.read` and `role.read`.
    Reader,
    /// A user with a role in the organization granting only `audit.read`, and a global one
    /// granting only `policy.read`: reads the organization's log and the policies, not the
    /// organization, its people or its roles.
    Auditor,
    /// A user with a global role granting only `user.read` and `role.read`: reads every account
    /// and role, not the organizations.
    Directory,
    /// A user with a global role granting only `webhook.list`: sees every webhook endpoint and
    /// its messages, not the organizations they belong to.
    Hooks,
}

/// One row: an operation (a `Query`/`Mutation` field, or a relation `Type.field`), the request,
/// and what it must answer when asked by `who` and when asked without credentials.
struct Case {
    op: &'static str,
    note: &'static str,
    who: Who,
    query: &'static str,
    vars: Value,
    expect: Expect,
    anonymous: Expect,
}

/// A row asked by [`Who::Nobody`], refused as UNAUTHENTICATED without credentials.
fn case(op: &'static str, note: &'static str, query: &'static str, vars: Value, expect: Expect) -> Case {
    Case {
        op,
        note,
        who: Who::Nobody,
        query,
        vars,
        expect,
        anonymous: UNAUTHENTICATED,
    }
}

impl Case {
    fn anonymously(mut self, expect: Expect) -> Self {
        self.anonymous = expect;
        self
    }

    fn by(mut self, who: Who) -> Self {
        self.who = who;
        self
    }

    fn label(&self) -> String {
        format!("{} ({}, as {:?})", self.op, self.note, self.who)
    }
}

/// Object-typed fields that are parts of their parent, not relations: they name no object the
/// caller could not already read through the parent, so the parent's check covers them.
const PARTS: [(&str, &str); 12] = [
    (
        "Organization.branding",
        "the organization's own white-label settings, read with the organization",
    ),
    (
        "InvitationPreview.branding",
        "the settings the accept page shows to whoever holds the link",
    ),
    (
        "InvitationRowResult.invitation",
        "the invitation the caller's own createInvitations call made or found in its way",
    ),
    (
        "Decision.error",
        "why a question of the caller's own batch was not answered, part of its answer",
    ),
    (
        "AuditEvent.actor",
        "who acted, as recorded in the event; the account behind it is the relation AuditActor.user",
    ),
    (
        "AuditEvent.targets",
        "type, id and name as recorded in the event, readable with the event",
    ),
    (
        "AuditEvent.context",
        "where the request came from; masked without audit.read_sensitive",
    ),
    ("AuditStats.buckets", "counts over events the caller may read"),
    (
        "AuditVerification.firstMismatch",
        "an event id within the chain the caller may verify",
    ),
    (
        "Decision.determiningPolicies",
        "the explanation of a decision the caller may ask for",
    ),
    (
        "PolicyValidation.problems",
        "positions in the source the caller sent",
    ),
    (
        "WebhookMessage.attempts",
        "the message's own delivery attempts (status, error, the receiver's first KiB), read with \
         the message; they name only that message and its endpoint",
    ),
];

/// The Cedar actions whose resource can be an organization (roles held there grant them).
const ORG_SCOPED: [&str; 25] = [
    "organization.read",
    "organization.update",
    "member.list",
    "member.add",
    "member.remove",
    "role.read",
    "role.create",
    "role.update",
    "role.delete",
    "role.assign",
    "audit.read",
    "audit.read_sensitive",
    "audit.verify",
    "invitation.create",
    "invitation.read",
    "invitation.list",
    "invitation.resend",
    "invitation.revoke",
    "email.list",
    "email.retry",
    "webhook.list",
    "webhook.create",
    "webhook.update",
    "webhook.delete",
    "webhook.deliver",
];

const DOCS_SCHEMA: &str = "namespace Docs { entity Document; action \"read\" appliesTo { principal: Portcullis::User, resource: Document }; }";

/// A well-formed id that names nothing.
const NO_SUCH_ID: &str = "01900000-0000-7000-8000-000000000000";

const ADD_MEMBER: &str =
    "mutation($o: ID!, $u: ID!) { addMember(input: {organizationId: $o, userId: $u}) { membership { id } } }";
const REMOVE_MEMBER: &str = "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { membership { id } } }";
const ASSIGN: &str = "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }";
const UNASSIGN: &str = "mutation($u: ID!, $r: ID!, $o: ID) { unassignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }";
const AUTHORIZE: &str = "query($input: AuthorizeInput!) { authorize(input: $input) { allowed decision } }";
const AUTHORIZE_BATCH: &str = "query($inputs: [AuthorizeInput!]!) { authorizeBatch(inputs: $inputs) { allowed decision error { code } } }";
const CREATE_ROLE: &str = "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }";
const CREATE_ENDPOINT: &str = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id } } }";
const UPDATE_ENDPOINT: &str = "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, url: \"https://attacker.example/hook\", enabled: true}) { endpoint { id url } } }";
const ROTATE_SECRET: &str =
    "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id}) { secret endpoint { id } } }";
const RETRY_MESSAGE: &str =
    "mutation($id: ID!) { retryWebhookMessage(input: {id: $id}) { message { id status } } }";
/// Where the fixtures' webhook endpoints point: nothing listens there, and no runner runs.
const NOWHERE: &str = "http://127.0.0.1:9/hook";

/// The objects the first checklist aims at, made by the bootstrap administrator.
#[derive(Default)]
struct World {
    admin: String,
    admin_id: String,
    org: String,
    other: String,
    other_session: String,
    other_key: String,
    other_passkey: String,
    role: String,
    org_role: String,
    super_admin: String,
    org_owner: String,
    policy: String,
    template: String,
    nobody: String,
    nobody_token: String,
    nobody_key: String,
    nobody_spare_session: String,
    member_token: String,
    reader_token: String,
    auditor_token: String,
    directory_token: String,
    hooks_token: String,
    invitation: String,
    /// A gateway-wide webhook endpoint.
    endpoint: String,
    /// A webhook endpoint of the organization, and a test message queued for it.
    org_endpoint: String,
    message: String,
}

impl World {
    fn token(&self, who: Who) -> &str {
        match who {
            Who::Nobody => &self.nobody_token,
            Who::Member => &self.member_token,
            Who::Reader => &self.reader_token,
            Who::Auditor => &self.auditor_token,
            Who::Directory => &self.directory_token,
            Who::Hooks => &self.hooks_token,
        }
    }
}

/// `{action, resource}` of a Portcullis action on an entity, asked for yourself unless `principal`.
fn question(action: &str, resource: (&str, &str), principal: Option<&str>, org: Option<&str>) -> Value {
    json!({
        "principal": principal.map(|id| json!({ "type": "Portcullis::User", "id": id })),
        "action": { "type": "Portcullis::Action", "id": action },
        "resource": { "type": resource.0, "id": resource.1 },
        "organizationId": org,
    })
}

/// The checklist: every operation, what a user without roles gets, and what an anonymous caller
/// gets. `refresh_token` is a fresh refresh token of that user (each run spends one).
fn cases(w: &World, refresh_token: &str) -> Vec<Case> {
    let id = |id: &str| json!({ "id": id });
    let own_read = question("user.read", ("Portcullis::User", &w.nobody), None, None);
    let gateway_list = question("user.list", ("Portcullis::Gateway", "portcullis"), None, None);
    let for_other = question("user.read", ("Portcullis::User", &w.other), Some(&w.other), None);
    let user_id = "query($id: ID!) { user(id: $id) { id email } }";
    let role_by_id = "query($id: ID!) { role(id: $id) { id key } }";
    let update_user = "mutation($id: ID!) { updateUser(input: {id: $id, displayName: \"Renamed\"}) { user { id displayName } } }";
    let disable_user = "mutation($id: ID!) { disableUser(input: {id: $id}) { user { status } } }";
    let role_assignments =
        "query($f: RoleAssignmentFilter) { roleAssignments(filter: $f) { totalCount nodes { id } } }";
    let create_role = |org: Option<&str>| json!({ "input": { "key": "sneaky", "name": "Sneaky", "organizationId": org, "permissions": ["user.disable", "policy.create"] } });
    let update_role = "mutation($id: ID!) { updateRole(input: {id: $id, name: \"Hijacked\", permissions: [\"user.disable\", \"member.add\"]}) { role { id } } }";
    let delete_role = "mutation($id: ID!) { deleteRole(input: {id: $id}) { role { id } } }";
    let revoke_session =
        "mutation($id: ID!) { revokeSession(input: {id: $id}) { session { id revokedReason } } }";
    let revoke_key = "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { id revokedAt } } }";
    let link = json!({ "r": w.role, "p": w.template });
    let members_memberships = "query($o: ID!) { organization(id: $o) { members { nodes { user { email memberships { totalCount } } } } } }";
    let members_assignments = "query($o: ID!) { organization(id: $o) { members { nodes { user { email roleAssignments { totalCount } } } } } }";
    let members_users = "query($o: ID!) { organization(id: $o) { members { nodes { user { email } } } } }";
    let own_refusal = "{ viewer { auditEvents(first: 1, order: OLDEST_FIRST, filter: {outcomes: [DENIED]}) { nodes { organizationId organization { id name slug } } } } }";
    let org_log = "query($o: ID!) { auditEvents(first: 1, order: OLDEST_FIRST, filter: {organizationId: $o}) { nodes { organizationId organization { name } actor { id user { id email } } } } }";
    let own_assignments = "{ viewer { user { roleAssignments { totalCount nodes { role { key } organization { id name } } } } } }";
    let endpoint_by_id = "query($id: ID!) { webhookEndpoint(id: $id) { id url } }";
    let messages_of =
        "query($e: ID!) { webhookMessages(filter: {endpointId: $e}) { totalCount nodes { id } } }";

    vec![
        // ---- Invitations, branding, email --------------------------------------------------
        case(
            "invitation",
            "by id",
            "query($id: ID!) { invitation(id: $id) { id email } }",
            id(&w.invitation),
            Hidden,
        ),
        case(
            "invitations",
            "an organization's",
            "query($o: ID!) { invitations(filter: {organizationId: $o}) { totalCount } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "invitations",
            "every organization's",
            "{ invitations { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "invitationByToken",
            "a guessed token",
            "{ invitationByToken(token: \"pci_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\") { maskedEmail } }",
            json!({}),
            NOT_FOUND,
        )
        .anonymously(NOT_FOUND),
        case(
            "createInvitation",
            "invite yourself in",
            "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"friend@example.com\", roleIds: [$r]}) { invitation { id } } }",
            json!({ "o": w.org, "r": w.org_owner }),
            FORBIDDEN,
        ),
        case(
            "createInvitations",
            "bulk",
            "mutation($o: ID!, $r: ID!) { createInvitations(input: {organizationId: $o, invitations: [{email: \"friend@example.com\", roleIds: [$r]}]}) { createdCount } }",
            json!({ "o": w.org, "r": w.org_owner }),
            FORBIDDEN,
        ),
        case(
            "resendInvitation",
            "someone else's",
            "mutation($id: ID!) { resendInvitation(input: {id: $id}) { invitation { id } } }",
            id(&w.invitation),
            NOT_FOUND,
        ),
        case(
            "revokeInvitation",
            "someone else's",
            "mutation($id: ID!) { revokeInvitation(input: {id: $id}) { invitation { id } } }",
            id(&w.invitation),
            NOT_FOUND,
        ),
        case(
            "acceptInvitation",
            "a guessed token",
            "mutation { acceptInvitation(input: {token: \"pci_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}) { invitation { id } } }",
            json!({}),
            NOT_FOUND,
        )
        .anonymously(NOT_FOUND),
        case(
            "updateOrganizationBranding",
            "rebrand",
            "mutation($o: ID!) { updateOrganizationBranding(input: {organizationId: $o, displayName: \"Phish\"}) { branding { displayName } } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "emailDeliveries",
            "every delivery",
            "{ emailDeliveries { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "emailDeliveries",
            "an organization's",
            "query($o: ID!) { emailDeliveries(filter: {organizationId: $o}) { totalCount } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "retryEmailDelivery",
            "no such delivery",
            "mutation($id: ID!) { retryEmailDelivery(input: {id: $id}) { delivery { id } } }",
            id(NO_SUCH_ID),
            NOT_FOUND,
        ),
        case(
            "Invitation.organization",
            "hidden invitation",
            "query($id: ID!) { invitation(id: $id) { organization { id } } }",
            id(&w.invitation),
            Hidden,
        ),
        case(
            "Invitation.roles",
            "hidden invitation",
            "query($id: ID!) { invitation(id: $id) { roles { id } } }",
            id(&w.invitation),
            Hidden,
        ),
        case(
            "Invitation.invitedBy",
            "hidden invitation",
            "query($id: ID!) { invitation(id: $id) { invitedBy { id } } }",
            id(&w.invitation),
            Hidden,
        ),
        case(
            "Invitation.acceptedBy",
            "hidden invitation",
            "query($id: ID!) { invitation(id: $id) { acceptedBy { id } } }",
            id(&w.invitation),
            Hidden,
        ),
        case(
            "Invitation.revokedBy",
            "hidden invitation",
            "query($id: ID!) { invitation(id: $id) { revokedBy { id } } }",
            id(&w.invitation),
            Hidden,
        ),
        case(
            "Organization.invitations",
            "readable organization, without invitation.list",
            "query($o: ID!) { organization(id: $o) { name invitations { totalCount } } }",
            json!({ "o": w.org }),
            Withheld("FORBIDDEN"),
        )
        .by(Who::Reader),
        case(
            "Organization.invitations",
            "hidden organization",
            "query($o: ID!) { organization(id: $o) { invitations { totalCount } } }",
            json!({ "o": w.org }),
            Hidden,
        ),
        case(
            "EmailDelivery.organization",
            "deliveries cannot be listed",
            "{ emailDeliveries { nodes { organization { id } } } }",
            json!({}),
            FORBIDDEN,
        ),
        // ---- Webhooks ----------------------------------------------------------------------
        case(
            "webhookEndpoints",
            "gateway-wide",
            "{ webhookEndpoints { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "webhookEndpoints",
            "an organization's",
            "query($o: ID!) { webhookEndpoints(organizationId: $o) { totalCount } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case("webhookEndpoint", "gateway-wide", endpoint_by_id, id(&w.endpoint), Hidden),
        case(
            "webhookEndpoint",
            "an organization's",
            endpoint_by_id,
            id(&w.org_endpoint),
            Hidden,
        ),
        case("webhookEndpoint", "does not exist", endpoint_by_id, id(NO_SUCH_ID), Hidden),
        case(
            "webhookMessages",
            "of an organization's endpoint",
            messages_of,
            json!({ "e": w.org_endpoint }),
            NOT_FOUND,
        ),
        case(
            "webhookMessages",
            "of a gateway-wide endpoint",
            messages_of,
            json!({ "e": w.endpoint }),
            NOT_FOUND,
        ),
        case(
            "webhookMessage",
            "a test message",
            "query($id: ID!) { webhookMessage(id: $id) { id eventType } }",
            id(&w.message),
            Hidden,
        ),
        case(
            "createWebhookEndpoint",
            "gateway-wide: every event, to yourself",
            CREATE_ENDPOINT,
            json!({ "input": { "url": "http://127.0.0.1:9/mine" } }),
            FORBIDDEN,
        ),
        case(
            "createWebhookEndpoint",
            "an organization's events",
            CREATE_ENDPOINT,
            json!({ "input": { "url": "http://127.0.0.1:9/mine", "organizationId": w.org } }),
            FORBIDDEN,
        ),
        case(
            "updateWebhookEndpoint",
            "redirect an organization's endpoint to yourself",
            UPDATE_ENDPOINT,
            id(&w.org_endpoint),
            NOT_FOUND,
        ),
        case(
            "updateWebhookEndpoint",
            "redirect a gateway-wide endpoint to yourself",
            UPDATE_ENDPOINT,
            id(&w.endpoint),
            NOT_FOUND,
        ),
        case(
            "deleteWebhookEndpoint",
            "an organization's",
            "mutation($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { deletedId } }",
            id(&w.org_endpoint),
            NOT_FOUND,
        ),
        case(
            "rotateWebhookSecret",
            "learn a new secret",
            ROTATE_SECRET,
            id(&w.endpoint),
            NOT_FOUND,
        ),
        case(
            "retryWebhookMessage",
            "someone's message",
            RETRY_MESSAGE,
            id(&w.message),
            NOT_FOUND,
        ),
        case(
            "replayWebhookEvents",
            "resend the whole log",
            "mutation($e: ID!) { replayWebhookEvents(input: {endpointId: $e, since: \"2026-01-01T00:00:00Z\"}) { queued } }",
            json!({ "e": w.endpoint }),
            NOT_FOUND,
        ),
        case(
            "recoverWebhookEndpoint",
            "an organization's",
            "mutation($e: ID!) { recoverWebhookEndpoint(input: {endpointId: $e, since: \"2026-01-01T00:00:00Z\"}) { queued } }",
            json!({ "e": w.org_endpoint }),
            NOT_FOUND,
        ),
        case(
            "sendTestWebhook",
            "to an organization's endpoint",
            "mutation($e: ID!) { sendTestWebhook(input: {endpointId: $e}) { message { id } } }",
            json!({ "e": w.org_endpoint }),
            NOT_FOUND,
        ),
        case(
            "WebhookEndpoint.organization",
            "hidden endpoint",
            "query($id: ID!) { webhookEndpoint(id: $id) { organization { id } } }",
            id(&w.org_endpoint),
            Hidden,
        ),
        case(
            "WebhookEndpoint.organization",
            "an organization's endpoint, read with webhook.list only",
            "query($id: ID!) { webhookEndpoint(id: $id) { id organizationId organization { id name } } }",
            id(&w.org_endpoint),
            Shows(vec![
                ("/webhookEndpoint/id", json!(w.org_endpoint)),
                ("/webhookEndpoint/organizationId", json!(w.org)),
                ("/webhookEndpoint/organization", Value::Null),
            ]),
        )
        .by(Who::Hooks),
        // ---- Query -------------------------------------------------------------------------
        case("user", "someone else", user_id, id(&w.other), Hidden),
        case("user", "an administrator", user_id, id(&w.admin_id), Hidden),
        case("user", "does not exist", user_id, id(NO_SUCH_ID), Hidden),
        case(
            "user",
            "yourself",
            user_id,
            id(&w.nobody),
            Yields("/user/id", json!(w.nobody)),
        ),
        case("users", "list", "{ users { totalCount } }", json!({}), FORBIDDEN),
        case(
            "organization",
            "by id",
            "query($id: ID!) { organization(id: $id) { id name } }",
            id(&w.org),
            Hidden,
        ),
        case(
            "organizationBySlug",
            "by slug",
            "{ organizationBySlug(slug: \"acme\") { id name } }",
            json!({}),
            Hidden,
        ),
        case(
            "organizations",
            "list",
            "{ organizations { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "viewer",
            "yourself",
            "{ viewer { user { id } authMethod } }",
            json!({}),
            Yields("/viewer/user/id", json!(w.nobody)),
        )
        .anonymously(Hidden),
        case(
            "policy",
            "by id",
            "query($id: ID!) { policy(id: $id) { id source } }",
            id(&w.policy),
            FORBIDDEN,
        ),
        case(
            "policies",
            "list",
            "{ policies { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "validatePolicy",
            "any source",
            "{ validatePolicy(source: \"permit (principal, action, resource);\") { valid } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "gatewayCedarSchema",
            "public",
            "{ gatewayCedarSchema }",
            json!({}),
            Succeeds,
        )
        .anonymously(Succeeds),
        case(
            "cedarSchemas",
            "list",
            "{ cedarSchemas { namespace source } }",
            json!({}),
            FORBIDDEN,
        ),
        case("role", "global custom role", role_by_id, id(&w.role), Hidden),
        case(
            "role",
            "role of an organization",
            role_by_id,
            id(&w.org_role),
            Hidden,
        ),
        case(
            "role",
            "built-in super_admin",
            role_by_id,
            id(&w.super_admin),
            Hidden,
        ),
        case("role", "does not exist", role_by_id, id(NO_SUCH_ID), Hidden),
        case(
            "roles",
            "global",
            "{ roles { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "roles",
            "of an organization",
            "query($o: ID!) { roles(organizationId: $o) { totalCount } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "roleAssignments",
            "unfiltered",
            role_assignments,
            json!({}),
            FORBIDDEN,
        ),
        case(
            "roleAssignments",
            "someone else's",
            role_assignments,
            json!({ "f": { "userId": w.admin_id } }),
            FORBIDDEN,
        ),
        case(
            "roleAssignments",
            "of an organization",
            role_assignments,
            json!({ "f": { "organizationId": w.org } }),
            FORBIDDEN,
        ),
        case(
            "roleAssignments",
            "your own",
            role_assignments,
            json!({ "f": { "userId": w.nobody } }),
            Yields("/roleAssignments/totalCount", json!(0)),
        ),
        case(
            "authorize",
            "for yourself, self-service",
            AUTHORIZE,
            json!({ "input": own_read }),
            Yields("/authorize/decision", json!("ALLOW")),
        ),
        case(
            "authorize",
            "for yourself, no role",
            AUTHORIZE,
            json!({ "input": gateway_list }),
            Yields("/authorize/decision", json!("DENY")),
        ),
        case(
            "authorize",
            "for someone else",
            AUTHORIZE,
            json!({ "input": for_other }),
            FORBIDDEN,
        ),
        case(
            "authorizeBatch",
            "for yourself",
            AUTHORIZE_BATCH,
            json!({ "inputs": [own_read, gateway_list] }),
            Yields("/authorizeBatch/1/decision", json!("DENY")),
        ),
        case(
            "authorizeBatch",
            "one question for someone else: refused in its place",
            AUTHORIZE_BATCH,
            json!({ "inputs": [own_read, for_other] }),
            Yields("/authorizeBatch/1/error/code", json!("FORBIDDEN")),
        ),
        case(
            "auditEvents",
            "the whole log",
            "{ auditEvents { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "auditEvents",
            "an organization's log",
            "query($o: ID!) { auditEvents(filter: {organizationId: $o}) { totalCount } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "auditEvent",
            "does not exist",
            "query($id: ID!) { auditEvent(id: $id) { id } }",
            id(NO_SUCH_ID),
            Hidden,
        ),
        case(
            "verifyAuditLog",
            "gateway-wide",
            "{ verifyAuditLog { ok } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "verifyAuditLog",
            "an organization's",
            "query($o: ID!) { verifyAuditLog(organizationId: $o) { ok } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "auditStats",
            "the whole log",
            "{ auditStats(groupBy: ACTION) { truncated } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "auditStats",
            "an organization's log",
            "query($o: ID!) { auditStats(groupBy: OUTCOME, filter: {organizationId: $o}) { truncated } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        // ---- Mutation ----------------------------------------------------------------------
        case(
            "createAuditExport",
            "of the whole log",
            "mutation { createAuditExport(input: {format: CSV}) { url } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "createAuditExport",
            "of an organization's log",
            "mutation($o: ID!) { createAuditExport(input: {format: NDJSON, filter: {organizationId: $o}}) { url } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "purgeAuditEvents",
            "anything",
            "mutation { purgeAuditEvents(input: {before: \"2026-01-01T00:00:00Z\"}) { deletedEvents } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "eraseAuditPersonalData",
            "of someone else",
            "mutation($u: ID!) { eraseAuditPersonalData(input: {userId: $u}) { erasedEvents } }",
            json!({ "u": w.other }),
            FORBIDDEN,
        ),
        case(
            "eraseAuditPersonalData",
            "of yourself",
            "mutation($u: ID!) { eraseAuditPersonalData(input: {userId: $u}) { erasedEvents } }",
            json!({ "u": w.nobody }),
            FORBIDDEN,
        ),
        case(
            "createUser",
            "new account",
            "mutation { createUser(input: {email: \"sock@example.com\", displayName: \"Sock\", password: \"sock-password-1\"}) { user { id } } }",
            json!({}),
            FORBIDDEN,
        ),
        case("updateUser", "someone else", update_user, id(&w.other), FORBIDDEN),
        case(
            "updateUser",
            "an administrator",
            update_user,
            id(&w.admin_id),
            FORBIDDEN,
        ),
        case(
            "updateUser",
            "yourself",
            update_user,
            id(&w.nobody),
            Yields("/updateUser/user/displayName", json!("Renamed")),
        ),
        case(
            "disableUser",
            "someone else",
            disable_user,
            id(&w.other),
            FORBIDDEN,
        ),
        case("disableUser", "yourself", disable_user, id(&w.nobody), FORBIDDEN),
        case(
            "enableUser",
            "someone else",
            "mutation($id: ID!) { enableUser(input: {id: $id}) { user { status } } }",
            id(&w.other),
            FORBIDDEN,
        ),
        case(
            "createOrganization",
            "new organization",
            "mutation { createOrganization(input: {slug: \"mine\", name: \"Mine\"}) { organization { id } } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "updateOrganization",
            "rename",
            "mutation($id: ID!) { updateOrganization(input: {id: $id, name: \"Taken\"}) { organization { id } } }",
            id(&w.org),
            FORBIDDEN,
        ),
        case(
            "addMember",
            "add yourself",
            ADD_MEMBER,
            json!({ "o": w.org, "u": w.nobody }),
            FORBIDDEN,
        ),
        case(
            "removeMember",
            "remove a member",
            REMOVE_MEMBER,
            json!({ "o": w.org, "u": w.other }),
            FORBIDDEN,
        ),
        case(
            "login",
            "public",
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { user { id } } }",
            json!({ "e": "nobody@example.com", "p": PASSWORD }),
            Yields("/login/user/id", json!(w.nobody)),
        )
        .anonymously(Yields("/login/user/id", json!(w.nobody))),
        case(
            "refreshSession",
            "public",
            "mutation($r: String!) { refreshSession(input: {refreshToken: $r}) { user { id } } }",
            json!({ "r": refresh_token }),
            Yields("/refreshSession/user/id", json!(w.nobody)),
        )
        .anonymously(Yields("/refreshSession/user/id", json!(w.nobody))),
        // Run last by `run_checklist`: it ends the session of the token used.
        case(
            "logout",
            "your session",
            "mutation { logout { session { revokedReason } } }",
            json!({}),
            Yields("/logout/session/revokedReason", json!("revoked")),
        ),
        case(
            "revokeSession",
            "someone else's",
            revoke_session,
            id(&w.other_session),
            NOT_FOUND,
        ),
        case(
            "revokeSession",
            "does not exist",
            revoke_session,
            id(NO_SUCH_ID),
            NOT_FOUND,
        ),
        case(
            "revokeSession",
            "another of yours",
            revoke_session,
            id(&w.nobody_spare_session),
            Yields("/revokeSession/session/revokedReason", json!("revoked")),
        ),
        case(
            "createApiKey",
            "for yourself",
            "mutation { createApiKey(input: {name: \"mine\"}) { secret apiKey { id } } }",
            json!({}),
            Succeeds,
        ),
        case(
            "revokeApiKey",
            "someone else's",
            revoke_key,
            id(&w.other_key),
            NOT_FOUND,
        ),
        case(
            "revokeApiKey",
            "does not exist",
            revoke_key,
            id(NO_SUCH_ID),
            NOT_FOUND,
        ),
        case(
            "revokeApiKey",
            "your own",
            revoke_key,
            id(&w.nobody_key),
            Yields("/revokeApiKey/apiKey/id", json!(w.nobody_key)),
        ),
        case(
            "startPasskeyRegistration",
            "for yourself",
            "mutation { startPasskeyRegistration(input: {name: \"mine\"}) { ceremonyId } }",
            json!({}),
            Succeeds,
        ),
        case(
            "finishPasskeyRegistration",
            "a made-up ceremony",
            "mutation($id: ID!) { finishPasskeyRegistration(input: {ceremonyId: $id, credential: {}}) { passkey { id } } }",
            id(NO_SUCH_ID),
            BAD_USER_INPUT,
        )
        .anonymously(BAD_USER_INPUT),
        case(
            "startPasskeySetup",
            "a guessed setup token",
            "mutation { startPasskeySetup(input: {token: \"pcs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", name: \"x\"}) { ceremonyId } }",
            json!({}),
            BAD_USER_INPUT,
        )
        .anonymously(BAD_USER_INPUT),
        case(
            "createPasskeySetupLink",
            "for someone else",
            "mutation($id: ID!) { createPasskeySetupLink(input: {userId: $id}) { url } }",
            id(&w.other),
            NOT_FOUND,
        ),
        case(
            "createPasskeySetupLink",
            "for yourself (a link would outlive your password)",
            "mutation($id: ID!) { createPasskeySetupLink(input: {userId: $id}) { url } }",
            id(&w.nobody),
            BAD_USER_INPUT,
        ),
        case(
            "startPasskeyAuthentication",
            "for someone's email",
            "mutation { startPasskeyAuthentication(input: {email: \"other@example.com\"}) { ceremonyId } }",
            json!({}),
            Succeeds,
        )
        .anonymously(Succeeds),
        case(
            "finishPasskeyAuthentication",
            "a made-up ceremony",
            "mutation($id: ID!) { finishPasskeyAuthentication(input: {ceremonyId: $id, credential: {id: \"AA\", rawId: \"AA\", type: \"public-key\", response: {authenticatorData: \"AA\", clientDataJSON: \"AA\", signature: \"AA\"}}}) { accessToken } }",
            id(NO_SUCH_ID),
            UNAUTHENTICATED,
        ),
        case(
            "startStepUp",
            "without a passkey",
            "mutation { startStepUp { ceremonyId } }",
            json!({}),
            Refused("CONFLICT"),
        ),
        case(
            "finishStepUp",
            "a made-up ceremony",
            "mutation($id: ID!) { finishStepUp(input: {ceremonyId: $id, credential: {id: \"AA\", rawId: \"AA\", type: \"public-key\", response: {authenticatorData: \"AA\", clientDataJSON: \"AA\", signature: \"AA\"}}}) { session { id } } }",
            id(NO_SUCH_ID),
            UNAUTHENTICATED,
        ),
        case(
            "renamePasskey",
            "someone else's",
            "mutation($id: ID!) { renamePasskey(input: {id: $id, name: \"mine now\"}) { passkey { id } } }",
            id(&w.other_passkey),
            NOT_FOUND,
        ),
        case(
            "deletePasskey",
            "someone else's",
            "mutation($id: ID!) { deletePasskey(input: {id: $id}) { passkey { id } } }",
            id(&w.other_passkey),
            NOT_FOUND,
        ),
        case(
            "deletePasskey",
            "does not exist",
            "mutation($id: ID!) { deletePasskey(input: {id: $id}) { passkey { id } } }",
            id(NO_SUCH_ID),
            NOT_FOUND,
        ),
        case(
            "startInvitationPasskey",
            "a guessed token",
            "mutation { startInvitationPasskey(input: {token: \"pci_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", displayName: \"Eve\"}) { ceremonyId } }",
            json!({}),
            NOT_FOUND,
        )
        .anonymously(NOT_FOUND),
        case(
            "Viewer.passkeys",
            "your own",
            "{ viewer { passkeys { totalCount } } }",
            json!({}),
            Yields("/viewer/passkeys/totalCount", json!(0)),
        )
        .anonymously(Hidden),
        case(
            "User.passkeys",
            "your own",
            "{ viewer { user { passkeys { totalCount } } } }",
            json!({}),
            Yields("/viewer/user/passkeys/totalCount", json!(0)),
        )
        .anonymously(Hidden),
        case(
            "User.passkeys",
            "another member's, reached through the member list",
            "query($o: ID!) { organization(id: $o) { members { nodes { user { email passkeys { totalCount } } } } } }",
            json!({ "o": w.org }),
            Withheld("FORBIDDEN"),
        )
        .by(Who::Member),
        case(
            "createPolicy",
            "grant yourself everything",
            "mutation { createPolicy(input: {name: \"mine\", source: \"permit (principal, action, resource);\"}) { policy { id } } }",
            json!({}),
            FORBIDDEN,
        ),
        case(
            "updatePolicy",
            "rewrite and enable",
            "mutation($id: ID!) { updatePolicy(input: {id: $id, source: \"permit (principal, action, resource);\", enabled: true}) { policy { id } } }",
            id(&w.policy),
            FORBIDDEN,
        ),
        case(
            "deletePolicy",
            "by id",
            "mutation($id: ID!) { deletePolicy(input: {id: $id}) { policy { id } } }",
            id(&w.policy),
            FORBIDDEN,
        ),
        case(
            "putCedarSchema",
            "replace a namespace",
            "mutation($s: String!) { putCedarSchema(input: {namespace: \"Docs\", source: $s}) { cedarSchema { namespace } } }",
            json!({ "s": "namespace Docs { entity Document; }" }),
            FORBIDDEN,
        ),
        case("createRole", "global", CREATE_ROLE, create_role(None), FORBIDDEN),
        case(
            "createRole",
            "in an organization",
            CREATE_ROLE,
            create_role(Some(&w.org)),
            FORBIDDEN,
        ),
        case(
            "updateRole",
            "global custom role",
            update_role,
            id(&w.role),
            NOT_FOUND,
        ),
        case(
            "updateRole",
            "role of an organization",
            update_role,
            id(&w.org_role),
            NOT_FOUND,
        ),
        case(
            "updateRole",
            "built-in super_admin",
            update_role,
            id(&w.super_admin),
            NOT_FOUND,
        ),
        case(
            "updateRole",
            "does not exist",
            update_role,
            id(NO_SUCH_ID),
            NOT_FOUND,
        ),
        case(
            "deleteRole",
            "global custom role",
            delete_role,
            id(&w.role),
            NOT_FOUND,
        ),
        case(
            "deleteRole",
            "role of an organization",
            delete_role,
            id(&w.org_role),
            NOT_FOUND,
        ),
        case(
            "attachPolicy",
            "template to a role",
            "mutation($r: ID!, $p: ID!) { attachPolicy(input: {roleId: $r, policyId: $p}) { role { id } } }",
            link.clone(),
            FORBIDDEN,
        ),
        case(
            "detachPolicy",
            "attached template",
            "mutation($r: ID!, $p: ID!) { detachPolicy(input: {roleId: $r, policyId: $p}) { role { id } } }",
            link,
            FORBIDDEN,
        ),
        case(
            "assignRole",
            "super_admin to yourself",
            ASSIGN,
            json!({ "u": w.nobody, "r": w.super_admin, "o": null }),
            FORBIDDEN,
        ),
        case(
            "assignRole",
            "org_owner to yourself in an organization",
            ASSIGN,
            json!({ "u": w.nobody, "r": w.org_owner, "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "unassignRole",
            "the administrator's super_admin",
            UNASSIGN,
            json!({ "u": w.admin_id, "r": w.super_admin, "o": null }),
            FORBIDDEN,
        ),
        // ---- Relations authorized on their own ---------------------------------------------
        case(
            "User.memberships",
            "your own",
            "{ viewer { user { memberships { totalCount } } } }",
            json!({}),
            Yields("/viewer/user/memberships/totalCount", json!(0)),
        )
        .anonymously(Hidden),
        case(
            "User.memberships",
            "another member's, reached through the member list",
            members_memberships,
            json!({ "o": w.org }),
            Withheld("FORBIDDEN"),
        )
        .by(Who::Member),
        case(
            "User.roleAssignments",
            "your own",
            "{ viewer { user { roleAssignments { totalCount } } } }",
            json!({}),
            Yields("/viewer/user/roleAssignments/totalCount", json!(0)),
        )
        .anonymously(Hidden),
        case(
            "User.roleAssignments",
            "another member's, reached through the member list",
            members_assignments,
            json!({ "o": w.org }),
            Withheld("FORBIDDEN"),
        )
        .by(Who::Member),
        case(
            "Organization.members",
            "hidden organization",
            "query($o: ID!) { organization(id: $o) { members { totalCount } } }",
            json!({ "o": w.org }),
            Hidden,
        ),
        case(
            "Organization.members",
            "readable organization, without member.list",
            "query($o: ID!) { organization(id: $o) { name members { totalCount } } }",
            json!({ "o": w.org }),
            Withheld("FORBIDDEN"),
        )
        .by(Who::Reader),
        case(
            "Organization.members",
            "a member lists them",
            "query($o: ID!) { organization(id: $o) { members { totalCount } } }",
            json!({ "o": w.org }),
            Yields("/organization/members/totalCount", json!(2)),
        )
        .by(Who::Member),
        case(
            "Role.policies",
            "hidden role",
            "query($id: ID!) { role(id: $id) { policies { id } } }",
            id(&w.role),
            Hidden,
        ),
        case(
            "Role.policies",
            "readable role, without policy.read",
            "query($id: ID!) { role(id: $id) { key policies { id source } } }",
            id(&w.role),
            Withheld("FORBIDDEN"),
        )
        .by(Who::Reader),
        case(
            "Viewer.sessions",
            "your own",
            "{ viewer { sessions { totalCount } } }",
            json!({}),
            Succeeds,
        )
        .anonymously(Hidden),
        case(
            "Viewer.apiKeys",
            "your own",
            "{ viewer { apiKeys { totalCount } } }",
            json!({}),
            Succeeds,
        )
        .anonymously(Hidden),
        // ---- Relations read-checked like the root query of their type -----------------------
        case(
            "Viewer.user",
            "yourself",
            "{ viewer { user { id } } }",
            json!({}),
            Yields("/viewer/user/id", json!(w.nobody)),
        )
        .anonymously(Hidden),
        case(
            "Viewer.auditEvents",
            "your own",
            "{ viewer { auditEvents { totalCount } } }",
            json!({}),
            Succeeds,
        )
        .anonymously(Hidden),
        case(
            "AuditEvent.organization",
            "your refused attempt on an organization you may not read",
            own_refusal,
            json!({}),
            Shows(vec![
                ("/viewer/auditEvents/nodes/0/organizationId", json!(w.org)),
                ("/viewer/auditEvents/nodes/0/organization", Value::Null),
            ]),
        )
        .anonymously(Hidden),
        case(
            "AuditEvent.organization",
            "its log read with audit.read only",
            org_log,
            json!({ "o": w.org }),
            Shows(vec![
                ("/auditEvents/nodes/0/organizationId", json!(w.org)),
                ("/auditEvents/nodes/0/organization", Value::Null),
            ]),
        )
        .by(Who::Auditor),
        case(
            "AuditActor.user",
            "the administrator, in a log read with audit.read only",
            org_log,
            json!({ "o": w.org }),
            Shows(vec![
                ("/auditEvents/nodes/0/actor/id", json!(w.admin_id)),
                ("/auditEvents/nodes/0/actor/user", Value::Null),
            ]),
        )
        .by(Who::Auditor),
        case(
            "AuditActor.user",
            "yourself, in your own events",
            "{ viewer { auditEvents(first: 1) { nodes { actor { user { id } } } } } }",
            json!({}),
            Yields("/viewer/auditEvents/nodes/0/actor/user/id", json!(w.nobody)),
        )
        .anonymously(Hidden),
        case(
            "Membership.user",
            "members of a hidden organization",
            members_users,
            json!({ "o": w.org }),
            Hidden,
        ),
        case(
            "Membership.user",
            "a member lists them",
            members_users,
            json!({ "o": w.org }),
            Yields(
                "/organization/members/nodes/0/user/email",
                json!("other@example.com"),
            ),
        )
        .by(Who::Member),
        case(
            "Membership.organization",
            "someone's membership, read with user.read only",
            "query($u: ID!) { user(id: $u) { memberships { totalCount nodes { organization { id name } } } } }",
            json!({ "u": w.other }),
            Shows(vec![
                ("/user/memberships/totalCount", json!(1)),
                ("/user/memberships/nodes/0/organization", Value::Null),
            ]),
        )
        .by(Who::Directory),
        case(
            "Membership.organization",
            "your own",
            "{ viewer { user { memberships { nodes { organization { id } } } } } }",
            json!({}),
            Yields("/viewer/user/memberships/nodes/0/organization/id", json!(w.org)),
        )
        .by(Who::Member)
        .anonymously(Hidden),
        case(
            "Policy.createdBy",
            "hidden policy",
            "query($id: ID!) { policy(id: $id) { createdBy { id } } }",
            id(&w.policy),
            FORBIDDEN,
        ),
        case(
            "Policy.createdBy",
            "read with policy.read only",
            "query($id: ID!) { policy(id: $id) { id createdBy { id email } } }",
            id(&w.policy),
            Shows(vec![
                ("/policy/id", json!(w.policy)),
                ("/policy/createdBy", Value::Null),
            ]),
        )
        .by(Who::Auditor),
        case(
            "Policy.updatedBy",
            "read with policy.read only",
            "query($id: ID!) { policy(id: $id) { id updatedBy { id email } } }",
            id(&w.policy),
            Shows(vec![
                ("/policy/id", json!(w.policy)),
                ("/policy/updatedBy", Value::Null),
            ]),
        )
        .by(Who::Auditor),
        case(
            "Role.organization",
            "hidden role",
            "query($id: ID!) { role(id: $id) { organization { id } } }",
            id(&w.org_role),
            Hidden,
        ),
        case(
            "Role.organization",
            "an organization's role, read with role.read only",
            "query($id: ID!) { role(id: $id) { key organization { id name } } }",
            id(&w.org_role),
            Shows(vec![
                ("/role/key", json!("local")),
                ("/role/organization", Value::Null),
            ]),
        )
        .by(Who::Directory),
        case(
            "RoleAssignment.user",
            "a global assignment, read with role.read only",
            "query($u: ID!) { roleAssignments(filter: {userId: $u}) { totalCount nodes { user { id email } } } }",
            json!({ "u": w.admin_id }),
            Shows(vec![
                ("/roleAssignments/totalCount", json!(1)),
                ("/roleAssignments/nodes/0/user", Value::Null),
            ]),
        )
        .by(Who::Reader),
        case(
            "RoleAssignment.role",
            "assignments in an organization, without role.read",
            "query($o: ID!) { roleAssignments(filter: {organizationId: $o}) { nodes { role { key } } } }",
            json!({ "o": w.org }),
            FORBIDDEN,
        ),
        case(
            "RoleAssignment.role",
            "your own, without role.read",
            own_assignments,
            json!({}),
            Yields(
                "/viewer/user/roleAssignments/nodes/0/role/key",
                json!("audit_only"),
            ),
        )
        .by(Who::Auditor)
        .anonymously(Hidden),
        case(
            "RoleAssignment.organization",
            "your own, in an organization you may not read",
            own_assignments,
            json!({}),
            Shows(vec![
                ("/viewer/user/roleAssignments/totalCount", json!(2)),
                ("/viewer/user/roleAssignments/nodes/0/organization", Value::Null),
            ]),
        )
        .by(Who::Auditor)
        .anonymously(Hidden),
    ]
}

/// The field names of `type <name> { … }` in GraphQL SDL (skipping descriptions).
fn fields_of(sdl: &str, type_name: &str) -> Vec<String> {
    typed_fields_of(sdl, type_name)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The names of every `type` (object type) in GraphQL SDL.
fn object_types(sdl: &str) -> Vec<String> {
    sdl.lines()
        .filter_map(|line| line.strip_prefix("type "))
        .filter_map(|rest| rest.strip_suffix(" {"))
        .map(str::to_owned)
        .collect()
}

/// The relations of the schema, as `Type.field` (see the module doc for the rule).
fn relations(sdl: &str) -> BTreeSet<String> {
    let objects = object_types(sdl);
    let mut found = BTreeSet::new();
    for type_name in &objects {
        if ["Query", "Mutation", "Subscription"].contains(&type_name.as_str())
            || type_name.ends_with("Payload")
        {
            continue;
        }
        for (field, field_type) in typed_fields_of(sdl, type_name) {
            let plumbing = (type_name.ends_with("Connection")
                && ["pageInfo", "edges", "nodes"].contains(&field.as_str()))
                || (type_name.ends_with("Edge") && field == "node");
            if !plumbing && objects.contains(&field_type) {
                found.insert(format!("{type_name}.{field}"));
            }
        }
    }
    found
}

/// The fields of `type <name> { … }` in GraphQL SDL with their named type (lists and `!`
/// stripped), skipping descriptions.
fn typed_fields_of(sdl: &str, type_name: &str) -> Vec<(String, String)> {
    let header = format!("type {type_name} {{");
    let mut fields = Vec::new();
    let mut inside = false;
    let mut in_description = false;
    for line in sdl.lines() {
        let trimmed = line.trim();
        if !inside {
            inside = trimmed == header;
            continue;
        }
        if trimmed == "}" && !in_description {
            break;
        }
        if let Some(rest) = trimmed.strip_prefix("\"\"\"") {
            let one_line = !rest.is_empty() && rest.ends_with("\"\"\"");
            if !one_line {
                in_description = !in_description;
            }
            continue;
        }
        if in_description {
            continue;
        }
        let name: String = trimmed
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &trimmed[name.len()..];
        if !name.is_empty() && (after.starts_with('(') || after.starts_with(':')) {
            let named: String = after
                .rsplit(':')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            fields.push((name, named));
        }
    }
    fields
}

/// Every Query and Mutation field has a row; every row names something that exists.
#[test]
fn the_checklist_covers_every_operation_and_relation() {
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let table = cases(&World::default(), "");
    let covered: BTreeSet<&str> = table.iter().map(|c| c.op).collect();
    let queries = fields_of(&sdl, "Query");
    let mutations = fields_of(&sdl, "Mutation");
    assert!(
        queries.len() >= 16 && queries.iter().any(|f| f == "authorizeBatch"),
        "parser sanity: {queries:?}"
    );
    assert!(
        mutations.len() >= 24 && mutations.iter().any(|f| f == "unassignRole"),
        "parser sanity: {mutations:?}"
    );
    // `heartbeat` is open to all; `auditEvents` refusals are in websocket.rs
    // (audit_feed_resumes_across_a_reconnect) and audit_feed.rs (replay_then_live_without_gaps);
    // `webhookDeliveries` refusals in webhooks.rs (webhook_deliveries_are_watched_only_by_those_who_see_the_endpoint).
    assert_eq!(
        fields_of(&sdl, "Subscription"),
        ["heartbeat", "auditEvents", "webhookDeliveries"],
        "a new subscription needs its own refusal test"
    );

    let mut missing: Vec<String> = Vec::new();
    for (root, fields) in [("Query", &queries), ("Mutation", &mutations)] {
        for field in fields {
            if !covered.contains(field.as_str()) {
                missing.push(format!("{root}.{field}"));
            }
        }
    }
    let relations = relations(&sdl);
    assert!(
        relations.len() >= 20
            && relations.contains("AuditEvent.organization")
            && relations.contains("Policy.createdBy")
            && relations.contains("Organization.members")
            && !relations.contains("OrganizationConnection.nodes")
            && !relations.contains("UserPayload.user"),
        "parser sanity: {relations:?}"
    );
    let parts: BTreeSet<&str> = PARTS.iter().map(|(part, _)| *part).collect();
    for relation in &relations {
        if !covered.contains(relation.as_str()) && !parts.contains(relation.as_str()) {
            missing.push(relation.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "operations and relations without a row in the refusal checklist \
         (a relation that is only a part of its parent goes in PARTS, with why): {missing:?}"
    );

    let mut unknown: Vec<&str> = Vec::new();
    for op in &covered {
        let exists = match op.split_once('.') {
            Some(_) => relations.contains(*op) && !parts.contains(op),
            None => queries.iter().chain(&mutations).any(|f| f == op),
        };
        if !exists {
            unknown.push(op);
        }
    }
    assert!(
        unknown.is_empty(),
        "rows naming no operation or relation: {unknown:?}"
    );
    let stale: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|part| !relations.contains(*part))
        .collect();
    assert!(stale.is_empty(), "PARTS naming no object-typed field: {stale:?}");

    // The isolation test's custom role grants every organization-scoped action.
    let cedar = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cedar/portcullis.cedarschema"
    ))
    .expect("cedar schema");
    let mut org_scoped: BTreeSet<String> = BTreeSet::new();
    for line in cedar.lines().map(str::trim) {
        let Some((names, applies)) = line
            .strip_prefix("action ")
            .and_then(|rest| rest.split_once("appliesTo"))
        else {
            continue;
        };
        let resource = applies.split("resource:").nth(1).unwrap_or("");
        let resource = resource.split(", context").next().unwrap_or("");
        if resource.contains("Organization") {
            org_scoped.extend(names.split('"').skip(1).step_by(2).map(str::to_owned));
        }
    }
    let listed: BTreeSet<String> = ORG_SCOPED.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        org_scoped, listed,
        "ORG_SCOPED must list the organization-scoped actions"
    );
}

async fn data(t: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    t.gql(Some(token), query, variables).await.data().clone()
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string, got {value}"))
        .to_owned()
}

async fn create_role(t: &TestApp, admin: &str, key: &str, permissions: &[&str], org: Option<&str>) -> String {
    let created = data(
        t,
        admin,
        CREATE_ROLE,
        json!({ "input": { "key": key, "name": key, "permissions": permissions, "organizationId": org } }),
    )
    .await;
    text(&created["createRole"]["role"]["id"])
}

async fn assign(t: &TestApp, admin: &str, user: &str, role: &str, org: Option<&str>) {
    data(t, admin, ASSIGN, json!({ "u": user, "r": role, "o": org })).await;
}

async fn add_member(t: &TestApp, admin: &str, org: &str, user: &str) {
    data(t, admin, ADD_MEMBER, json!({ "o": org, "u": user })).await;
}

async fn create_policy(t: &TestApp, admin: &str, name: &str, source: &str) -> String {
    let created = data(
        t,
        admin,
        "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }",
        json!({ "input": { "name": name, "source": source, "enabled": false } }),
    )
    .await;
    text(&created["createPolicy"]["policy"]["id"])
}

/// A webhook endpoint to [`NOWHERE`], gateway-wide or of `org`, made by `token`.
async fn create_endpoint(t: &TestApp, token: &str, org: Option<&str>) -> String {
    let created = data(
        t,
        token,
        CREATE_ENDPOINT,
        json!({ "input": { "url": NOWHERE, "organizationId": org, "description": "fixture" } }),
    )
    .await;
    text(&created["createWebhookEndpoint"]["endpoint"]["id"])
}

/// A `webhook.test` message queued for `endpoint` (pending: no runner delivers it).
async fn send_test(t: &TestApp, token: &str, endpoint: &str) -> String {
    let sent = data(
        t,
        token,
        "mutation($e: ID!) { sendTestWebhook(input: {endpointId: $e}) { message { id } } }",
        json!({ "e": endpoint }),
    )
    .await;
    text(&sent["sendTestWebhook"]["message"]["id"])
}

async fn create_api_key(t: &TestApp, token: &str) -> String {
    let created = data(
        t,
        token,
        "mutation { createApiKey(input: {name: \"key\"}) { apiKey { id } } }",
        json!({}),
    )
    .await;
    text(&created["createApiKey"]["apiKey"]["id"])
}

async fn world(t: &TestApp) -> World {
    let admin = t.admin_token().await;
    let me = data(t, &admin, "{ viewer { user { id } } }", json!({})).await;
    let admin_id = text(&me["viewer"]["user"]["id"]);
    let org = t.create_organization(&admin, "acme").await;
    let org_admin_role = t.builtin_role(&admin, "org_admin").await;
    let invited = data(
        t,
        &admin,
        "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"invitee@example.com\", roleIds: [$r]}) { invitation { id } } }",
        json!({ "o": org, "r": org_admin_role }),
    )
    .await;
    let invitation = text(&invited["createInvitation"]["invitation"]["id"]);
    let endpoint = create_endpoint(t, &admin, None).await;
    let org_endpoint = create_endpoint(t, &admin, Some(&org)).await;
    let message = send_test(t, &admin, &org_endpoint).await;

    let (other, other_token) = t.user_with_token(&admin, "other@example.com").await;
    add_member(t, &admin, &org, &other).await;
    let other_key = create_api_key(t, &other_token).await;
    let mut authenticator = crate::passkeys::authenticator();
    let other_passkey =
        crate::passkeys::register_passkey(t, &other_token, &mut authenticator, "Other's").await;
    let sessions = data(
        t,
        &other_token,
        "{ viewer { sessions { nodes { id } } } }",
        json!({}),
    )
    .await;
    let other_session = text(&sessions["viewer"]["sessions"]["nodes"][0]["id"]);

    data(
        t,
        &admin,
        "mutation($s: String!) { putCedarSchema(input: {namespace: \"Docs\", source: $s}) { cedarSchema { namespace } } }",
        json!({ "s": DOCS_SCHEMA }),
    )
    .await;
    let policy = create_policy(
        t,
        &admin,
        "static",
        "permit (principal, action == Portcullis::Action::\"user.list\", resource);",
    )
    .await;
    let template = create_policy(
        t,
        &admin,
        "template",
        "permit (principal in ?principal, action == Portcullis::Action::\"user.list\", resource);",
    )
    .await;
    let role = create_role(t, &admin, "custom", &["user.list"], None).await;
    data(
        t,
        &admin,
        "mutation($r: ID!, $p: ID!) { attachPolicy(input: {roleId: $r, policyId: $p}) { role { id } } }",
        json!({ "r": role, "p": template }),
    )
    .await;
    let org_role = create_role(t, &admin, "local", &["member.list"], Some(&org)).await;
    let super_admin = t.builtin_role(&admin, "super_admin").await;
    let org_owner = t.builtin_role(&admin, "org_owner").await;

    let (nobody, nobody_token) = t.user_with_token(&admin, "nobody@example.com").await;
    let nobody_key = create_api_key(t, &nobody_token).await;
    let spare = t.login("nobody@example.com", PASSWORD).await;
    let nobody_spare_session = text(&spare["session"]["id"]);

    let (member, member_token) = t.user_with_token(&admin, "member@example.com").await;
    add_member(t, &admin, &org, &member).await;
    let (reader, reader_token) = t.user_with_token(&admin, "reader@example.com").await;
    let reading = create_role(t, &admin, "reader", &["organization.read", "role.read"], None).await;
    assign(t, &admin, &reader, &reading, None).await;
    let (auditor, auditor_token) = t.user_with_token(&admin, "auditor@example.com").await;
    let audit_only = create_role(t, &admin, "audit_only", &["audit.read"], Some(&org)).await;
    assign(t, &admin, &auditor, &audit_only, Some(&org)).await;
    let policy_reader = create_role(t, &admin, "policy_reader", &["policy.read"], None).await;
    assign(t, &admin, &auditor, &policy_reader, None).await;
    let (directory, directory_token) = t.user_with_token(&admin, "directory@example.com").await;
    let directory_role = create_role(t, &admin, "directory", &["user.read", "role.read"], None).await;
    assign(t, &admin, &directory, &directory_role, None).await;
    let (hooks, hooks_token) = t.user_with_token(&admin, "hooks@example.com").await;
    let hooks_role = create_role(t, &admin, "hooks", &["webhook.list"], None).await;
    assign(t, &admin, &hooks, &hooks_role, None).await;
    // Nobody's refused attempt on the organization puts an event in its log that nobody reads
    // among their own (the finding: that event showed the organization's name).
    let refused = t
        .gql(
            Some(&nobody_token),
            "mutation($o: ID!) { updateOrganization(input: {id: $o, name: \"Mine\"}) { organization { id } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(refused.code(), "FORBIDDEN");

    World {
        admin,
        admin_id,
        org,
        other,
        other_session,
        other_key,
        other_passkey,
        role,
        org_role,
        super_admin,
        org_owner,
        policy,
        template,
        nobody,
        nobody_token,
        nobody_key,
        nobody_spare_session,
        member_token,
        reader_token,
        auditor_token,
        directory_token,
        hooks_token,
        invitation,
        endpoint,
        org_endpoint,
        message,
    }
}

async fn fresh_refresh_token(t: &TestApp) -> String {
    text(&t.login("nobody@example.com", PASSWORD).await["refreshToken"])
}

/// Asks every row (logout last: it ends the caller's session), as its caller or anonymously;
/// returns the failures.
async fn run_checklist(t: &TestApp, w: &World, table: Vec<Case>, anonymous: bool) -> Vec<String> {
    let (last, first): (Vec<Case>, Vec<Case>) = table.into_iter().partition(|c| c.op == "logout");
    let mut failures = Vec::new();
    for row in first.iter().chain(&last) {
        let (token, expect) = if anonymous {
            (None, &row.anonymous)
        } else {
            (Some(w.token(row.who)), &row.expect)
        };
        let response = t.gql(token, row.query, row.vars.clone()).await;
        if let Err(why) = verdict(&response.0, expect) {
            let how = if anonymous { ", anonymously" } else { "" };
            failures.push(format!("{}{how}: {why}", row.label()));
        }
    }
    failures
}

/// A user without roles is refused every operation that is not self-service, and nothing leaks;
/// without credentials, everything but the public operations is UNAUTHENTICATED.
async fn every_operation_refuses_an_unprivileged_caller(t: TestApp) {
    let w = world(&t).await;

    let refresh = fresh_refresh_token(&t).await;
    let mut failures = run_checklist(&t, &w, cases(&w, &refresh), false).await;
    let refresh = fresh_refresh_token(&t).await;
    failures.extend(run_checklist(&t, &w, cases(&w, &refresh), true).await);
    assert!(
        failures.is_empty(),
        "{} refusal(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Someone else's session or key is indistinguishable from one that does not exist.
    let (_, token) = t.user_with_token(&w.admin, "prober@example.com").await;
    for (query, real) in [
        (
            "mutation($id: ID!) { revokeSession(input: {id: $id}) { session { id } } }",
            &w.other_session,
        ),
        (
            "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { id } } }",
            &w.other_key,
        ),
        (UPDATE_ENDPOINT, &w.org_endpoint),
        (ROTATE_SECRET, &w.endpoint),
        (RETRY_MESSAGE, &w.message),
    ] {
        let theirs = t.gql(Some(&token), query, json!({ "id": real })).await;
        let none = t.gql(Some(&token), query, json!({ "id": NO_SUCH_ID })).await;
        assert_eq!(theirs.code(), none.code(), "{query}");
        assert_eq!(theirs.message(), none.message(), "{query}");
    }

    // Nothing the refused calls aimed at changed.
    let check = data(
        &t,
        &w.admin,
        "query($u: ID!, $o: ID!, $r: ID!, $p: ID!) {
           user(id: $u) { status displayName }
           organization(id: $o) { name members { totalCount } }
           role(id: $r) { name permissions policies { id } }
           policy(id: $p) { enabled version }
           users { totalCount }
           organizations { totalCount }
           roles(first: 50) { totalCount }
           policies { totalCount }
           cedarSchemas { source }
         }",
        json!({ "u": w.other, "o": w.org, "r": w.role, "p": w.policy }),
    )
    .await;
    assert_eq!(check["user"]["status"], "ACTIVE");
    assert_eq!(check["user"]["displayName"], "other@example.com");
    assert_eq!(check["organization"]["name"], "acme");
    assert_eq!(check["organization"]["members"]["totalCount"], 2);
    assert_eq!(check["role"]["name"], "custom");
    assert_eq!(check["role"]["permissions"], json!(["user.list"]));
    assert_eq!(check["role"]["policies"][0]["id"], w.template.as_str());
    assert_eq!(check["policy"]["enabled"], false);
    assert_eq!(check["policy"]["version"], 1);
    assert_eq!(
        check["users"]["totalCount"], 9,
        "admin, other, nobody, member, reader, auditor, directory, hooks, prober"
    );
    assert_eq!(check["organizations"]["totalCount"], 1);
    assert_eq!(
        check["roles"]["totalCount"],
        5 + 5,
        "built-ins, custom, reader, policy_reader, directory, hooks"
    );
    assert_eq!(check["policies"]["totalCount"], 2);
    assert_eq!(check["cedarSchemas"][0]["source"], DOCS_SCHEMA);
    let other_key = data(
        &t,
        &text(&t.login("other@example.com", PASSWORD).await["accessToken"]),
        "{ viewer { apiKeys { nodes { revokedAt } } sessions { nodes { id revokedAt } } } }",
        json!({}),
    )
    .await;
    assert!(other_key["viewer"]["apiKeys"]["nodes"][0]["revokedAt"].is_null());
    assert!(other_key["viewer"]["sessions"]["nodes"][0]["revokedAt"].is_null());
    let admin_roles = data(
        &t,
        &w.admin,
        "query($u: ID!) { roleAssignments(filter: {userId: $u}) { nodes { role { key } } } }",
        json!({ "u": w.admin_id }),
    )
    .await;
    assert_eq!(
        admin_roles["roleAssignments"]["nodes"][0]["role"]["key"],
        "super_admin"
    );
    let nobody_roles = data(
        &t,
        &w.admin,
        "query($u: ID!) { roleAssignments(filter: {userId: $u}) { totalCount } user(id: $u) { memberships { totalCount } } }",
        json!({ "u": w.nobody }),
    )
    .await;
    assert_eq!(nobody_roles["roleAssignments"]["totalCount"], 0);
    assert_eq!(nobody_roles["user"]["memberships"]["totalCount"], 0);
    // The webhook endpoints still point where the administrator set them, with their one message
    // still waiting, and no endpoint was added or deleted.
    let hooks = data(
        &t,
        &w.admin,
        "query($e: ID!, $oe: ID!, $o: ID!) {
           gateway: webhookEndpoint(id: $e) { url enabled previousSecretExpiresAt }
           org: webhookEndpoint(id: $oe) { url enabled }
           all: webhookEndpoints { totalCount }
           orgs: webhookEndpoints(organizationId: $o) { totalCount }
           messages: webhookMessages(filter: {endpointId: $oe}) { nodes { id status attemptCount } }
           gatewayMessages: webhookMessages(filter: {endpointId: $e}) { totalCount }
         }",
        json!({ "e": w.endpoint, "oe": w.org_endpoint, "o": w.org }),
    )
    .await;
    assert_eq!(
        hooks["gateway"],
        json!({ "url": NOWHERE, "enabled": true, "previousSecretExpiresAt": null }),
        "not rotated"
    );
    assert_eq!(hooks["org"], json!({ "url": NOWHERE, "enabled": true }));
    assert_eq!(hooks["all"]["totalCount"], 1);
    assert_eq!(hooks["orgs"]["totalCount"], 1);
    assert_eq!(
        hooks["messages"]["nodes"],
        json!([{ "id": w.message, "status": "PENDING", "attemptCount": 0 }])
    );
    assert_eq!(
        hooks["gatewayMessages"]["totalCount"], 0,
        "nothing replayed or sent"
    );
}

/// One organization-scoped operation, asked about organization A and about organization B.
struct Pair {
    op: &'static str,
    query: &'static str,
    on_a: (Value, Expect),
    on_b: (Value, Expect),
}

fn pair(op: &'static str, query: &'static str, on_a: (Value, Expect), on_b: (Value, Expect)) -> Pair {
    Pair {
        op,
        query,
        on_a,
        on_b,
    }
}

/// The two organizations and what lives in them.
struct Orgs {
    admin: String,
    a: String,
    b: String,
    /// In no organization: added, assigned and removed again by each tenant in A.
    newbie: String,
    /// A member of A and B, holding `org_admin` in B.
    pat: String,
    role_a: String,
    role_b: String,
    org_admin: String,
    /// Webhook endpoints of A and of B, each with a (pending) test message; and a gateway-wide one.
    endpoint_a: String,
    endpoint_b: String,
    message_a: String,
    message_b: String,
    gateway_endpoint: String,
}

/// A caller whose power comes from a role held in A.
struct Tenant {
    tag: &'static str,
    token: String,
    /// A role of A this tenant deletes.
    doomed: String,
    /// A webhook endpoint of A this tenant deletes.
    doomed_endpoint: String,
}

fn isolation_table(o: &Orgs, p: &Tenant) -> Vec<Pair> {
    let org = |id: &str| json!({ "o": id });
    let ask = |action: &str, org: &str| question(action, ("Portcullis::Organization", org), None, Some(org));
    let new_key = format!("made_by_{}", p.tag);
    let new_name = format!("Renamed by {}", p.tag);
    let create = |org: &str| json!({ "input": { "key": new_key, "name": new_key, "organizationId": org, "permissions": ["member.list"] } });
    let hook =
        |org: &str| json!({ "input": { "url": NOWHERE, "organizationId": org, "description": new_key } });
    vec![
        pair(
            "auditEvents",
            "query($o: ID!) { auditEvents(filter: {organizationId: $o}) { totalCount } }",
            (org(&o.a), Succeeds),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "auditStats",
            "query($o: ID!) { auditStats(groupBy: ACTION, filter: {organizationId: $o}) { truncated } }",
            (org(&o.a), Succeeds),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "createAuditExport",
            "mutation($o: ID!) { createAuditExport(input: {format: CSV, filter: {organizationId: $o}}) { url } }",
            (org(&o.a), Succeeds),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "verifyAuditLog",
            "query($o: ID!) { verifyAuditLog(organizationId: $o) { ok } }",
            (org(&o.a), Yields("/verifyAuditLog/ok", json!(true))),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "organization",
            "query($o: ID!) { organization(id: $o) { id } }",
            (org(&o.a), Yields("/organization/id", json!(o.a))),
            (org(&o.b), Hidden),
        ),
        pair(
            "organizationBySlug",
            "query($s: String!) { organizationBySlug(slug: $s) { id } }",
            (
                json!({ "s": "alpha" }),
                Yields("/organizationBySlug/id", json!(o.a)),
            ),
            (json!({ "s": "beta" }), Hidden),
        ),
        pair(
            "Organization.members",
            "query($o: ID!) { organization(id: $o) { members { totalCount } } }",
            (org(&o.a), Succeeds),
            (org(&o.b), Hidden),
        ),
        pair(
            "updateOrganization",
            "mutation($o: ID!, $n: String!) { updateOrganization(input: {id: $o, name: $n}) { organization { name } } }",
            (
                json!({ "o": o.a, "n": new_name }),
                Yields("/updateOrganization/organization/name", json!(new_name)),
            ),
            (json!({ "o": o.b, "n": new_name }), FORBIDDEN),
        ),
        pair(
            "addMember",
            ADD_MEMBER,
            (json!({ "o": o.a, "u": o.newbie }), Succeeds),
            (json!({ "o": o.b, "u": o.newbie }), FORBIDDEN),
        ),
        pair(
            "removeMember",
            REMOVE_MEMBER,
            (json!({ "o": o.a, "u": o.newbie }), Succeeds),
            (json!({ "o": o.b, "u": o.pat }), FORBIDDEN),
        ),
        pair(
            "roles",
            "query($o: ID!) { roles(organizationId: $o, first: 50) { totalCount } }",
            (org(&o.a), Succeeds),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "role",
            "query($r: ID!) { role(id: $r) { id } }",
            (json!({ "r": o.role_a }), Yields("/role/id", json!(o.role_a))),
            (json!({ "r": o.role_b }), Hidden),
        ),
        pair(
            "createRole",
            CREATE_ROLE,
            (create(&o.a), Succeeds),
            (create(&o.b), FORBIDDEN),
        ),
        pair(
            "updateRole",
            "mutation($r: ID!, $n: String!) { updateRole(input: {id: $r, name: $n, permissions: [\"member.list\", \"member.add\"]}) { role { name } } }",
            (
                json!({ "r": o.role_a, "n": new_name }),
                Yields("/updateRole/role/name", json!(new_name)),
            ),
            (json!({ "r": o.role_b, "n": new_name }), NOT_FOUND),
        ),
        pair(
            "deleteRole",
            "mutation($r: ID!) { deleteRole(input: {id: $r}) { role { id } } }",
            (json!({ "r": p.doomed }), Succeeds),
            (json!({ "r": o.role_b }), NOT_FOUND),
        ),
        pair(
            "assignRole",
            ASSIGN,
            (json!({ "u": o.newbie, "r": o.org_admin, "o": o.a }), Succeeds),
            (json!({ "u": o.newbie, "r": o.org_admin, "o": o.b }), FORBIDDEN),
        ),
        pair(
            "unassignRole",
            UNASSIGN,
            (json!({ "u": o.newbie, "r": o.org_admin, "o": o.a }), Succeeds),
            (json!({ "u": o.pat, "r": o.org_admin, "o": o.b }), FORBIDDEN),
        ),
        pair(
            "roleAssignments",
            "query($o: ID!) { roleAssignments(filter: {organizationId: $o}) { totalCount } }",
            (org(&o.a), Succeeds),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "webhookEndpoints",
            "query($o: ID!) { webhookEndpoints(organizationId: $o) { totalCount } }",
            (org(&o.a), Succeeds),
            (org(&o.b), FORBIDDEN),
        ),
        pair(
            "webhookEndpoint",
            "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
            (
                json!({ "id": o.endpoint_a }),
                Yields("/webhookEndpoint/id", json!(o.endpoint_a)),
            ),
            (json!({ "id": o.endpoint_b }), Hidden),
        ),
        pair(
            "WebhookEndpoint.organization",
            "query($id: ID!) { webhookEndpoint(id: $id) { organization { id } } }",
            (
                json!({ "id": o.endpoint_a }),
                Yields("/webhookEndpoint/organization/id", json!(o.a)),
            ),
            (json!({ "id": o.endpoint_b }), Hidden),
        ),
        pair(
            "createWebhookEndpoint",
            CREATE_ENDPOINT,
            (hook(&o.a), Succeeds),
            (hook(&o.b), FORBIDDEN),
        ),
        pair(
            "updateWebhookEndpoint",
            "mutation($id: ID!, $d: String!) { updateWebhookEndpoint(input: {id: $id, description: $d}) { endpoint { description } } }",
            (
                json!({ "id": o.endpoint_a, "d": new_name }),
                Yields("/updateWebhookEndpoint/endpoint/description", json!(new_name)),
            ),
            (json!({ "id": o.endpoint_b, "d": new_name }), NOT_FOUND),
        ),
        pair(
            "rotateWebhookSecret",
            ROTATE_SECRET,
            (json!({ "id": o.endpoint_a }), Succeeds),
            (json!({ "id": o.endpoint_b }), NOT_FOUND),
        ),
        pair(
            "deleteWebhookEndpoint",
            "mutation($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { deletedId } }",
            (
                json!({ "id": p.doomed_endpoint }),
                Yields("/deleteWebhookEndpoint/deletedId", json!(p.doomed_endpoint)),
            ),
            (json!({ "id": o.endpoint_b }), NOT_FOUND),
        ),
        pair(
            "webhookMessages",
            "query($e: ID!) { webhookMessages(filter: {endpointId: $e}) { totalCount } }",
            (json!({ "e": o.endpoint_a }), Succeeds),
            (json!({ "e": o.endpoint_b }), NOT_FOUND),
        ),
        pair(
            "webhookMessage",
            "query($id: ID!) { webhookMessage(id: $id) { id } }",
            (
                json!({ "id": o.message_a }),
                Yields("/webhookMessage/id", json!(o.message_a)),
            ),
            (json!({ "id": o.message_b }), Hidden),
        ),
        pair(
            "sendTestWebhook",
            "mutation($e: ID!) { sendTestWebhook(input: {endpointId: $e}) { message { test } } }",
            (
                json!({ "e": o.endpoint_a }),
                Yields("/sendTestWebhook/message/test", json!(true)),
            ),
            (json!({ "e": o.endpoint_b }), NOT_FOUND),
        ),
        pair(
            // A's message is pending, so a retry is refused as a CONFLICT: past the permission check.
            "retryWebhookMessage",
            RETRY_MESSAGE,
            (json!({ "id": o.message_a }), Refused("CONFLICT")),
            (json!({ "id": o.message_b }), NOT_FOUND),
        ),
        pair(
            "replayWebhookEvents",
            "mutation($e: ID!) { replayWebhookEvents(input: {endpointId: $e, since: \"2026-01-01T00:00:00Z\"}) { complete } }",
            (
                json!({ "e": o.endpoint_a }),
                Yields("/replayWebhookEvents/complete", json!(true)),
            ),
            (json!({ "e": o.endpoint_b }), NOT_FOUND),
        ),
        pair(
            "recoverWebhookEndpoint",
            "mutation($e: ID!) { recoverWebhookEndpoint(input: {endpointId: $e, since: \"2026-01-01T00:00:00Z\"}) { queued } }",
            (
                json!({ "e": o.endpoint_a }),
                Yields("/recoverWebhookEndpoint/queued", json!(0)),
            ),
            (json!({ "e": o.endpoint_b }), NOT_FOUND),
        ),
        pair(
            "authorize",
            AUTHORIZE,
            (
                json!({ "input": ask("member.add", &o.a) }),
                Yields("/authorize/decision", json!("ALLOW")),
            ),
            (
                json!({ "input": ask("member.add", &o.b) }),
                Yields("/authorize/decision", json!("DENY")),
            ),
        ),
        pair(
            "authorizeBatch",
            AUTHORIZE_BATCH,
            (
                json!({ "inputs": [ask("role.assign", &o.a)] }),
                Yields("/authorizeBatch/0/decision", json!("ALLOW")),
            ),
            (
                json!({ "inputs": [ask("role.assign", &o.b)] }),
                Yields("/authorizeBatch/0/decision", json!("DENY")),
            ),
        ),
    ]
}

/// Refusals beyond the A/B pairs: a role held in A reaches nothing gateway-wide either.
/// Rows: (operation, case, query, variables, expected).
fn beyond_a(o: &Orgs, p: &Tenant) -> Vec<(&'static str, &'static str, &'static str, Value, Expect)> {
    let about_a_in_b = question("member.add", ("Portcullis::Organization", &o.a), None, Some(&o.b));
    vec![
        (
            "assignRole",
            "org_admin globally",
            ASSIGN,
            json!({ "u": o.newbie, "r": o.org_admin, "o": null }),
            FORBIDDEN,
        ),
        (
            "assignRole",
            "B's own role in B",
            ASSIGN,
            json!({ "u": o.newbie, "r": o.role_b, "o": o.b }),
            FORBIDDEN,
        ),
        (
            "authorize",
            "about A, with organizationId B",
            AUTHORIZE,
            json!({ "input": about_a_in_b }),
            Yields("/authorize/decision", json!("DENY")),
        ),
        (
            "createRole",
            "global",
            CREATE_ROLE,
            json!({ "input": { "key": format!("global_{}", p.tag), "name": "G", "permissions": ["user.disable", "policy.create"] } }),
            FORBIDDEN,
        ),
        (
            "roles",
            "global list",
            "{ roles { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        (
            "roleAssignments",
            "unfiltered",
            "{ roleAssignments { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        (
            "organizations",
            "list",
            "{ organizations { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        (
            "createWebhookEndpoint",
            "gateway-wide",
            CREATE_ENDPOINT,
            json!({ "input": { "url": NOWHERE } }),
            FORBIDDEN,
        ),
        (
            "webhookEndpoints",
            "gateway-wide list",
            "{ webhookEndpoints { totalCount } }",
            json!({}),
            FORBIDDEN,
        ),
        (
            "webhookEndpoint",
            "a gateway-wide one",
            "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
            json!({ "id": o.gateway_endpoint }),
            Hidden,
        ),
        (
            "rotateWebhookSecret",
            "a gateway-wide one",
            ROTATE_SECRET,
            json!({ "id": o.gateway_endpoint }),
            NOT_FOUND,
        ),
    ]
}

/// A role assignment the caller holds in B (with a role granting nothing) does not reveal B: the
/// assignment is listed, its organization is null, and B's members are out of reach.
async fn members_of_b_through_an_assignment(t: &TestApp, token: &str, b: &str) -> Result<(), String> {
    let response = t
        .gql(
            Some(token),
            "{ viewer { user { roleAssignments { nodes { role { key } organization { id name members { totalCount } } } } } } }",
            json!({}),
        )
        .await;
    let body = &response.0;
    let nodes = body["data"]["viewer"]["user"]["roleAssignments"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let listed = nodes
        .iter()
        .any(|n| n["role"]["key"] == "b_nothing" && n["organization"].is_null());
    let leaked = nodes.iter().any(|n| n["organization"]["id"] == b);
    if body.get("errors").is_none() && listed && !leaked {
        Ok(())
    } else {
        Err(format!(
            "B through an assignment: expected the assignment with a null organization, got {body}"
        ))
    }
}

/// Roles held in organization A (built-in `org_owner`, or a custom role of A with every
/// organization-scoped permission) work in A and nowhere else; so does membership of A.
async fn roles_held_in_one_organization_stop_at_its_border(t: TestApp) {
    let admin = t.admin_token().await;
    let a = t.create_organization(&admin, "alpha").await;
    let b = t.create_organization(&admin, "beta").await;
    let newbie = t.create_user(&admin, "newbie@example.com").await;
    let pat = t.create_user(&admin, "pat@example.com").await;
    add_member(&t, &admin, &a, &pat).await;
    add_member(&t, &admin, &b, &pat).await;
    let org_owner = t.builtin_role(&admin, "org_owner").await;
    let org_admin = t.builtin_role(&admin, "org_admin").await;
    assign(&t, &admin, &pat, &org_admin, Some(&b)).await;
    let role_a = create_role(&t, &admin, "a_role", &["member.list"], Some(&a)).await;
    let role_b = create_role(&t, &admin, "b_role", &["member.list"], Some(&b)).await;
    let everything = create_role(&t, &admin, "a_everything", &ORG_SCOPED, Some(&a)).await;

    let (owner, owner_token) = t.user_with_token(&admin, "owner@example.com").await;
    assign(&t, &admin, &owner, &org_owner, Some(&a)).await;
    let (custodian, custodian_token) = t.user_with_token(&admin, "custodian@example.com").await;
    assign(&t, &admin, &custodian, &everything, Some(&a)).await;
    let tenants = [
        Tenant {
            tag: "owner",
            token: owner_token,
            doomed: create_role(&t, &admin, "doomed_owner", &[], Some(&a)).await,
            doomed_endpoint: create_endpoint(&t, &admin, Some(&a)).await,
        },
        Tenant {
            tag: "custodian",
            token: custodian_token,
            doomed: create_role(&t, &admin, "doomed_custodian", &[], Some(&a)).await,
            doomed_endpoint: create_endpoint(&t, &admin, Some(&a)).await,
        },
    ];
    let endpoint_a = create_endpoint(&t, &admin, Some(&a)).await;
    let endpoint_b = create_endpoint(&t, &admin, Some(&b)).await;
    let message_a = send_test(&t, &admin, &endpoint_a).await;
    let message_b = send_test(&t, &admin, &endpoint_b).await;
    let gateway_endpoint = create_endpoint(&t, &admin, None).await;
    let o = Orgs {
        admin,
        a,
        b,
        newbie,
        pat,
        role_a,
        role_b,
        org_admin,
        endpoint_a,
        endpoint_b,
        message_a,
        message_b,
        gateway_endpoint,
    };

    let mut failures = Vec::new();
    for p in &tenants {
        for row in isolation_table(&o, p) {
            for (side, (vars, expect)) in [("A", &row.on_a), ("B", &row.on_b)] {
                let response = t.gql(Some(&p.token), row.query, vars.clone()).await;
                if let Err(why) = verdict(&response.0, expect) {
                    failures.push(format!("{} on {side} as {}: {why}", row.op, p.tag));
                }
            }
        }
        for (op, note, query, vars, expect) in beyond_a(&o, p) {
            let response = t.gql(Some(&p.token), query, vars).await;
            if let Err(why) = verdict(&response.0, &expect) {
                failures.push(format!("{op} ({note}) as {}: {why}", p.tag));
            }
        }
    }

    // Membership of A (implicit org_member) reads A's members, not B's, and grants no more.
    let (mia, mia_token) = t.user_with_token(&o.admin, "mia@example.com").await;
    add_member(&t, &o.admin, &o.a, &mia).await;
    let members = "query($o: ID!) { organization(id: $o) { members { totalCount } } }";
    let ask = |action: &str, org: &str| json!({ "input": question(action, ("Portcullis::Organization", org), None, Some(org)) });
    let member_rows: Vec<(&str, &str, Value, Expect)> = vec![
        (
            "Organization.members of A",
            members,
            json!({ "o": o.a }),
            Succeeds,
        ),
        ("Organization.members of B", members, json!({ "o": o.b }), Hidden),
        (
            "organization B",
            "query($o: ID!) { organization(id: $o) { id } }",
            json!({ "o": o.b }),
            Hidden,
        ),
        (
            "addMember to A",
            ADD_MEMBER,
            json!({ "o": o.a, "u": o.newbie }),
            FORBIDDEN,
        ),
        (
            "roles of A",
            "query($o: ID!) { roles(organizationId: $o) { totalCount } }",
            json!({ "o": o.a }),
            FORBIDDEN,
        ),
        (
            "authorize member.list in A",
            AUTHORIZE,
            ask("member.list", &o.a),
            Yields("/authorize/decision", json!("ALLOW")),
        ),
        (
            "authorize member.list in B",
            AUTHORIZE,
            ask("member.list", &o.b),
            Yields("/authorize/decision", json!("DENY")),
        ),
    ];
    for (label, query, vars, expect) in member_rows {
        let response = t.gql(Some(&mia_token), query, vars).await;
        if let Err(why) = verdict(&response.0, &expect) {
            failures.push(format!("member of A, {label}: {why}"));
        }
    }

    // B's Organization object is not reached through an (empty) role held in B.
    let nothing_in_b = create_role(&t, &o.admin, "b_nothing", &[], Some(&o.b)).await;
    for (who, id, token) in [
        ("owner", &owner, &tenants[0].token),
        ("custodian", &custodian, &tenants[1].token),
        ("member", &mia, &mia_token),
    ] {
        assign(&t, &o.admin, id, &nothing_in_b, Some(&o.b)).await;
        if let Err(why) = members_of_b_through_an_assignment(&t, token, &o.b).await {
            failures.push(format!("{who}: {why}"));
        }
    }

    assert!(
        failures.is_empty(),
        "{} isolation check(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // B is exactly as the administrator left it.
    let b_now = data(
        &t,
        &o.admin,
        "query($b: ID!, $r: ID!, $pat: ID!, $newbie: ID!) {
           organization(id: $b) { name members { nodes { user { id } } } }
           roles(organizationId: $b, first: 50) { nodes { key } }
           role(id: $r) { name permissions }
           pat: roleAssignments(filter: {userId: $pat, organizationId: $b}) { nodes { role { key } } }
           newbie: roleAssignments(filter: {userId: $newbie}) { totalCount }
           user(id: $newbie) { memberships { totalCount } }
         }",
        json!({ "b": o.b, "r": o.role_b, "pat": o.pat, "newbie": o.newbie }),
    )
    .await;
    assert_eq!(b_now["organization"]["name"], "beta");
    assert_eq!(
        b_now["organization"]["members"]["nodes"],
        json!([{ "user": { "id": o.pat } }])
    );
    let keys: Vec<&str> = b_now["roles"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    assert!(!keys.iter().any(|k| k.starts_with("made_by_")), "{keys:?}");
    assert!(keys.contains(&"b_role"), "{keys:?}");
    assert_eq!(b_now["role"]["name"], "b_role");
    assert_eq!(b_now["role"]["permissions"], json!(["member.list"]));
    assert_eq!(b_now["pat"]["nodes"], json!([{ "role": { "key": "org_admin" } }]));
    assert_eq!(b_now["newbie"]["totalCount"], 0);
    assert_eq!(b_now["user"]["memberships"]["totalCount"], 0);
    let b_hooks = data(
        &t,
        &o.admin,
        "query($b: ID!, $e: ID!, $g: ID!) {
           webhookEndpoints(organizationId: $b) { totalCount nodes { id description url previousSecretExpiresAt } }
           webhookMessages(filter: {endpointId: $e}) { nodes { id status replay } }
           gateway: webhookEndpoint(id: $g) { previousSecretExpiresAt }
           gatewayList: webhookEndpoints { totalCount }
         }",
        json!({ "b": o.b, "e": o.endpoint_b, "g": o.gateway_endpoint }),
    )
    .await;
    assert_eq!(
        b_hooks["webhookEndpoints"],
        json!({ "totalCount": 1, "nodes": [{ "id": o.endpoint_b, "description": "fixture", "url": NOWHERE, "previousSecretExpiresAt": null }] })
    );
    assert_eq!(
        b_hooks["webhookMessages"]["nodes"],
        json!([{ "id": o.message_b, "status": "PENDING", "replay": false }])
    );
    assert_eq!(b_hooks["gateway"]["previousSecretExpiresAt"], Value::Null);
    assert_eq!(b_hooks["gatewayList"]["totalCount"], 1);
    // …while A shows each tenant's work.
    let a_now = data(
        &t,
        &o.admin,
        "query($a: ID!) { roles(organizationId: $a, first: 50) { nodes { key } } }",
        json!({ "a": o.a }),
    )
    .await;
    let keys: Vec<&str> = a_now["roles"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    for key in ["made_by_owner", "made_by_custodian"] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    for key in ["doomed_owner", "doomed_custodian"] {
        assert!(!keys.contains(&key), "{key} deleted: {keys:?}");
    }
    let a_hooks = data(
        &t,
        &o.admin,
        "query($a: ID!) { webhookEndpoints(organizationId: $a, first: 50) { nodes { id description } } }",
        json!({ "a": o.a }),
    )
    .await;
    let a_hooks = a_hooks["webhookEndpoints"]["nodes"].as_array().unwrap().clone();
    for made in ["made_by_owner", "made_by_custodian"] {
        assert!(
            a_hooks.iter().any(|e| e["description"] == made),
            "{made} in {a_hooks:?}"
        );
    }
    for p in &tenants {
        assert!(
            !a_hooks.iter().any(|e| e["id"] == p.doomed_endpoint.as_str()),
            "{}'s doomed endpoint deleted: {a_hooks:?}",
            p.tag
        );
    }
}

crate::backend_tests!(
    every_operation_refuses_an_unprivileged_caller,
    roles_held_in_one_organization_stop_at_its_border,
);
