-- An outbox row's age must count from when it was written, not from the start of its
-- transaction, or a slow batch would look old enough for the sweeper at once.
ALTER TABLE outbox ALTER COLUMN created_at SET DEFAULT clock_timestamp();
