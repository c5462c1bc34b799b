-- 0018: each read projection (0014) is defined once.
--
-- 0014 wrote what a row adds to the projections twice: in the triggers
-- (over a statement's new rows) and in read_fresh_*() (over the whole
-- tables, for read_projections_rebuild and read_projections_diff). The
-- copies had to agree to the letter, and the diff only showed they did
-- on the data a test happened to write. Now:
--  - a few one-line functions hold the rules (when a pair is open, when
--    a route starts and passes its SLO, how a counter folds);
--  - one function per kind of row says what the row adds:
--    read_ack_deltas, read_delivery_deltas, read_route_deltas and
--    read_route_open (routes given their pair's acknowledgement state);
--  - a plan's routes (read_routes_state, read_routes_unacked) are what
--    the route trigger sees and, plan by plan, what the fresh side reads;
--  - the triggers fold a statement's rows, the fresh side the store's.
-- The acknowledgement and delivery triggers share one function,
-- read_count_timed_rows. read_pair_changed now moves the counters by
-- "deltas under the new state minus deltas under the old". Unchanged:
-- read_pair_acked, the compact/read paths and read_count_rows.
--
-- Results do not change: the same counters, buckets and rows as 0014
-- (dashboard_mix checks the diff and a rebuild against the live counts).
-- Every function here is one SQL statement that the planner inlines into
-- the statement that calls it (no call per row).

-- ---- the rules -------------------------------------------------------------
-- An acknowledgement state that closes its pair.
CREATE FUNCTION read_ack_closes(state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT state IN ('resolved', 'dismissed')
$$;

-- A pair is open while its latest acknowledgement (NULL: none) does not
-- close it.
CREATE FUNCTION read_pair_open(ack_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT ack_state IS NULL OR NOT read_ack_closes(ack_state)
$$;

-- A counter's deltas folded: counters 44-46 and 54-56 (the latest times,
-- the newest state) keep the max, every other one the sum.
CREATE FUNCTION read_fold(counter smallint, total numeric, top bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE WHEN counter IN (44, 45, 46, 54, 55, 56) THEN top
            ELSE total END)::bigint
$$;

-- When a route started, and when it passes its plan's SLO ('-infinity'
-- once it is flagged slo_breached: it is past already).
CREATE FUNCTION read_route_started(r plan_routes) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT r.plan_generated_at - r.age_minutes * interval '1 minute'
$$;
CREATE FUNCTION read_route_deadline(r plan_routes) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN r.slo_breached THEN '-infinity'::timestamptz
                ELSE r.plan_generated_at
                     + (r.plan_slo_minutes - r.age_minutes)
                       * interval '1 minute' END
$$;

-- 1 critical, 2 warning, 3 info (the outstanding list sorts by it).
CREATE FUNCTION read_route_sev(r plan_routes) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE r.severity WHEN 'critical' THEN 1 WHEN 'warning' THEN 2
            ELSE 3 END)::smallint
$$;

-- ---- what one row adds -----------------------------------------------------
-- Counters 40-46 are kept per UTC minute, 50-56 the same per UTC hour;
-- 44, 45 (and 54, 55) are times in epoch microseconds.
CREATE FUNCTION read_time_keys(at_time timestamptz)
RETURNS TABLE (m timestamptz, h timestamptz, us bigint)
LANGUAGE sql STABLE AS $$
    SELECT date_trunc('minute', at_time, 'UTC'),
           date_trunc('hour', at_time, 'UTC'),
           (extract(epoch FROM at_time) * 1000000)::bigint
$$;

