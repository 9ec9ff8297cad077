-- Register versions come from one counter row instead of a sequence: a sequence leaves a
-- gap when a transaction rolls back and can commit versions out of order, and a spoke
-- refuses a copy of the register with a gap. Taking the next version locks the row until
-- commit, so versions commit one after the other, without gaps.
CREATE TABLE register_state (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL
);
INSERT INTO register_state (version)
    SELECT coalesce(max(register_version), 0) FROM signatories;

-- How far the register changes have been broadcast to every inbox. A row of its own, so
-- the broadcaster never holds up a register change.
CREATE TABLE register_broadcast (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL
);
INSERT INTO register_broadcast (version) SELECT version FROM register_state;

-- When a removed user's revocation was broadcast; NULL until then.
ALTER TABLE users ADD COLUMN removal_broadcast_at timestamptz;
UPDATE users SET removal_broadcast_at = removed_at WHERE status = 'removed';
CREATE INDEX users_removal_unbroadcast ON users (id)
    WHERE status = 'removed' AND removal_broadcast_at IS NULL;
