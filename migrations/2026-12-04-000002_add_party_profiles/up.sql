-- How each Party's permits are checked: whether its form keeps the applicant's signature
-- (Box 4), and its UTC offset in minutes, which ends a date-only validity period.
ALTER TABLE parties
    ADD COLUMN requires_applicant_signature boolean NOT NULL DEFAULT false,
    ADD COLUMN utc_offset_minutes integer CHECK (utc_offset_minutes BETWEEN -720 AND 840);