-- One VALUES list a row: the services insert one row at a time, and
-- this is the plan with the fewest nodes. Never a zero or NULL delta, so
-- a fold of them is never zero either.
CREATE FUNCTION read_ack_deltas(a acknowledgements)
RETURNS TABLE (counter smallint, bucket timestamptz, provider text, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT v.counter::smallint, v.bucket, v.provider, v.n::bigint
      FROM read_time_keys(a.acknowledged_at) t,
           LATERAL (SELECT read_ack_closes(a.acknowledgement_state) AS closed,
                           a.seq * 8
                           + read_ack_state_number(a.acknowledgement_state)
                               AS newest) x,
           LATERAL (VALUES
               (2, '-infinity'::timestamptz, ''::text, 1::bigint),
               (30, t.h, '', 1), (40, t.m, a.provider, 1),
               (50, t.h, a.provider, 1),
               (41, t.m, a.provider, x.closed::int),
               (51, t.h, a.provider, x.closed::int),
               (45, t.m, a.provider, CASE WHEN x.closed THEN t.us END),
               (55, t.h, a.provider, CASE WHEN x.closed THEN t.us END),
               (46, t.m, a.provider, x.newest),
               (56, t.h, a.provider, x.newest))
               v(counter, bucket, provider, n)
     WHERE v.n <> 0
$$;

CREATE FUNCTION read_delivery_deltas(d delivery_attempts)
RETURNS TABLE (counter smallint, bucket timestamptz, provider text, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT v.counter::smallint, v.bucket, v.provider, v.n::bigint
      FROM (SELECT (NOT d.success)::int AS failed) x,
           read_time_keys(d.created_at) t,
           LATERAL (VALUES
               (7, '-infinity'::timestamptz, ''::text, 1::bigint),
               (8, '-infinity', '', x.failed), (31, t.h, '', x.failed),
               (42, t.m, d.provider, 1), (52, t.h, d.provider, 1),
               (43, t.m, d.provider, x.failed),
               (53, t.h, d.provider, x.failed),
               (44, t.m, d.provider, t.us), (54, t.h, d.provider, t.us))
               v(counter, bucket, provider, n)
     WHERE v.n <> 0
$$;

-- A route given its pair's latest acknowledgement state (NULL: none):
-- counter 11 always, 20-24 while the pair is open, 25 for the pair's
-- first route while it has no acknowledgement.
CREATE FUNCTION read_route_deltas(r plan_routes, ack_state text)
RETURNS TABLE (counter smallint, provider text, n bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT 11::smallint, ''::text, 1::bigint
    UNION ALL
    SELECT v.counter, r.provider, v.n
      FROM read_route_counters(r.severity, r.slo_breached, r.closure_state,
                               r.category, r.failure_count) v
     WHERE read_pair_open(ack_state) AND v.n <> 0
    UNION ALL
    SELECT 25::smallint, r.provider, 1::bigint
     WHERE r.first_of_pair AND ack_state IS NULL
$$;

-- The route's read_open_routes row: while its pair is open and it is not
-- flagged slo_breached.
CREATE FUNCTION read_route_open(r plan_routes, ack_state text)
RETURNS TABLE (plan_id text, "position" integer, provider text,
               started timestamptz, deadline timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT r.plan_id, r.position, r.provider, read_route_started(r),
           read_route_deadline(r)
     WHERE NOT r.slo_breached AND read_pair_open(ack_state)
$$;

-- ---- what a plan's routes add ---------------------------------------------
-- The routes of one INSERT (a plan's: they arrive with it) or, from
-- scratch, of each plan (read_plans_routes), each with its pair's latest
-- acknowledgement state (NULL: none).
CREATE FUNCTION read_routes_state(routes plan_routes[])
RETURNS TABLE (route plan_routes, ack_state text)
LANGUAGE sql STABLE AS $$
    SELECT r, c.acknowledgement_state
      FROM unnest(routes) r LEFT JOIN ack_current c USING (plan_id, provider)
$$;

-- The pairs among them with no acknowledgement (a pair's routes are all
-- in one plan).
CREATE FUNCTION read_routes_unacked(routes plan_routes[])
RETURNS SETOF read_unacked_pairs
LANGUAGE sql STABLE AS $$
    SELECT (x.route).plan_id, (x.route).provider, min(read_route_sev(x.route)),
           min(read_route_started(x.route)), min(read_route_deadline(x.route)),
           max((x.route).plan_slo_minutes)
      FROM read_routes_state(routes) x
     WHERE x.ack_state IS NULL
     GROUP BY (x.route).plan_id, (x.route).provider
$$;

-- Every plan's routes, one array a plan: the from-scratch side's unit.
CREATE FUNCTION read_plans_routes() RETURNS TABLE (routes plan_routes[])
LANGUAGE sql STABLE AS $$
    SELECT array_agg(r) FROM plan_routes r GROUP BY r.plan_id
$$;

-- ---- the triggers ----------------------------------------------------------
-- Acknowledgements and delivery attempts: every new row's deltas, folded
-- per counter, bucket and provider (one row, what the services insert,
-- folds into itself; a bulk insert such as bench/seed.sql adds a few
-- thousand deltas for a million rows). PL/pgSQL plans a statement when
-- it first runs, per table, so each table only ever plans its branch.
CREATE FUNCTION read_count_timed_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'acknowledgements' THEN
        INSERT INTO read_count_deltas
        SELECT d.counter, d.bucket, d.provider,
               read_fold(d.counter, sum(d.n), max(d.n))
          FROM new_rows a, LATERAL read_ack_deltas(a::acknowledgements) d
         GROUP BY d.counter, d.bucket, d.provider;
    ELSE
        INSERT INTO read_count_deltas
        SELECT d.counter, d.bucket, d.provider,
               read_fold(d.counter, sum(d.n), max(d.n))
          FROM new_rows x,
               LATERAL read_delivery_deltas(x::delivery_attempts) d
         GROUP BY d.counter, d.bucket, d.provider;
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER read_count_acks ON acknowledgements;
CREATE TRIGGER read_count_acks AFTER INSERT ON acknowledgements
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_timed_rows();
DROP TRIGGER read_count_deliveries ON delivery_attempts;
CREATE TRIGGER read_count_deliveries AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_timed_rows();
DROP FUNCTION read_count_acks();
DROP FUNCTION read_count_deliveries();

-- plan_routes_fill (0007) has set plan time, SLO and first_of_pair before
-- this runs. One generic plan per statement: routes is a parameter, and
-- planning it anew for each plan (the default) took longer than running
-- it.
CREATE OR REPLACE FUNCTION read_routes_added() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    routes plan_routes[] := ARRAY(SELECT r::plan_routes FROM new_rows r);
BEGIN
    INSERT INTO read_unacked_pairs AS u
    SELECT * FROM read_routes_unacked(routes)
    ON CONFLICT (plan_id, provider) DO UPDATE SET
        sev = least(u.sev, EXCLUDED.sev),
        started = least(u.started, EXCLUDED.started),
        deadline = least(u.deadline, EXCLUDED.deadline),
        slo = greatest(u.slo, EXCLUDED.slo);
    INSERT INTO read_count_deltas
    SELECT d.counter, '-infinity', d.provider, sum(d.n)
      FROM read_routes_state(routes) x,
           LATERAL read_route_deltas(x.route, x.ack_state) d
     GROUP BY d.counter, d.provider;
    INSERT INTO read_open_routes
    SELECT o.*
      FROM read_routes_state(routes) x,
           LATERAL read_route_open(x.route, x.ack_state) o;
    RETURN NULL;
END;
$$;

-- A later acknowledgement that closes an open pair or reopens a closed
-- one (the trigger's WHEN skips every other update without a call): the
-- pair's routes move the counters by what they add under the new state
-- minus what they added under the old one.
CREATE OR REPLACE FUNCTION read_pair_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_count_deltas
    SELECT d.counter, '-infinity', d.provider, sum(d.n)
      FROM plan_routes r,
           LATERAL (SELECT *
                      FROM read_route_deltas(r, NEW.acknowledgement_state)
                    UNION ALL
                    SELECT x.counter, x.provider, -x.n
                      FROM read_route_deltas(r, OLD.acknowledgement_state) x) d
     WHERE r.plan_id = NEW.plan_id AND r.provider = NEW.provider
     GROUP BY d.counter, d.provider HAVING sum(d.n) <> 0;
    DELETE FROM read_open_routes
     WHERE plan_id = NEW.plan_id AND provider = NEW.provider;
    INSERT INTO read_open_routes
    SELECT o.*
      FROM plan_routes r,
           LATERAL read_route_open(r, NEW.acknowledgement_state) o
     WHERE r.plan_id = NEW.plan_id AND r.provider = NEW.provider;
    RETURN NULL;
END;
$$;

-- ---- from scratch ----------------------------------------------------------
-- Every counter as the tables say now: the sizes of the tables counted
-- per statement, and every acknowledgement's, delivery's and route's
-- deltas folded as the triggers and read_projections_compact fold them.
CREATE OR REPLACE FUNCTION read_fresh_counts()
RETURNS TABLE (counter smallint, bucket timestamptz, provider text, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT t.counter::smallint, '-infinity'::timestamptz, '', t.n
      FROM (SELECT 1, count(*) FROM escalation_plans
            UNION ALL SELECT 3, count(*) FROM retry_plans
            UNION ALL SELECT 4, coalesce(sum(retryable_count), 0)
                        FROM retry_plans
            UNION ALL SELECT 5, count(*) FROM report_runs
            UNION ALL SELECT 6, count(*) FROM executive_reports
            UNION ALL SELECT 9, count(*) FROM evidence_events
            UNION ALL SELECT 10, count(*) FROM report_schedules) t(counter, n)
     WHERE t.n <> 0
    UNION ALL
    SELECT d.counter, d.bucket, d.provider,
           read_fold(d.counter, sum(d.n), max(d.n))
      FROM (SELECT x.* FROM acknowledgements a, LATERAL read_ack_deltas(a) x
            UNION ALL
            SELECT x.* FROM delivery_attempts a,
                   LATERAL read_delivery_deltas(a) x
            UNION ALL
            SELECT r.counter, '-infinity', r.provider, r.n
              FROM read_plans_routes() p, read_routes_state(p.routes) x,
                   LATERAL read_route_deltas(x.route, x.ack_state) r) d
     GROUP BY d.counter, d.bucket, d.provider
$$;

CREATE OR REPLACE FUNCTION read_fresh_open_routes()
RETURNS TABLE (plan_id text, "position" integer, provider text,
               started timestamptz, deadline timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT o.*
      FROM read_plans_routes() p, read_routes_state(p.routes) x,
           LATERAL read_route_open(x.route, x.ack_state) o
$$;

CREATE OR REPLACE FUNCTION read_fresh_unacked_pairs()
RETURNS TABLE (plan_id text, provider text, sev smallint,
               started timestamptz, deadline timestamptz, slo integer)
LANGUAGE sql STABLE AS $$
    SELECT u.* FROM read_plans_routes() p,
           LATERAL read_routes_unacked(p.routes) u
$$;
