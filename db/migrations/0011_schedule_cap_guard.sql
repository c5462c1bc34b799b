-- 0011: one row that every schedule-run adding an enabled schedule
-- updates once its counts passed the caps (CAVRA_SCHEDULES_MAX,
-- CAVRA_SCHEDULES_PER_ACTOR_MAX). Under REPEATABLE READ two such calls
-- would each count the store without the other's new schedule; updating
-- the same row makes the later one a serialization failure, which the RPC
-- layer retries in a fresh snapshot that counts the first. It holds a
-- counter only; nothing reads it for anything else.
CREATE TABLE report_schedule_guard (
    id      integer PRIMARY KEY CHECK (id = 1),
    changes bigint  NOT NULL
);
INSERT INTO report_schedule_guard (id, changes) VALUES (1, 0);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cavra_app') THEN
        GRANT SELECT, UPDATE ON report_schedule_guard TO cavra_app;
    END IF;
END;
$$;
