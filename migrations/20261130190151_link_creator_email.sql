-- The creator of a drop link, when a person signed in to the console whose
-- identity provider gave an email (issue 15): they are told by email of
-- submissions and failed live checks on their links, beside
-- KEYDROP_NOTIFY_EMAIL. NULL for links made with a staff token or the CLI.
ALTER TABLE drop_requests ADD COLUMN created_by_email text
    CHECK (created_by_email IS NULL OR created_by_email !~ '[\r\n]');
