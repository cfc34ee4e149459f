-- Staff console (issue 13): single sign-on logins in flight, and sessions.

-- A person signed in through the company's identity provider acts as `oidc`.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('staff', 'public', 'cli', 'system', 'oidc'));

-- One row per login started and not yet finished: the `state` sent to the
-- identity provider (hashed), the browser that started it (hash of a cookie),
-- and what the callback must check. Taken (deleted) by the callback, so a
-- state works once.
CREATE TABLE console_logins (
    state_hash    bytea PRIMARY KEY,
    browser_hash  bytea NOT NULL,
    nonce         text NOT NULL,
    pkce_verifier text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- A signed-in person. The cookie holds a random id; only its hash is here.
CREATE TABLE console_sessions (
    id           uuid PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    issuer       text NOT NULL,
    subject      text NOT NULL,
    email        text,
    display_name text,
    scopes       text[] NOT NULL,
    client_ip    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    ended_by     text
);
CREATE INDEX console_sessions_live ON console_sessions (last_seen_at) WHERE ended_at IS NULL;
