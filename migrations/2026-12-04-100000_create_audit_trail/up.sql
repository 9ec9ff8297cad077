-- The tamper-evident audit trail. docs/audit.md describes the columns, the hash chain, the
-- roles and the retention rules.

-- Roles are cluster-wide: several databases of one cluster (test databases, staging) run
-- this migration, possibly at the same time, so creating a role that exists is not an error.
DO $$
BEGIN
    CREATE ROLE epix_hub_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
    CREATE ROLE epix_audit_retention NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

CREATE TABLE audit_trail (
    seq             bigint NOT NULL,
    occurred_at     timestamptz NOT NULL,
    action          text NOT NULL,
    actor_kind      text NOT NULL CHECK (actor_kind IN ('user', 'spoke', 'hub', 'system')),
    actor_id        text,
    actor_name      text,
    actor_party     text,
    actor_roles     text[] NOT NULL DEFAULT '{}',
    permit_country  text,
    permit_number   text,
    permit_version  integer,
    addressee       text,
    message_id      uuid,
    amqp            jsonb,
    body_sha256     bytea,
    request_id      text,
    client_address  text,
    details         jsonb NOT NULL DEFAULT '{}',
    prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (seq, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Rows whose month has no partition land here, so an insert never fails for want of one.
CREATE TABLE audit_trail_default PARTITION OF audit_trail DEFAULT;

CREATE INDEX audit_trail_permit ON audit_trail (permit_country, permit_number, seq);
CREATE INDEX audit_trail_actor_party ON audit_trail (actor_party, occurred_at);
CREATE INDEX audit_trail_permit_country ON audit_trail (permit_country, occurred_at);
CREATE INDEX audit_trail_addressee ON audit_trail (addressee, occurred_at);
CREATE INDEX audit_trail_actor ON audit_trail (actor_id, occurred_at);
CREATE INDEX audit_trail_message_id ON audit_trail (message_id);

-- The end of the chain: writers lock this row, number their events after `seq` and chain
-- them from `hash`, so the lock is held only while a transaction appends.
CREATE TABLE audit_head (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq   bigint NOT NULL,
    hash  bytea NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

-- The sequence number and hash of every event the retention job deleted, so the chain
-- still verifies across the gap.
CREATE TABLE audit_purged (
    seq        bigint PRIMARY KEY,
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    purge_seq  bigint NOT NULL
);

-- Refuses UPDATE and DELETE of audit rows to every role but the retention role, the
-- tables' owner and superusers included; TRUNCATE is refused to all.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'epix_audit_retention' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit rows are append-only: % on % is refused to role %',
        TG_OP, TG_TABLE_NAME, current_user
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_purged_append_only BEFORE UPDATE OR DELETE ON audit_purged
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_purged_no_truncate BEFORE TRUNCATE ON audit_purged
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Creates the monthly partitions of the month of `around` and the next, unless they exist.
-- SECURITY DEFINER, so the application role may call it without owning the table. A month
-- whose rows already sit in the default partition is skipped (with a notice), because
-- moving them would need a DELETE that the trigger refuses.
CREATE FUNCTION audit_ensure_partitions(around timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first_day timestamp;
    lower_bound timestamptz;
    upper_bound timestamptz;
    partition_name text;
    created integer := 0;
BEGIN
    FOR month_offset IN 0..1 LOOP
        first_day := date_trunc('month', around AT TIME ZONE 'UTC') + make_interval(months => month_offset);
        lower_bound := first_day AT TIME ZONE 'UTC';
        upper_bound := (first_day + interval '1 month') AT TIME ZONE 'UTC';
        partition_name := 'audit_trail_' || to_char(first_day, 'YYYYMM');
        CONTINUE WHEN to_regclass(partition_name) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM audit_trail_default
                   WHERE occurred_at >= lower_bound AND occurred_at < upper_bound) THEN
            RAISE NOTICE 'audit partition % not created: the default partition holds rows of that month', partition_name;
            CONTINUE;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_trail FOR VALUES FROM (%L) TO (%L)',
                       partition_name, lower_bound, upper_bound);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
SELECT audit_ensure_partitions(now());

-- Annual-report dates: the retention of a permit runs five years past the date its
-- exporting Party's annual report for the year of issue reached the Secretariat.
CREATE TABLE annual_reports (
    party        text NOT NULL REFERENCES parties (code),
    year         integer NOT NULL CHECK (year BETWEEN 1975 AND 9999),
    received_on  date NOT NULL,
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (party, year)
);

-- Permits on legal hold: their events are never purged while the hold lasts.
CREATE TABLE legal_holds (
    issuing_country  text NOT NULL,
    permit_number    text NOT NULL,
    reason           text NOT NULL,
    placed_by        text NOT NULL,
    placed_at        timestamptz NOT NULL,
    PRIMARY KEY (issuing_country, permit_number)
);

-- The earlier security-event table is kept under a new name until the hub moves its rows
-- into the trail at start (hub/src/audit), because the chain's hashes are computed there.
ALTER TABLE audit_events RENAME TO audit_legacy_events;

-- The application role may read and append the trail but never change it; it gets the
-- ordinary rights on every other table.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO epix_hub_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO epix_hub_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail, audit_purged FROM epix_hub_app;
GRANT EXECUTE ON FUNCTION audit_ensure_partitions(timestamptz) TO epix_hub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO epix_hub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO epix_hub_app;

-- The retention job reads what decides retention and deletes expired events.
GRANT SELECT ON permits, annual_reports, legal_holds, audit_head TO epix_audit_retention;
GRANT SELECT, DELETE ON audit_trail TO epix_audit_retention;
GRANT SELECT, INSERT ON audit_purged TO epix_audit_retention;
