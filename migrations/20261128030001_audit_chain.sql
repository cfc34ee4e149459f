-- Tamper evidence for the audit trail: a hash chain kept beside audit_events.
--
-- Every event records the id of the transaction that wrote it. A background
-- sealer chains events in (txid, id) order, and only those whose transaction
-- is older than every transaction still running (pg_snapshot_xmin), so no
-- event can later appear before one already sealed. See src/chain/mod.rs.

ALTER TABLE audit_events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_events_chain_order ON audit_events (txid, id);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

-- One row per sealed event, in chain order. seq is contiguous from 1.
-- No foreign key to audit_events on purpose: a deleted event must leave its
-- seal behind so `keydrop audit verify` can name it.
CREATE TABLE audit_seals (
    seq       bigint PRIMARY KEY CHECK (seq >= 1),
    event_id  bigint NOT NULL UNIQUE,
    -- The event's txid, so sealing resumes after the head without reading it.
    txid      xid8 NOT NULL,
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash      bytea NOT NULL CHECK (length(hash) = 32),
    sealed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_seals_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

-- TRUNCATE skips row triggers; refuse it with a statement trigger.
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_seals_no_truncate
    BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- A separate, least-privileged role for the server (see README, "Database
-- roles"). Where it exists, it may read and append to the audit trail but never
-- rewrite it. The owner (who runs migrations) keeps full rights.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keydrop_app') THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_seals FROM keydrop_app;
        GRANT SELECT, INSERT ON audit_events, audit_seals TO keydrop_app;
        GRANT USAGE ON SEQUENCE audit_events_id_seq TO keydrop_app;
    END IF;
END;
$$;
