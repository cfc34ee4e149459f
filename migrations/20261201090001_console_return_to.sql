-- Where a person was going when the console sent them to sign in (a path of
-- the console, checked when stored and again when used), so a link to a
-- secret in a staff email opens that secret after the sign-in, not the list.
ALTER TABLE console_logins ADD COLUMN return_to text
    CHECK (return_to IS NULL OR (length(return_to) <= 1024 AND left(return_to, 1) = '/'));
