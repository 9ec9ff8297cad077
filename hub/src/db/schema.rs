// Written to match the migrations in `migrations/`; keep both in step.

diesel::table! {
    parties (code) {
        code -> Text,
        name -> Text,
        broker_user -> Text,
        created_at -> Timestamptz,
        requires_applicant_signature -> Bool,
        utc_offset_minutes -> Nullable<Int4>,
    }
}

diesel::table! {
    messages (message_id) {
        message_id -> Uuid,
        tracking_id -> Uuid,
        message_type -> Nullable<Text>,
        broker_user -> Nullable<Text>,
        sender -> Nullable<Text>,
        addressee -> Nullable<Text>,
        issuing_country -> Nullable<Text>,
        document_number -> Nullable<Text>,
        content_type -> Nullable<Text>,
        correlation_id -> Nullable<Uuid>,
        properties -> Jsonb,
        body -> Bytea,
        body_sha256 -> Bytea,
        status -> Text,
        problems -> Jsonb,
        received_at -> Timestamptz,
        acknowledged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    permits (issuing_country, permit_number, version) {
        issuing_country -> Text,
        permit_number -> Text,
        version -> Int4,
        document_type -> Text,
        issue_date -> Nullable<Date>,
        valid_until -> Date,
        importer_country -> Text,
        exporter_country -> Text,
        sender -> Text,
        addressee -> Text,
        message_id -> Uuid,
        stored_at -> Timestamptz,
        signatory_id -> Nullable<Uuid>,
        signatory_name -> Nullable<Text>,
        signed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        message_id -> Uuid,
        source_message_id -> Nullable<Uuid>,
        exchange -> Text,
        routing_key -> Text,
        message_type -> Text,
        correlation_id -> Nullable<Uuid>,
        content_type -> Text,
        headers -> Jsonb,
        body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(permits -> messages (message_id));
diesel::allow_tables_to_appear_in_same_query!(messages, permits, outbox);

diesel::table! {
    register_state (id) {
        id -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    register_broadcast (id) {
        id -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        full_name -> Text,
        party -> Nullable<Text>,
        roles -> Array<Text>,
        status -> Text,
        password_hash -> Nullable<Text>,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        created_by -> Nullable<Text>,
        removed_at -> Nullable<Timestamptz>,
        removed_by -> Nullable<Text>,
        removal_reason -> Nullable<Text>,
        removal_broadcast_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_clients (client_id) {
        client_id -> Text,
        user_id -> Int8,
        secret_hash -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(api_clients -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, api_clients);

diesel::table! {
    signatories (id) {
        id -> Int8,
        signatory_id -> Uuid,
        party -> Text,
        full_name -> Text,
        title -> Nullable<Text>,
        certificate_der -> Bytea,
        thumbprint -> Text,
        certificate_not_after -> Timestamptz,
        empowered_from -> Timestamptz,
        empowered_until -> Nullable<Timestamptz>,
        change_reason -> Nullable<Text>,
        notified_by -> Text,
        notified_at -> Timestamptz,
        late_notification -> Bool,
        status -> Text,
        approved_by -> Nullable<Text>,
        approved_at -> Nullable<Timestamptz>,
        supersedes -> Nullable<Int8>,
        recorded_at -> Timestamptz,
        register_version -> Nullable<Int8>,
    }
}

diesel::table! {
    audit_trail (seq, occurred_at) {
        seq -> Int8,
        occurred_at -> Timestamptz,
        action -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        actor_name -> Nullable<Text>,
        actor_party -> Nullable<Text>,
        actor_roles -> Array<Text>,
        permit_country -> Nullable<Text>,
        permit_number -> Nullable<Text>,
        permit_version -> Nullable<Int4>,
        addressee -> Nullable<Text>,
        message_id -> Nullable<Uuid>,
        amqp -> Nullable<Jsonb>,
        body_sha256 -> Nullable<Bytea>,
        request_id -> Nullable<Text>,
        client_address -> Nullable<Text>,
        details -> Jsonb,
        prev_hash -> Bytea,
        hash -> Bytea,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Bool,
        seq -> Int8,
        hash -> Bytea,
    }
}

diesel::table! {
    audit_purged (seq) {
        seq -> Int8,
        hash -> Bytea,
        purge_seq -> Int8,
    }
}

diesel::table! {
    annual_reports (party, year) {
        party -> Text,
        year -> Int4,
        received_on -> Date,
        recorded_by -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    legal_holds (issuing_country, permit_number) {
        issuing_country -> Text,
        permit_number -> Text,
        reason -> Text,
        placed_by -> Text,
        placed_at -> Timestamptz,
    }
}
