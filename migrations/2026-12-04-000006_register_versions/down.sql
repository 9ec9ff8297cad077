ALTER TABLE signatories DROP COLUMN register_version;
DROP SEQUENCE register_versions;
