-- Parties known to the hub, each with the broker user its spoke logs in as.
CREATE TABLE parties (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{2}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    broker_user text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every message the hub consumed, keyed on the sender's message_id so that a redelivered
-- message changes nothing. The body is stored exactly as received.
CREATE TABLE messages (
    message_id      uuid PRIMARY KEY,
    tracking_id     uuid NOT NULL UNIQUE,
    message_type    text,
    broker_user     text,
    sender          text,
    addressee       text,
    issuing_country text,
    document_number text,
    content_type    text,
    correlation_id  uuid,
    -- AMQP properties and headers as received, for the record.
    properties      jsonb NOT NULL,
    body            bytea NOT NULL,
    body_sha256     bytea NOT NULL,
    status          text NOT NULL CHECK (status IN
        ('accepted', 'rejected', 'delivered', 'delivered_with_warnings', 'failed', 'recorded')),
    problems        jsonb NOT NULL DEFAULT '[]',
    received_at     timestamptz NOT NULL,
    acknowledged_at timestamptz
);
CREATE INDEX messages_correlation_id ON messages (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX messages_document ON messages (issuing_country, document_number);

-- Permits keyed on (issuing country, number, version): numbers are unique only per issuer.
CREATE TABLE permits (
    issuing_country  text NOT NULL,
    permit_number    text NOT NULL,
    version          integer NOT NULL CHECK (version >= 1),
    document_type    text NOT NULL,
    issue_date       date,
    valid_until      date NOT NULL,
    importer_country text NOT NULL,
    exporter_country text NOT NULL,
    sender           text NOT NULL,
    addressee        text NOT NULL,
    message_id       uuid NOT NULL UNIQUE REFERENCES messages (message_id),
    stored_at        timestamptz NOT NULL,
    PRIMARY KEY (issuing_country, permit_number, version)
);

-- Messages the hub must publish: deliveries and receipts. A row is written in the same
-- transaction as the message it answers, then published with confirms and marked sent.
-- A delivery's body is not copied: it is read from messages through source_message_id.
CREATE TABLE outbox (
    id                bigserial PRIMARY KEY,
    message_id        uuid NOT NULL UNIQUE,
    source_message_id uuid REFERENCES messages (message_id),
    exchange          text NOT NULL,
    routing_key       text NOT NULL,
    message_type      text NOT NULL,
    correlation_id    uuid,
    content_type      text NOT NULL,
    headers           jsonb NOT NULL,
    body              bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    failed_at         timestamptz,
    error             text,
    CHECK (body IS NOT NULL OR source_message_id IS NOT NULL)
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_correlation_id ON outbox (correlation_id);
