DROP INDEX users_removal_unbroadcast;
ALTER TABLE users DROP COLUMN removal_broadcast_at;
DROP TABLE register_broadcast;
DROP TABLE register_state;
