-- Expiry grace (issue 17): a form served before its link expired may still be
-- sent for KEYDROP_LINK_GRACE after. The application decides (the form's
-- signed serving time); the backstop below allows the use only in a
-- transaction that declared the grace with SET LOCAL keydrop.link_grace.
CREATE OR REPLACE FUNCTION drop_requests_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
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
        -- keydrop.link_grace: set (SET LOCAL) by a submission whose form was
        -- served before the link expired, to KEYDROP_LINK_GRACE.
        IF OLD.expires_at + interval '1 minute'
           + coalesce(nullif(current_setting('keydrop.link_grace', true), '')::interval, interval '0')
           <= now() THEN
            RAISE EXCEPTION 'drop link %: an expired link cannot be used', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
