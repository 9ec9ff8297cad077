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
    seq             bigint NOT NULL CHECK (seq > 0),
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
-- It is protected like the monthly partitions once the grants below exist.
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
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    -- The `retention.purged` event that deleted the event; it always comes later.
    purge_seq  bigint NOT NULL CHECK (purge_seq > seq)
);

-- Rejects UPDATE and DELETE of audit rows for every role but the retention role, the
-- tables' owner and superusers included, and TRUNCATE for every role. The owner can still
-- disable or drop the trigger, and a superuser can bypass it with session_replication_role.
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
-- Row triggers of the partitioned table are cloned to every partition. A statement trigger
-- is not, and TRUNCATE of one partition does not fire the parent's, so each partition gets
-- its own TRUNCATE trigger from audit_protect_partition.
CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_purged_append_only BEFORE UPDATE OR DELETE ON audit_purged
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_purged_no_truncate BEFORE TRUNCATE ON audit_purged
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- The head only moves forward: an UPDATE must raise its seq, and DELETE and TRUNCATE are
-- refused to every role.
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.seq > OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit head only moves forward: % on audit_head is refused to role %',
        TG_OP, current_user
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only();

-- Takes UPDATE, DELETE and TRUNCATE on one partition away from the application role, which
-- gets them through the default privileges below, and refuses TRUNCATE of the partition.
CREATE FUNCTION audit_protect_partition(partition regclass) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM epix_hub_app', partition);
    EXECUTE format('CREATE TRIGGER audit_partition_no_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', partition);
END
$$;
REVOKE EXECUTE ON FUNCTION audit_protect_partition(regclass) FROM PUBLIC;

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
        PERFORM audit_protect_partition(partition_name::regclass);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

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

-- The date a permit's retention period starts from: the later of its last valid-until date
-- (over all versions) and the latest date the Secretariat received an annual report of its
-- exporting or importing Party for a year from the year of issue through the year of that
-- valid-until date. NULL when the permit is not stored or any of those reports has no
-- recorded date, so the permit's events are kept.
CREATE FUNCTION audit_retention_start(country text, number text) RETURNS date
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    WITH versions AS (
        SELECT issue_date, stored_at, valid_until, exporter_country, importer_country
        FROM permits
        WHERE issuing_country = country AND permit_number = number
    ),
    span AS (
        SELECT min(extract(year FROM coalesce(issue_date, (stored_at AT TIME ZONE 'UTC')::date)))::int AS first_year,
               max(extract(year FROM valid_until))::int AS last_year,
               max(valid_until) AS valid_until
        FROM versions
    ),
    reporters AS (
        SELECT exporter_country AS party FROM versions
        UNION
        SELECT importer_country FROM versions
    ),
    required AS (
        SELECT reporters.party, years.year
        FROM reporters, span, generate_series(span.first_year, span.last_year) AS years(year)
    ),
    reports AS (
        SELECT bool_and(a.received_on IS NOT NULL) AS complete, max(a.received_on) AS latest
        FROM required r
        LEFT JOIN annual_reports a ON a.party = r.party AND a.year = r.year
    )
    SELECT greatest(span.valid_until, reports.latest)
    FROM span, reports
    WHERE reports.complete
$$;

-- The earlier security-event table is kept under a new name until the hub moves its rows
-- into the trail at start (hub/src/audit), because the chain's hashes are computed there.
ALTER TABLE audit_events RENAME TO audit_legacy_events;

-- The application role may read and append the trail but never change it. It moves the
-- head by UPDATE and reads the stubs, and it gets the ordinary rights on every other table.
-- Grants and revokes change only this database's catalog, so databases of one cluster can
-- run them at the same time.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO epix_hub_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO epix_hub_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail FROM epix_hub_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_purged FROM epix_hub_app;
REVOKE INSERT, DELETE, TRUNCATE ON audit_head FROM epix_hub_app;
GRANT EXECUTE ON FUNCTION audit_ensure_partitions(timestamptz) TO epix_hub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO epix_hub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO epix_hub_app;

-- Partitions are tables of their own: the grants above reached them, and a statement on a
-- partition checks the partition's rights, not the parent's.
SELECT audit_protect_partition('audit_trail_default');
SELECT audit_ensure_partitions(now());

-- The retention job reads what decides retention, deletes expired events, inserts their
-- stubs and appends its own `retention.purged` event.
GRANT SELECT ON permits, annual_reports, legal_holds TO epix_audit_retention;
GRANT SELECT, INSERT, DELETE ON audit_trail TO epix_audit_retention;
GRANT SELECT, INSERT ON audit_purged TO epix_audit_retention;
GRANT SELECT, UPDATE ON audit_head TO epix_audit_retention;
