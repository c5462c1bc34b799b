-- 0007: make the reporting aggregates read narrow rows.
--
-- 1. Each route carries its plan's generation time and SLO, and says
--    whether it is the first route of its (plan, provider) pair, so the
--    open-escalation aggregates never join the wide plan rows nor sort
--    for DISTINCT pairs. A trigger fills them, so writers need not know.
-- 2. Stored JSON lives out of line (toast_tuple_target): counts and
--    scans read rows of ~100 bytes instead of ~1.5 KB.
-- 3. report_run_plans goes: the trace now works out which runs counted a
--    plan from the plan's own history, instead of every run copying every
--    open plan id (about 100,000 rows per run at 100,000 plans).

ALTER TABLE plan_routes
    ADD COLUMN plan_generated_at timestamptz,
    ADD COLUMN plan_slo_minutes integer,
    ADD COLUMN first_of_pair boolean;

UPDATE plan_routes r
   SET plan_generated_at = p.generated_at,
       plan_slo_minutes = p.recovery_slo_minutes,
       first_of_pair = r.position = (SELECT min(x.position) FROM plan_routes x
                                      WHERE x.plan_id = r.plan_id
                                        AND x.provider = r.provider)
  FROM escalation_plans p
 WHERE p.plan_id = r.plan_id;

ALTER TABLE plan_routes
    ALTER COLUMN plan_generated_at SET NOT NULL,
    ALTER COLUMN plan_slo_minutes SET NOT NULL,
    ALTER COLUMN first_of_pair SET NOT NULL;

-- Routes of a plan are inserted in position order inside the plan's
-- transaction, so the earlier routes of the pair are already visible.
CREATE FUNCTION plan_routes_fill() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT p.generated_at, p.recovery_slo_minutes
      INTO NEW.plan_generated_at, NEW.plan_slo_minutes
      FROM escalation_plans p WHERE p.plan_id = NEW.plan_id;
    NEW.first_of_pair := NOT EXISTS (
        SELECT 1 FROM plan_routes x
         WHERE x.plan_id = NEW.plan_id AND x.provider = NEW.provider
           AND x.position < NEW.position);
    RETURN NEW;
END;
$$;
CREATE TRIGGER plan_routes_fill BEFORE INSERT ON plan_routes
    FOR EACH ROW EXECUTE FUNCTION plan_routes_fill();
CREATE INDEX plan_routes_pair ON plan_routes (plan_id, provider, position);

ALTER TABLE escalation_plans SET (toast_tuple_target = 128);
ALTER TABLE acknowledgements SET (toast_tuple_target = 128);
ALTER TABLE delivery_attempts SET (toast_tuple_target = 128);
ALTER TABLE retry_plans SET (toast_tuple_target = 128);
ALTER TABLE report_runs SET (toast_tuple_target = 128);
ALTER TABLE executive_reports SET (toast_tuple_target = 128);
ALTER TABLE evidence_events SET (toast_tuple_target = 128);

DROP TABLE report_run_plans;

-- The trace looks up runs by time.
CREATE INDEX report_runs_window ON report_runs (window_start, window_end);
