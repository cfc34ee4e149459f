-- Outgoing webhooks: a durable outbox written in the same transaction as the
-- event it announces, fanned out to one delivery per configured endpoint.

CREATE TABLE webhook_messages (
    id            uuid PRIMARY KEY,
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Set once deliveries were created for the endpoints configured then.
    dispatched_at timestamptz
);
CREATE INDEX webhook_messages_undispatched ON webhook_messages (created_at) WHERE dispatched_at IS NULL;

CREATE TABLE webhook_deliveries (
    message_id      uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    endpoint        text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    PRIMARY KEY (message_id, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Links whose expiry was already announced (link.expired), so each is announced once.
CREATE TABLE link_expiry_notices (
    request_id  uuid PRIMARY KEY REFERENCES drop_requests (id) ON DELETE CASCADE,
    notified_at timestamptz NOT NULL DEFAULT now()
);
