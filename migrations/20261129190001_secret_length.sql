-- How many characters of the main secret field were received, so the receipt
-- can name it ("4,204 characters") and the admin can compare it with what they
-- pasted. NULL for secrets stored before this column existed.
ALTER TABLE secrets ADD COLUMN secret_length integer CHECK (secret_length >= 0);
