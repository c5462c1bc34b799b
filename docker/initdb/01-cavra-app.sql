-- Runs once when the postgres container creates its data directory: the
-- role the services act as (CAVRA_DB_ROLE), which migration 0009 grants
-- append-only access to evidence and records.
CREATE ROLE cavra_app NOLOGIN;
GRANT cavra_app TO cavra;
