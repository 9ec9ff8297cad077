DROP FUNCTION audit_retention_start(text, text);
DROP TABLE legal_holds;
DROP TABLE annual_reports;
DROP FUNCTION audit_ensure_partitions(timestamptz);
DROP TABLE audit_trail;
DROP FUNCTION audit_protect_partition(regclass);
DROP TABLE audit_purged;
DROP TABLE audit_head;
DROP FUNCTION audit_head_forward_only();
DROP FUNCTION audit_refuse_change();
ALTER TABLE audit_legacy_events RENAME TO audit_events;
-- The roles are cluster-wide and other databases may use them, so they stay.
