-- A webhook URL can be a credential (a Slack incoming-webhook URL is one), so
-- deliveries name their endpoint by a hash, never the URL: new rows by an HMAC
-- under a key derived from the KEK ("h1:…", written by the application); rows
-- written before get the unkeyed SHA-256 of the URL, which the worker still
-- recognises, so pending deliveries carry on.
UPDATE webhook_deliveries
SET endpoint = 'sha256:' || encode(sha256(convert_to(endpoint, 'UTF8')), 'hex')
WHERE endpoint LIKE '%://%';

ALTER TABLE webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_endpoint_is_no_url
    CHECK (endpoint NOT LIKE '%://%' AND endpoint NOT LIKE '%@%');
