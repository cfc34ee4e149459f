-- Fingerprints that cannot give a short secret away (issue 18).

-- The key behind keyed fingerprints: random, sealed under a KEK like a data key
-- (so a dump alone cannot use it), rewrapped when the KEK rotates (so the same
-- value keeps the same fingerprint). The newest generation is the one in use; a
-- new one is made only when the KEK wrapping the newest is gone from the ring.
CREATE TABLE fingerprint_keys (
    generation     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kek_id         text NOT NULL,
    wrapped        bytea NOT NULL,
    format_version smallint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- 'legacy': written before this change (the last four characters of a value of
-- any length); `keydrop fingerprints refresh` recomputes those rows.
ALTER TABLE secrets
    ADD COLUMN fingerprint_kind text NOT NULL DEFAULT 'legacy'
        CHECK (fingerprint_kind IN ('legacy', 'tail', 'keyed', 'none')),
    ADD COLUMN fingerprint_key integer REFERENCES fingerprint_keys (generation),
    ADD CHECK ((fingerprint_kind = 'keyed') = (fingerprint_key IS NOT NULL));

CREATE INDEX secrets_fingerprint_to_refresh ON secrets (id)
    WHERE fingerprint_kind IN ('legacy', 'keyed');
