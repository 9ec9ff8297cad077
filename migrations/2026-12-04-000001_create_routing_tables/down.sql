DROP TABLE outbox;
DROP TABLE permits;
DROP TABLE messages;
DROP TABLE parties;
