-- 0009: the services act as role cavra_app (CAVRA_DB_ROLE), which may read
-- and append but never rewrite evidence: no UPDATE of records, no DELETE,
-- no TRUNCATE, no ALTER (so it cannot disable the append-only trigger
-- either). The sequencer may set the chain columns, once (the trigger).
--
-- The role must exist before migrating (scripts/pg.sh creates it; on
-- another server: CREATE ROLE cavra_app NOLOGIN; GRANT cavra_app TO
-- <the services' login role>). Without it this migration grants nothing
-- and the services act as their login role. Tables added by later
-- migrations get SELECT and INSERT by default; any UPDATE they need is
-- granted there.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cavra_app') THEN
        GRANT USAGE ON SCHEMA public TO cavra_app;
        GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO cavra_app;
        REVOKE INSERT ON schema_migrations FROM cavra_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO cavra_app;
        -- Upserts of current state, schedules and idempotency keys.
        GRANT UPDATE ON ack_current, report_schedules, idempotency_keys
            TO cavra_app;
        GRANT DELETE ON idempotency_keys TO cavra_app;
        -- The evidence sequencer: only the chain columns.
        GRANT UPDATE (chain_seq, prev_hash, hash) ON evidence_events
            TO cavra_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT ON TABLES TO cavra_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT ON SEQUENCES TO cavra_app;
    END IF;
END;
$$;
