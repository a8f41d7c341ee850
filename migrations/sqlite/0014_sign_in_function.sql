-- Postgres only (a function that records a sign-in in one statement); SQLite records
-- it in one transaction on its single writer. Kept so both databases number their
-- migrations alike.
SELECT 1;
