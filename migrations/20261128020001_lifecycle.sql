-- Lifecycle rules enforced by the database itself, whatever code path writes:
-- the API checks them first and answers 409; these triggers are the backstop.
-- (Ciphertext is deliberately not made immutable here: the AAD already makes a
-- moved or replaced blob fail to open, and the tamper tests rely on writing it.)

-- Secrets: received -> revealed -> ingested -> shredded; received and revealed
-- may also be shredded directly; nothing leaves shredded.
CREATE FUNCTION secrets_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
           (OLD.status = 'received' AND NEW.status IN ('revealed', 'shredded'))
        OR (OLD.status = 'revealed' AND NEW.status IN ('ingested', 'shredded'))
        OR (OLD.status = 'ingested' AND NEW.status = 'shredded')) THEN
        RAISE EXCEPTION 'secret %: % -> % is not a lifecycle transition',
            OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER secrets_lifecycle
    BEFORE UPDATE ON secrets
    FOR EACH ROW EXECUTE FUNCTION secrets_lifecycle();

-- A shredded secret stays as a metadata tombstone; rows are never deleted.
CREATE FUNCTION secrets_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'secrets are shredded, never deleted (secret %)', OLD.id
        USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER secrets_no_delete
    BEFORE DELETE ON secrets
    FOR EACH ROW EXECUTE FUNCTION secrets_no_delete();

-- Drop links: pending -> used | expired | revoked. A revoked link stays
-- revoked, uses only go up, and a revoked or expired link takes no new use.
CREATE FUNCTION drop_requests_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'drop link %: a revoked link stays revoked', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.use_count < OLD.use_count
       OR (OLD.used_at IS NOT NULL AND NEW.used_at IS DISTINCT FROM OLD.used_at) THEN
        RAISE EXCEPTION 'drop link %: uses cannot be undone', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.use_count > OLD.use_count THEN
        IF OLD.revoked_at IS NOT NULL THEN
            RAISE EXCEPTION 'drop link %: a revoked link cannot be used', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        -- The application checks expiry to the second with its own clock; the
        -- minute of slack keeps clock skew between app and database from turning
        -- a last-second submission into an error.
        IF OLD.expires_at + interval '1 minute' <= now() THEN
            RAISE EXCEPTION 'drop link %: an expired link cannot be used', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER drop_requests_lifecycle
    BEFORE UPDATE ON drop_requests
    FOR EACH ROW EXECUTE FUNCTION drop_requests_lifecycle();

-- Retention scans: secrets due for shredding.
CREATE INDEX secrets_ingested_at ON secrets (ingested_at) WHERE status = 'ingested';
CREATE INDEX secrets_unclaimed_since ON secrets (created_at) WHERE status = 'received';
