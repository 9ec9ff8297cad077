-- Each change that reaches the register (an approved record) takes the next register
-- version, so that spokes can ask for the changes since the version they hold.
CREATE SEQUENCE register_versions;
ALTER TABLE signatories ADD COLUMN register_version bigint UNIQUE;
UPDATE signatories SET register_version = nextval('register_versions') WHERE status = 'approved';
