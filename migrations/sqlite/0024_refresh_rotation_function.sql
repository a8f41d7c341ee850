-- Postgres only (a function that rotates a refresh token in one statement); SQLite
-- rotates in one transaction on its single writer. Kept so both databases number their
-- migrations alike.
SELECT 1;
