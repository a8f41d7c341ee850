-- Postgres only (a function that reads a sign-in's account and second factors in one
-- statement); SQLite reads them in process. Kept so both databases number their
-- migrations alike.
SELECT 1;
