-- The Secretariat's register of persons empowered to sign permits. History is kept: a
-- change adds a record that supersedes the previous one and never overwrites it. The
-- current state of a signatory is its latest approved record.
CREATE TABLE signatories (
    id                    bigserial PRIMARY KEY,
    signatory_id          uuid NOT NULL,
    party                 text NOT NULL REFERENCES parties (code),
    full_name             text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    title                 text,
    certificate_der       bytea NOT NULL,
    -- base64url SHA-256 of the certificate's DER, as the JWS header x5t#S256 names it.
    thumbprint            text NOT NULL,
    certificate_not_after timestamptz NOT NULL,
    empowered_from        timestamptz NOT NULL,
    empowered_until       timestamptz,
    change_reason         text,
    notified_by           text NOT NULL,
    notified_at           timestamptz NOT NULL,
    -- Notified more than one month after the change took effect.
    late_notification     boolean NOT NULL,
    status                text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    approved_by           text,
    approved_at           timestamptz,
    supersedes            bigint REFERENCES signatories (id),
    recorded_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (empowered_until IS NULL OR empowered_until >= empowered_from)
);
CREATE INDEX signatories_signatory_id ON signatories (signatory_id, id);
CREATE INDEX signatories_thumbprint ON signatories (thumbprint);
CREATE INDEX signatories_party ON signatories (party);

-- Who signed each stored permit version, for the permit's record.
ALTER TABLE permits
    ADD COLUMN signatory_id uuid,
    ADD COLUMN signatory_name text,
    ADD COLUMN signed_at timestamptz;
