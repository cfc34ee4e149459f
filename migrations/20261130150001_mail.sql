-- Email (issue 15): a durable outbox written in the action's own transaction,
-- delivered by a worker in every `keydrop serve` process (SKIP LOCKED claims
-- with a lease, retries with backoff for three days).
--
-- A drop link's token is never stored in clear: the email is built when it is
-- sent, from the token sealed with the envelope code (AAD bound to the link's
-- id), kept only while the link can still be used.
CREATE TABLE mail_link_tokens (
    request_id     uuid PRIMARY KEY REFERENCES drop_requests (id) ON DELETE CASCADE,
    format_version smallint NOT NULL,
    kek_id         text NOT NULL,
    sealed_token   bytea NOT NULL,
    wrapped_dek    bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mail_messages (
    id              uuid PRIMARY KEY,
    -- link: the drop link to the customer; reminder: the same before expiry;
    -- submission / check_failed: short notes to staff (never credential
    -- material, never the drop link).
    kind            text NOT NULL CHECK (kind IN ('link', 'reminder', 'submission', 'check_failed')),
    request_id      uuid REFERENCES drop_requests (id) ON DELETE CASCADE,
    secret_id       uuid,
    -- The customer's address; NULL for staff notes, addressed when sent to
    -- KEYDROP_NOTIFY_EMAIL as configured then.
    recipient       text CHECK (recipient IS NULL OR (recipient NOT LIKE '%' || chr(10) || '%' AND recipient NOT LIKE '%' || chr(13) || '%')),
    -- Metadata for staff notes (organization, provider, check status, missing permissions).
    detail          jsonb NOT NULL DEFAULT '{}',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_error      text,
    sent_at         timestamptz,
    gave_up_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_messages_due ON mail_messages (next_attempt_at)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX mail_messages_request ON mail_messages (request_id, created_at);
-- One reminder per link, whatever the number of replicas scheduling it.
CREATE UNIQUE INDEX mail_messages_one_reminder ON mail_messages (request_id) WHERE kind = 'reminder';
