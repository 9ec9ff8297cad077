ALTER TABLE parties DROP COLUMN utc_offset_minutes, DROP COLUMN requires_applicant_signature;
