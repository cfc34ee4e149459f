-- Keydrop's schema: drop links, encrypted secrets, staff tokens, audit trail.

CREATE TABLE staff_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    scopes       text[] NOT NULL CHECK (
                     cardinality(scopes) > 0
                     AND scopes <@ ARRAY['read', 'request', 'reveal', 'admin']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
-- A name identifies one live token (`keydrop token revoke NAME`).
CREATE UNIQUE INDEX staff_tokens_live_name ON staff_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE drop_requests (
    id              uuid PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    organization    text NOT NULL CHECK (length(organization) BETWEEN 1 AND 200),
    provider        text NOT NULL,
    contact_email   text,
    note            text,
    created_by      uuid REFERENCES staff_tokens (id),
    created_by_name text NOT NULL,
    max_uses        integer NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
    use_count       integer NOT NULL DEFAULT 0 CHECK (use_count BETWEEN 0 AND max_uses),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz,
    CHECK (expires_at > created_at),
    CHECK ((used_at IS NOT NULL) = (use_count > 0))
);
CREATE INDEX drop_requests_created_at ON drop_requests (created_at DESC);

CREATE TABLE secrets (
    id              uuid PRIMARY KEY,
    request_id      uuid NOT NULL REFERENCES drop_requests (id),
    organization    text NOT NULL,
    provider        text NOT NULL,
    submitter_name  text NOT NULL,
    submitter_email text NOT NULL,
    fingerprint     text NOT NULL,
    payload         bytea,
    wrapped_dek     bytea,
    kek_id          text,
    format_version  smallint NOT NULL,
    check_result    jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'revealed', 'ingested', 'shredded')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revealed_at     timestamptz,
    ingested_at     timestamptz,
    shredded_at     timestamptz,
    -- Ciphertext exists exactly until the secret is shredded.
    CHECK ((status = 'shredded') = (payload IS NULL)),
    CHECK ((payload IS NULL) = (wrapped_dek IS NULL)),
    CHECK ((payload IS NULL) OR (kek_id IS NOT NULL)),
    CHECK ((status = 'shredded') = (shredded_at IS NOT NULL)),
    CHECK (status NOT IN ('ingested') OR ingested_at IS NOT NULL)
);
CREATE INDEX secrets_request_id ON secrets (request_id);
CREATE INDEX secrets_created_at ON secrets (created_at DESC);
CREATE INDEX secrets_kek_id ON secrets (kek_id) WHERE payload IS NOT NULL;

-- One sealed canary per KEK id: proves a configured key is the one the
-- database was written with.
CREATE TABLE kek_canaries (
    kek_id     text PRIMARY KEY,
    canary     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only record of security-relevant actions. Never holds secret material.
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('staff', 'public', 'cli', 'system')),
    actor_id    uuid,
    actor_name  text,
    client_ip   text,
    action      text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    secret_id   uuid,
    request_id  uuid,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_secret_id ON audit_events (secret_id) WHERE secret_id IS NOT NULL;
CREATE INDEX audit_events_request_id ON audit_events (request_id) WHERE request_id IS NOT NULL;

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
