-- Idempotent submissions and receipts bound to the submitting browser (issue 17).
--
-- submission_id: the one-time id the drop form carried. The unique key decides
-- a repeat (double-click, refresh, client retry) in the database, also when
-- two arrive at the same moment: the second insert conflicts and the repeat
-- answers the first one's receipt.
-- browser_hash: SHA-256 of the submitting browser's form cookie (a random
-- 256-bit nonce), so that browser alone can reload its receipt.
ALTER TABLE secrets
    ADD COLUMN submission_id text,
    ADD COLUMN browser_hash bytea;

CREATE UNIQUE INDEX secrets_one_per_submission ON secrets (request_id, submission_id)
    WHERE submission_id IS NOT NULL;
CREATE INDEX secrets_by_browser ON secrets (request_id, browser_hash)
    WHERE browser_hash IS NOT NULL;
