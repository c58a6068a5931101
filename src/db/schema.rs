//! The tables, declared once for both backends with the portable types of `db::types`.

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    users (id) {
        id -> PortableUuid,
        email -> Text,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        status -> Text,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    organizations (id) {
        id -> PortableUuid,
        slug -> Text,
        name -> Text,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    memberships (id) {
        id -> PortableUuid,
        organization_id -> PortableUuid,
        user_id -> PortableUuid,
        created_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    sessions (id) {
        id -> PortableUuid,
        user_id -> PortableUuid,
        auth_method -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> PortableTimestamp,
        last_refreshed_at -> PortableTimestamp,
        expires_at -> PortableTimestamp,
        revoked_at -> Nullable<PortableTimestamp>,
        revoked_reason -> Nullable<Text>,
        mfa_verified_at -> Nullable<PortableTimestamp>,
        mfa_expires_at -> Nullable<PortableTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    refresh_tokens (id) {
        id -> PortableUuid,
        session_id -> PortableUuid,
        secret_hash -> Binary,
        created_at -> PortableTimestamp,
        expires_at -> PortableTimestamp,
        used_at -> Nullable<PortableTimestamp>,
        used_ip -> Nullable<Text>,
        used_user_agent -> Nullable<Text>,
        replaced_by -> Nullable<PortableUuid>,
        successor_salt -> Nullable<Binary>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    api_keys (id) {
        id -> PortableUuid,
        user_id -> PortableUuid,
        name -> Text,
        prefix -> Text,
        secret_hash -> Binary,
        created_at -> PortableTimestamp,
        expires_at -> Nullable<PortableTimestamp>,
        last_used_at -> Nullable<PortableTimestamp>,
        revoked_at -> Nullable<PortableTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    signing_keys (id) {
        id -> PortableUuid,
        algorithm -> Text,
        private_key -> Binary,
        public_key -> Binary,
        created_at -> PortableTimestamp,
        retired_at -> Nullable<PortableTimestamp>,
        activates_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    roles (id) {
        id -> PortableUuid,
        key -> Text,
        name -> Text,
        description -> Text,
        organization_id -> Nullable<PortableUuid>,
        permissions -> Text,
        built_in -> Bool,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    policies (id) {
        id -> PortableUuid,
        name -> Text,
        description -> Text,
        source -> Text,
        kind -> Text,
        effect -> Text,
        enabled -> Bool,
        version -> BigInt,
        created_by -> Nullable<PortableUuid>,
        updated_by -> Nullable<PortableUuid>,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    role_policies (role_id, policy_id) {
        role_id -> PortableUuid,
        policy_id -> PortableUuid,
        created_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    role_assignments (id) {
        id -> PortableUuid,
        user_id -> PortableUuid,
        role_id -> PortableUuid,
        organization_id -> Nullable<PortableUuid>,
        created_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    cedar_schemas (namespace) {
        namespace -> Text,
        source -> Text,
        updated_by -> Nullable<PortableUuid>,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    authz_state (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    audit_inbox (inbox_seq) {
        inbox_seq -> BigInt,
        id -> PortableUuid,
        occurred_at -> PortableTimestamp,
        action -> Text,
        actor_type -> Text,
        actor_id -> Nullable<PortableUuid>,
        actor_user_id -> Nullable<PortableUuid>,
        actor_name -> Nullable<Text>,
        organization_id -> Nullable<PortableUuid>,
        outcome -> Text,
        targets -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        metadata -> Text,
        version -> Integer,
        salt -> Text,
        personal_digest -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    audit_events (id) {
        id -> PortableUuid,
        seq -> BigInt,
        occurred_at -> PortableTimestamp,
        action -> Text,
        actor_type -> Text,
        actor_id -> Nullable<PortableUuid>,
        actor_user_id -> Nullable<PortableUuid>,
        actor_name -> Nullable<Text>,
        organization_id -> Nullable<PortableUuid>,
        outcome -> Text,
        targets -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        metadata -> Text,
        version -> Integer,
        salt -> Text,
        personal_digest -> Text,
        prev_hash -> Text,
        hash -> Text,
        erased_at -> Nullable<PortableTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    audit_targets (event_id, position) {
        event_id -> PortableUuid,
        position -> Integer,
        target_type -> Text,
        target_id -> Text,
        display_name -> Nullable<Text>,
    }
}

diesel::table! {
    audit_chains (chain) {
        chain -> Text,
        head_seq -> BigInt,
        head_hash -> Text,
        anchor_seq -> BigInt,
        anchor_hash -> Text,
    }
}

diesel::table! {
    audit_state (id) {
        id -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    organization_branding (organization_id) {
        organization_id -> PortableUuid,
        display_name -> Nullable<Text>,
        logo_url -> Nullable<Text>,
        primary_color -> Nullable<Text>,
        email_from_name -> Nullable<Text>,
        support_email -> Nullable<Text>,
        default_locale -> Nullable<Text>,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    invitations (id) {
        id -> PortableUuid,
        organization_id -> PortableUuid,
        email -> Text,
        message -> Nullable<Text>,
        locale -> Nullable<Text>,
        status -> Text,
        token_hash -> Nullable<Binary>,
        invited_by_user_id -> Nullable<PortableUuid>,
        invited_by_api_key_id -> Nullable<PortableUuid>,
        expires_at -> PortableTimestamp,
        send_count -> Integer,
        last_sent_at -> Nullable<PortableTimestamp>,
        accepted_by_user_id -> Nullable<PortableUuid>,
        accepted_at -> Nullable<PortableTimestamp>,
        revoked_by_user_id -> Nullable<PortableUuid>,
        revoked_at -> Nullable<PortableTimestamp>,
        ended_at -> Nullable<PortableTimestamp>,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    invitation_roles (invitation_id, role_id) {
        invitation_id -> PortableUuid,
        role_id -> PortableUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    invitation_batches (organization_id, idempotency_key) {
        organization_id -> PortableUuid,
        idempotency_key -> Text,
        payload_digest -> Text,
        results -> Text,
        created_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    jobs (id) {
        id -> PortableUuid,
        kind -> Text,
        payload -> Text,
        organization_id -> Nullable<PortableUuid>,
        recipient -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        run_at -> PortableTimestamp,
        locked_until -> Nullable<PortableTimestamp>,
        last_error -> Nullable<Text>,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
        finished_at -> Nullable<PortableTimestamp>,
        lane -> Nullable<Text>,
        lane_position -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    webhook_endpoints (id) {
        id -> PortableUuid,
        organization_id -> Nullable<PortableUuid>,
        url -> Text,
        description -> Text,
        event_types -> Text,
        enabled -> Bool,
        ordered -> Bool,
        include_sensitive -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<PortableTimestamp>,
        cursor_seq -> BigInt,
        next_position -> BigInt,
        failing_since -> Nullable<PortableTimestamp>,
        disabled_reason -> Nullable<Text>,
        owner_user_id -> Nullable<PortableUuid>,
        created_at -> PortableTimestamp,
        updated_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    webhook_messages (id) {
        id -> PortableUuid,
        endpoint_id -> PortableUuid,
        kind -> Text,
        event_id -> Nullable<PortableUuid>,
        event_seq -> Nullable<BigInt>,
        event_type -> Text,
        created_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    webhook_attempts (id) {
        id -> PortableUuid,
        message_id -> PortableUuid,
        endpoint_id -> PortableUuid,
        attempted_at -> PortableTimestamp,
        status_code -> Nullable<Integer>,
        duration_ms -> Integer,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(audit_targets -> audit_events (event_id));
diesel::joinable!(memberships -> organizations (organization_id));
diesel::joinable!(role_assignments -> roles (role_id));
diesel::joinable!(role_policies -> roles (role_id));
diesel::joinable!(role_policies -> policies (policy_id));
diesel::joinable!(memberships -> users (user_id));
diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    passkeys (id) {
        id -> PortableUuid,
        user_id -> PortableUuid,
        credential_id -> Text,
        name -> Text,
        credential -> Text,
        authenticator_attachment -> Nullable<Text>,
        transports -> Text,
        aaguid -> Nullable<Text>,
        backup_eligible -> Bool,
        backed_up -> Bool,
        created_at -> PortableTimestamp,
        last_used_at -> Nullable<PortableTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    webauthn_ceremonies (id) {
        id -> PortableUuid,
        kind -> Text,
        user_id -> Nullable<PortableUuid>,
        state -> Text,
        created_at -> PortableTimestamp,
        expires_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    passkey_setup_links (id) {
        id -> PortableUuid,
        user_id -> PortableUuid,
        token_hash -> Binary,
        created_by_user_id -> Nullable<PortableUuid>,
        created_at -> PortableTimestamp,
        expires_at -> PortableTimestamp,
        used_at -> Nullable<PortableTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    gateway_secrets (name) {
        name -> Text,
        secret -> Binary,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::*;

    credential_attempts (limiter, key_hash) {
        limiter -> Text,
        key_hash -> Binary,
        window_started -> PortableTimestamp,
        attempts -> Integer,
        locked_until -> Nullable<PortableTimestamp>,
        expires_at -> PortableTimestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(api_keys -> users (user_id));

diesel::joinable!(invitation_roles -> invitations (invitation_id));
diesel::joinable!(invitation_roles -> roles (role_id));

diesel::joinable!(webhook_messages -> jobs (id));
diesel::joinable!(webhook_messages -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_attempts -> webhook_messages (message_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_inbox,
    audit_events,
    audit_targets,
    audit_chains,
    audit_state,
    users,
    organizations,
    memberships,
    sessions,
    passkeys,
    webauthn_ceremonies,
    passkey_setup_links,
    gateway_secrets,
    refresh_tokens,
    api_keys,
    signing_keys,
    roles,
    policies,
    role_policies,
    role_assignments,
    cedar_schemas,
    authz_state,
    organization_branding,
    invitations,
    invitation_roles,
    invitation_batches,
    jobs,
    webhook_endpoints,
    webhook_messages,
    webhook_attempts,
);
