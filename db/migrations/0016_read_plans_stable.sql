-- 0016: the dashboard's outstanding list and past-SLO count, and the
-- schedule-run report's per-provider past-SLO count, keep their cost when
-- the projections' statistics are stale (issue 12).
--
-- Found at 1,000,000 events (make bench): the first dashboards after the
-- bulk seed took 470-960 ms (p99 559 ms over 20 calls), in
-- report_outstanding. Reproduced (the same seed into a store whose
-- projections autovacuum had last analysed at 2,500 pairs, 43% of them
-- not yet past their SLO; the seed added 416,000 pairs, nearly all past
-- it): dashboard median 816 ms, schedule-run 371 ms. auto_explain showed
--  - read_outstanding's "first 50 pairs not past their SLO, by severity
--    and start" walking the (sev, started, ...) index and fetching every
--    pair to test its deadline (Rows Removed by Filter: 316,792; 0.4-3.3
--    s), expecting a match every few rows where 64 pairs matched;
--  - read_unbreached_count and read_unbreached_since scanning all 547,000
--    rows of read_open_routes for the 1,086 that match (0.1-1 s), though
--    the planner itself expected about 1,000.
-- Both lasted until autovacuum analysed the two tables (in make bench it
-- was busy with evidence_events for minutes).
--
--  - read_outstanding reads the pairs past their SLO first and the others
--    only when fewer than max_rows were: those sort after every past-SLO
--    pair, so once the list is full they cannot appear in it. A large
--    store (most unacknowledged pairs long past their SLO) then runs one
--    index walk that stops after max_rows matches. When the second part
--    runs, its plan still comes from the statistics.
--  - read_unbreached_count, read_unbreached_since and read_outstanding run
--    with enable_seqscan off: a range over deadline or started then reads
--    its index over the rows that match, so its cost follows their number,
--    not the planner's estimate of it (a whole-table range costs at most
--    an index scan instead of a sequential one).
--  - read_open_routes and read_unacked_pairs get analysed and vacuumed
--    after 2% / 5% of their rows changed (the defaults, 10% / 20%, let
--    tens of thousands of pairs change before the statistics follow).
-- Same results as 0014's functions: tests/integration/dashboard_mix
-- compares the list row by row with SQL over the tables (runs with fewer
-- than 50 past-SLO pairs read both parts, larger ones the first only).
-- Measured side by side on that stale store, old -> new functions:
-- dashboard median 913 -> 3.6 ms, p99 1,162 -> 13 ms; schedule-run
-- median 265 -> 25 ms.

-- Same bodies as 0014; only the setting changes.
ALTER FUNCTION read_unbreached_count(timestamptz) SET enable_seqscan = off;
ALTER FUNCTION read_unbreached_since(timestamptz) SET enable_seqscan = off;

CREATE OR REPLACE FUNCTION read_outstanding(now_at timestamptz,
                                            max_rows integer)
RETURNS TABLE (plan_id text, provider text, sev smallint,
               started timestamptz, breached boolean, slo integer)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off AS $$
DECLARE
    got bigint;
BEGIN
    RETURN QUERY
    SELECT p.plan_id, p.provider, p.sev, p.started, true, p.slo
      FROM read_unacked_pairs p WHERE p.deadline < now_at
     ORDER BY p.sev, p.started, p.plan_id, p.provider
     LIMIT max_rows;
    GET DIAGNOSTICS got = ROW_COUNT;
    IF got < max_rows THEN
        RETURN QUERY
        SELECT p.plan_id, p.provider, p.sev, p.started, false, p.slo
          FROM read_unacked_pairs p WHERE p.deadline >= now_at
         ORDER BY p.sev, p.started, p.plan_id, p.provider
         LIMIT max_rows - got;
    END IF;
END;
$$;

ALTER TABLE read_open_routes SET (autovacuum_analyze_scale_factor = 0.02,
                                  autovacuum_vacuum_scale_factor = 0.05);
ALTER TABLE read_unacked_pairs SET (autovacuum_analyze_scale_factor = 0.02,
                                    autovacuum_vacuum_scale_factor = 0.05);
