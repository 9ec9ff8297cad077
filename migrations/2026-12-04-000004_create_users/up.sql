-- People and machines that use the HTTP API. A user of the Secretariat has no Party; every
-- other user belongs to one. Passwords and client secrets are stored as Argon2id PHC strings.
CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{3,64}$'),
    full_name       text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    party           text REFERENCES parties (code),
    roles           text[] NOT NULL CHECK (cardinality(roles) >= 1),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
    password_hash   text,
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text,
    removed_at      timestamptz,
    removed_by      text,
    removal_reason  text,
    -- Only the Secretariat is without a Party.
    CHECK (party IS NOT NULL OR roles <@ ARRAY['secretariat', 'auditor'])
);

-- Machine credentials of a user: the client acts with its user's Party and roles.
CREATE TABLE api_clients (
    client_id     text PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    secret_hash   text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_clients_user_id ON api_clients (user_id);

-- Append-only record of security events (logins, failed logins, user changes).
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL,
    actor       text,
    actor_party text,
    subject     text,
    client_address text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

