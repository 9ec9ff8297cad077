ALTER TABLE permits DROP COLUMN signed_at, DROP COLUMN signatory_name, DROP COLUMN signatory_id;
DROP TABLE signatories;
