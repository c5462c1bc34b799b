-- 0014: the read side's counts become projections (issue 12).
--
-- The dashboard counted rows per request: every plan, route, delivery and
-- acknowledgement of the store (213 ms at 63,000 events). Now triggers on
-- the tables keep what it needs, and a read touches a few hundred rows at
-- any store size:
--
--  read_count_deltas  insert-only. Each statement on a counted table adds
--                     one row per counter it moves (counter, provider,
--                     bucket, +/- n). No row is ever updated by a writer,
--                     so concurrent writers and group commits never wait
--                     on one another here (no hot counter row).
--  read_counts        the folded base: read_projections_compact() moves
--                     the deltas into it and deletes them in one
--                     transaction (the evidence sequencer calls it every
--                     round). A read sums base + deltas in one statement,
--                     so it sees one snapshot and is exact, including the
--                     writes the caller just made (they commit with their
--                     deltas).
--  read_open_routes   the open routes not flagged slo_breached, with the
--                     time each starts and passes its plan's SLO. "Past
--                     its SLO" depends on now, so it cannot be a counter:
--                     breached = open - (open, unflagged, deadline >= now),
--                     and the index counts that small, recent side.
--  read_unacked_pairs the (plan, provider) pairs with no acknowledgement at
--                     all, with what the outstanding list sorts them by;
--                     its first rows are index scans.
--
-- Counters (column counter; provider '' = the whole store; bucket
-- '-infinity' = not per time, else the UTC hour or minute it starts):
--    1 plans  2 acknowledgements  3 retry plans  4 retryable decisions (sum)
--    5 schedule runs  6 executive reports  7 delivery attempts
--    8 failed delivery attempts  9 evidence events  10 report schedules
--   11 plan routes
--   per provider, open routes (a pair is open while its latest
--   acknowledgement is neither resolved nor dismissed, or it has none):
--   20 open routes  21 critical  22 flagged slo_breached
--   23 closure state not resolved/mitigated  24 failure_count of
--   retry-execution routes (sum)  25 pairs with no acknowledgement
--   per UTC hour, whole store: 30 acknowledgements  31 failed deliveries
--   per UTC minute and provider: 40 acknowledgements  41 of them resolved
--   or dismissed  42 delivery attempts  43 failed ones  44 latest delivery
--   (epoch us, max)  45 latest resolved/dismissed acknowledgement (max)
--   46 newest acknowledgement (seq * 8 + its state's number 1-6, max)
--   per UTC hour and provider: 50-56, the same as 40-46 (a schedule-run
--   window sums its whole hours, and minutes only at its two ends)
-- Counters 44-46 and 54-56 fold with max, every other one with sum.
--
-- read_projections_rebuild() recomputes everything from the tables (this
-- migration runs it: a store upgraded with data reports what it did
-- before); read_projections_diff(now) lists where the live projections
-- differ from a fresh computation (tests; an operator's check).

CREATE TABLE read_counts (
    counter  smallint    NOT NULL,
    bucket   timestamptz NOT NULL,
    provider text        NOT NULL,
    n        bigint      NOT NULL,
    PRIMARY KEY (counter, bucket, provider)
);

-- No index: it stays small (folded every sequencer round) and is read
-- whole. Deleted rows go quickly: vacuum it often.
CREATE TABLE read_count_deltas (
    counter  smallint    NOT NULL,
    bucket   timestamptz NOT NULL,
    provider text        NOT NULL,
    n        bigint      NOT NULL
) WITH (autovacuum_vacuum_threshold = 500,
        autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 500,
        autovacuum_vacuum_insert_scale_factor = 0);

CREATE TABLE read_open_routes (
    plan_id  text        NOT NULL,
    position integer     NOT NULL,
    provider text        NOT NULL,
    started  timestamptz NOT NULL,
    deadline timestamptz NOT NULL,
    PRIMARY KEY (plan_id, position)
);
CREATE INDEX read_open_routes_deadline ON read_open_routes (deadline);
CREATE INDEX read_open_routes_started ON read_open_routes (started, provider);

-- sev: 1 critical, 2 warning, 3 info. deadline: the earliest of the
-- pair's routes ('-infinity' when one is flagged slo_breached).
CREATE TABLE read_unacked_pairs (
    plan_id  text        NOT NULL,
    provider text        NOT NULL,
    sev      smallint    NOT NULL,
    started  timestamptz NOT NULL,
    deadline timestamptz NOT NULL,
    slo      integer     NOT NULL,
    PRIMARY KEY (plan_id, provider)
);
CREATE INDEX read_unacked_pairs_order
    ON read_unacked_pairs (sev, started, plan_id, provider);
CREATE INDEX read_unacked_pairs_deadline ON read_unacked_pairs (deadline);

-- ---- what a set of routes adds to the open counters ---------------------
-- The per-route counter values of counters 20-24 (one row per counter).
CREATE FUNCTION read_route_counters(severity text, slo_breached boolean,
                                    closure_state text, category text,
                                    failure_count bigint)
RETURNS TABLE (counter smallint, n bigint)
LANGUAGE sql IMMUTABLE AS $$
    VALUES (20::smallint, 1::bigint),
           (21::smallint, (severity = 'critical')::int::bigint),
           (22::smallint, slo_breached::int::bigint),
           (23::smallint, (closure_state NOT IN ('resolved', 'mitigated'))
                              ::int::bigint),
           (24::smallint, CASE WHEN category = 'retry-execution'
                               THEN failure_count ELSE 0 END)
$$;

-- An acknowledgement state's number (proto AckState: acknowledged 1 ..
-- dismissed 6), so "the newest acknowledgement and its state" is one max.
CREATE FUNCTION read_ack_state_number(state text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_position(ARRAY['acknowledged', 'accepted', 'deferred',
                                'escalated', 'resolved', 'dismissed'],
                          state)::bigint
$$;
CREATE FUNCTION read_ack_state_name(num bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['acknowledged', 'accepted', 'deferred', 'escalated',
                  'resolved', 'dismissed'])[num]
$$;

-- The schedule-run report's "latest state" of a provider also looks at
-- its open pairs' current acknowledgements: the newest one is one probe.
CREATE INDEX read_ack_current_open ON ack_current (provider, seq DESC)
    WHERE acknowledgement_state NOT IN ('resolved', 'dismissed');

-- ---- triggers: one delta row per counter a statement moves --------------
CREATE FUNCTION read_count_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    c smallint := TG_ARGV[0]::smallint;
BEGIN
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT c, '-infinity'::timestamptz, '', count(*) FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE TRIGGER read_count_plans AFTER INSERT ON escalation_plans
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_rows('1');
CREATE TRIGGER read_count_runs AFTER INSERT ON report_runs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_rows('5');
CREATE TRIGGER read_count_reports AFTER INSERT ON executive_reports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_rows('6');
CREATE TRIGGER read_count_events AFTER INSERT ON evidence_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_rows('9');
-- An upsert that updates adds no row to new_rows: only new schedules count.
CREATE TRIGGER read_count_schedules AFTER INSERT ON report_schedules
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_rows('10');

CREATE FUNCTION read_count_retry_plans() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT v.counter, '-infinity'::timestamptz, '', v.n
      FROM (SELECT count(*) AS plans, sum(retryable_count) AS retryable
              FROM new_rows) t,
           LATERAL (VALUES (3::smallint, t.plans),
                           (4::smallint, t.retryable)) v(counter, n)
     WHERE v.n <> 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER read_count_retry_plans AFTER INSERT ON retry_plans
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_retry_plans();

-- One row (what the services insert): every delta straight from the row,
-- no grouping. Bulk inserts (bench/seed.sql, imports): grouped, so a
-- million rows add a few thousand deltas.
CREATE FUNCTION read_count_acks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM new_rows) = 1 THEN
        INSERT INTO read_count_deltas (counter, bucket, provider, n)
        SELECT v.counter, v.bucket, v.provider, v.n
          FROM (SELECT provider,
                       date_trunc('minute', acknowledged_at, 'UTC') AS m,
                       date_trunc('hour', acknowledged_at, 'UTC') AS h,
                       acknowledgement_state IN ('resolved', 'dismissed')
                           AS closed,
                       (extract(epoch FROM acknowledged_at) * 1000000)::bigint
                           AS us,
                       seq * 8 + read_ack_state_number(acknowledgement_state)
                           AS newest
                  FROM new_rows) a,
               LATERAL (VALUES
                   (2::smallint, '-infinity'::timestamptz, ''::text, 1::bigint),
                   (30::smallint, a.h, '', 1),
                   (40::smallint, a.m, a.provider, 1),
                   (50::smallint, a.h, a.provider, 1),
                   (41::smallint, a.m, a.provider, a.closed::int::bigint),
                   (51::smallint, a.h, a.provider, a.closed::int::bigint),
                   (45::smallint, a.m, a.provider,
                    CASE WHEN a.closed THEN a.us END),
                   (55::smallint, a.h, a.provider,
                    CASE WHEN a.closed THEN a.us END),
                   (46::smallint, a.m, a.provider, a.newest),
                   (56::smallint, a.h, a.provider, a.newest))
                   v(counter, bucket, provider, n)
         WHERE v.n IS NOT NULL AND v.n <> 0;
        RETURN NULL;
    END IF;
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT 2, '-infinity'::timestamptz, '', count(*) FROM new_rows HAVING count(*) > 0
    UNION ALL
    SELECT 30, date_trunc('hour', acknowledged_at, 'UTC'), '', count(*)
      FROM new_rows GROUP BY 2
    UNION ALL
    SELECT v.counter + g.add, m.bucket, m.provider, v.n
      FROM (VALUES ('minute', 0), ('hour', 10)) g(unit, add),
           LATERAL (SELECT date_trunc(g.unit, acknowledged_at, 'UTC') AS bucket,
                   provider, count(*) AS acks,
                   count(*) FILTER (WHERE acknowledgement_state
                                    IN ('resolved', 'dismissed')) AS closed,
                   max((extract(epoch FROM acknowledged_at) * 1000000)::bigint)
                       FILTER (WHERE acknowledgement_state
                               IN ('resolved', 'dismissed')) AS closed_at,
                   max(seq * 8 + read_ack_state_number(acknowledgement_state))
                       AS newest
              FROM new_rows GROUP BY 1, 2) m,
           LATERAL (VALUES (40::smallint, m.acks), (41::smallint, m.closed),
                           (45::smallint, m.closed_at),
                           (46::smallint, m.newest)) v(counter, n)
     WHERE v.n IS NOT NULL AND v.n <> 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER read_count_acks AFTER INSERT ON acknowledgements
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_acks();

CREATE FUNCTION read_count_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM new_rows) = 1 THEN
        INSERT INTO read_count_deltas (counter, bucket, provider, n)
        SELECT v.counter, v.bucket, v.provider, v.n
          FROM (SELECT provider, NOT success AS failed,
                       date_trunc('minute', created_at, 'UTC') AS m,
                       date_trunc('hour', created_at, 'UTC') AS h,
                       (extract(epoch FROM created_at) * 1000000)::bigint AS us
                  FROM new_rows) d,
               LATERAL (VALUES
                   (7::smallint, '-infinity'::timestamptz, ''::text, 1::bigint),
                   (8::smallint, '-infinity', '', d.failed::int::bigint),
                   (31::smallint, d.h, '', d.failed::int::bigint),
                   (42::smallint, d.m, d.provider, 1),
                   (52::smallint, d.h, d.provider, 1),
                   (43::smallint, d.m, d.provider, d.failed::int::bigint),
                   (53::smallint, d.h, d.provider, d.failed::int::bigint),
                   (44::smallint, d.m, d.provider, d.us),
                   (54::smallint, d.h, d.provider, d.us))
                   v(counter, bucket, provider, n)
         WHERE v.n <> 0;
        RETURN NULL;
    END IF;
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT v.counter, '-infinity'::timestamptz, '', v.n
      FROM (SELECT count(*) AS runs, count(*) FILTER (WHERE NOT success)
                AS failed FROM new_rows) t,
           LATERAL (VALUES (7::smallint, t.runs), (8::smallint, t.failed))
               v(counter, n)
     WHERE v.n <> 0
    UNION ALL
    SELECT 31, date_trunc('hour', created_at, 'UTC'), '', count(*)
      FROM new_rows WHERE NOT success GROUP BY 2
    UNION ALL
    SELECT v.counter + g.add, m.bucket, m.provider, v.n
      FROM (VALUES ('minute', 0), ('hour', 10)) g(unit, add),
           LATERAL (SELECT date_trunc(g.unit, created_at, 'UTC') AS bucket,
                   provider, count(*) AS runs,
                   count(*) FILTER (WHERE NOT success) AS failed,
                   max((extract(epoch FROM created_at) * 1000000)::bigint)
                       AS latest
              FROM new_rows GROUP BY 1, 2) m,
           LATERAL (VALUES (42::smallint, m.runs), (43::smallint, m.failed),
                           (44::smallint, m.latest)) v(counter, n)
     WHERE v.n <> 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER read_count_deliveries AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_count_deliveries();

-- Routes arrive with their plan, before any acknowledgement can name the
-- plan; the join with ack_current keeps it exact anyway. plan_routes_fill
-- (0007) has set plan time, SLO and first_of_pair before this runs.
CREATE FUNCTION read_routes_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT 11, '-infinity'::timestamptz, '', count(*) FROM new_rows HAVING count(*) > 0
    UNION ALL
    SELECT v.counter, '-infinity'::timestamptz, r.provider, sum(v.n)
      FROM new_rows r
      LEFT JOIN ack_current c
        ON c.plan_id = r.plan_id AND c.provider = r.provider
     CROSS JOIN LATERAL read_route_counters(r.severity, r.slo_breached,
                                            r.closure_state, r.category,
                                            r.failure_count) v
     WHERE c.acknowledgement_state IS NULL
        OR c.acknowledgement_state NOT IN ('resolved', 'dismissed')
     GROUP BY v.counter, r.provider HAVING sum(v.n) <> 0
    UNION ALL
    SELECT 25, '-infinity'::timestamptz, r.provider, count(*)
      FROM new_rows r
     WHERE r.first_of_pair AND NOT EXISTS (
               SELECT 1 FROM ack_current c
                WHERE c.plan_id = r.plan_id AND c.provider = r.provider)
     GROUP BY r.provider;

    INSERT INTO read_open_routes (plan_id, position, provider, started,
                                  deadline)
    SELECT r.plan_id, r.position, r.provider,
           r.plan_generated_at - r.age_minutes * interval '1 minute',
           r.plan_generated_at
               + (r.plan_slo_minutes - r.age_minutes) * interval '1 minute'
      FROM new_rows r
      LEFT JOIN ack_current c
        ON c.plan_id = r.plan_id AND c.provider = r.provider
     WHERE NOT r.slo_breached
       AND (c.acknowledgement_state IS NULL
            OR c.acknowledgement_state NOT IN ('resolved', 'dismissed'));

    INSERT INTO read_unacked_pairs AS u (plan_id, provider, sev, started,
                                         deadline, slo)
    SELECT r.plan_id, r.provider,
           min(CASE r.severity WHEN 'critical' THEN 1 WHEN 'warning' THEN 2
               ELSE 3 END),
           min(r.plan_generated_at - r.age_minutes * interval '1 minute'),
           min(CASE WHEN r.slo_breached THEN '-infinity'::timestamptz
               ELSE r.plan_generated_at + (r.plan_slo_minutes - r.age_minutes)
                    * interval '1 minute' END),
           max(r.plan_slo_minutes)
      FROM new_rows r
     WHERE NOT EXISTS (SELECT 1 FROM ack_current c
                        WHERE c.plan_id = r.plan_id
                          AND c.provider = r.provider)
     GROUP BY r.plan_id, r.provider
    ON CONFLICT (plan_id, provider) DO UPDATE SET
        sev = least(u.sev, EXCLUDED.sev),
        started = least(u.started, EXCLUDED.started),
        deadline = least(u.deadline, EXCLUDED.deadline),
        slo = greatest(u.slo, EXCLUDED.slo);
    RETURN NULL;
END;
$$;
CREATE TRIGGER read_routes_added AFTER INSERT ON plan_routes
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_routes_added();

-- A pair's first acknowledgement: it leaves "unacknowledged"; a first
-- acknowledgement that resolves or dismisses also closes its routes. A row
-- trigger: an upsert that updates (most acknowledgements) calls nothing
-- here (see read_pair_changed).
CREATE FUNCTION read_pair_acked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT 25, '-infinity'::timestamptz, r.provider, -count(*)
      FROM plan_routes r
     WHERE r.plan_id = NEW.plan_id AND r.provider = NEW.provider
       AND r.first_of_pair
     GROUP BY r.provider
    UNION ALL
    SELECT v.counter, '-infinity'::timestamptz, r.provider, -sum(v.n)
      FROM plan_routes r
     CROSS JOIN LATERAL read_route_counters(r.severity, r.slo_breached,
                                            r.closure_state, r.category,
                                            r.failure_count) v
     WHERE r.plan_id = NEW.plan_id AND r.provider = NEW.provider
       AND NEW.acknowledgement_state IN ('resolved', 'dismissed')
     GROUP BY v.counter, r.provider HAVING sum(v.n) <> 0;
    DELETE FROM read_unacked_pairs
     WHERE plan_id = NEW.plan_id AND provider = NEW.provider;
    IF NEW.acknowledgement_state IN ('resolved', 'dismissed') THEN
        DELETE FROM read_open_routes
         WHERE plan_id = NEW.plan_id AND provider = NEW.provider;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER read_pair_acked AFTER INSERT ON ack_current
    FOR EACH ROW EXECUTE FUNCTION read_pair_acked();

-- A later acknowledgement that closes an open pair or reopens a closed
-- one (the trigger's WHEN skips every other update without a call).
CREATE FUNCTION read_pair_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE WHEN NEW.acknowledgement_state
                              IN ('resolved', 'dismissed') THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO read_count_deltas (counter, bucket, provider, n)
    SELECT v.counter, '-infinity'::timestamptz, r.provider, sign * sum(v.n)
      FROM plan_routes r
     CROSS JOIN LATERAL read_route_counters(r.severity, r.slo_breached,
                                            r.closure_state, r.category,
                                            r.failure_count) v
     WHERE r.plan_id = NEW.plan_id AND r.provider = NEW.provider
     GROUP BY v.counter, r.provider HAVING sum(v.n) <> 0;
    IF sign < 0 THEN
        DELETE FROM read_open_routes
         WHERE plan_id = NEW.plan_id AND provider = NEW.provider;
    ELSE
        INSERT INTO read_open_routes (plan_id, position, provider, started,
                                      deadline)
        SELECT r.plan_id, r.position, r.provider,
               r.plan_generated_at - r.age_minutes * interval '1 minute',
               r.plan_generated_at
                   + (r.plan_slo_minutes - r.age_minutes) * interval '1 minute'
          FROM plan_routes r
         WHERE r.plan_id = NEW.plan_id AND r.provider = NEW.provider
           AND NOT r.slo_breached;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER read_pair_changed AFTER UPDATE ON ack_current
    FOR EACH ROW
    WHEN ((OLD.acknowledgement_state IN ('resolved', 'dismissed'))
          IS DISTINCT FROM
          (NEW.acknowledgement_state IN ('resolved', 'dismissed')))
    EXECUTE FUNCTION read_pair_changed();

-- ---- folding ------------------------------------------------------------
-- Moves every committed delta into read_counts, in one transaction (a
-- reader sees either the deltas or their sum, never both or neither).
-- One caller at a time; the others return 0 at once. Returns the number
-- of delta rows folded.
CREATE FUNCTION read_projections_compact() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    -- 0x50524F4A is "PROJ"; 14 is this migration.
    IF NOT pg_try_advisory_xact_lock(1347571530, 14) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM read_count_deltas RETURNING counter, bucket, provider, n
    ), agg AS (
        SELECT counter, bucket, provider,
               CASE WHEN counter IN (44, 45, 46, 54, 55, 56) THEN max(n)
                    ELSE sum(n) END AS n,
               count(*) AS rows
          FROM gone GROUP BY counter, bucket, provider
    ), up AS (
        INSERT INTO read_counts AS c (counter, bucket, provider, n)
        SELECT counter, bucket, provider, n FROM agg
        ON CONFLICT (counter, bucket, provider) DO UPDATE SET
            n = CASE WHEN c.counter IN (44, 45, 46, 54, 55, 56)
                     THEN greatest(c.n, EXCLUDED.n)
                     ELSE c.n + EXCLUDED.n END
    )
    SELECT coalesce(sum(rows), 0) INTO folded FROM agg;
    RETURN folded;
END;
$$;

-- ---- reads that depend on now --------------------------------------------
-- Planned with the actual time each call (plan_cache_mode): the range is
-- the small side only when the planner sees the value.
CREATE FUNCTION read_unbreached_count(now_at timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN (SELECT count(*) FROM read_open_routes WHERE deadline >= now_at);
END;
$$;

-- Outstanding acknowledgements, most urgent first: the pairs past their
-- SLO, then the others, each by severity, start, plan and provider.
CREATE FUNCTION read_outstanding(now_at timestamptz, max_rows integer)
RETURNS TABLE (plan_id text, provider text, sev smallint,
               started timestamptz, breached boolean, slo integer)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT u.plan_id, u.provider, u.sev, u.started, u.deadline < now_at,
           u.slo
      FROM ((SELECT * FROM read_unacked_pairs p WHERE p.deadline < now_at
              ORDER BY p.sev, p.started, p.plan_id, p.provider
              LIMIT max_rows)
            UNION ALL
            (SELECT * FROM read_unacked_pairs p WHERE p.deadline >= now_at
              ORDER BY p.sev, p.started, p.plan_id, p.provider
              LIMIT max_rows)) u
     ORDER BY u.deadline < now_at DESC, u.sev, u.started, u.plan_id,
              u.provider
     LIMIT max_rows;
END;
$$;

-- Per provider: the open, unflagged routes that started at or after
-- since (for the schedule-run report: not past its SLO when started >=
-- now - SLO).
CREATE FUNCTION read_unbreached_since(since timestamptz)
RETURNS TABLE (provider text, n bigint)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT o.provider, count(*) FROM read_open_routes o
     WHERE o.started >= since GROUP BY o.provider;
END;
$$;

-- Per provider, counters 40-46 over [ws, we) (minute-aligned, as every
-- schedule window is): the whole UTC hours inside from 50-56, the minutes
-- before the first and after the last whole hour from 40-46.
CREATE FUNCTION read_window_counts(ws timestamptz, we timestamptz)
RETURNS TABLE (counter smallint, provider text, n bigint)
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT date_trunc('hour', ws + interval '59 minutes', 'UTC') AS h1,
               date_trunc('hour', we, 'UTC') AS h2
    ), x AS (
        SELECT c.counter - 10 AS counter, c.provider, c.n
          FROM b, read_counts c
         WHERE c.counter IN (50, 51, 52, 53, 54, 55, 56)
           AND c.bucket >= b.h1 AND c.bucket < b.h2
        UNION ALL
        SELECT c.counter, c.provider, c.n
          FROM b, read_counts c
         WHERE c.counter IN (40, 41, 42, 43, 44, 45, 46)
           AND c.bucket >= ws AND c.bucket < least(b.h1, we)
        UNION ALL
        SELECT c.counter, c.provider, c.n
          FROM b, read_counts c
         WHERE c.counter IN (40, 41, 42, 43, 44, 45, 46)
           AND c.bucket >= greatest(b.h1, b.h2) AND c.bucket < we
        UNION ALL
        SELECT d.counter - 10, d.provider, d.n
          FROM b, read_count_deltas d
         WHERE d.counter BETWEEN 50 AND 56
           AND d.bucket >= b.h1 AND d.bucket < b.h2
        UNION ALL
        SELECT d.counter, d.provider, d.n
          FROM b, read_count_deltas d
         WHERE d.counter BETWEEN 40 AND 46
           AND d.bucket >= ws AND d.bucket < we
           AND NOT (d.bucket >= b.h1 AND d.bucket < b.h2)
    )
    SELECT x.counter::smallint, x.provider,
           CASE WHEN x.counter IN (44, 45, 46) THEN max(x.n)
                ELSE sum(x.n) END::bigint
      FROM x GROUP BY x.counter, x.provider
$$;

-- ---- from scratch ----------------------------------------------------------
-- Every counter as the tables say now (same definitions as the triggers).
CREATE FUNCTION read_fresh_counts()
RETURNS TABLE (counter smallint, bucket timestamptz, provider text, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT v.counter, '-infinity'::timestamptz, '', v.n
      FROM (VALUES
            (1::smallint, (SELECT count(*) FROM escalation_plans)),
            (2::smallint, (SELECT count(*) FROM acknowledgements)),
            (3::smallint, (SELECT count(*) FROM retry_plans)),
            (4::smallint, (SELECT coalesce(sum(retryable_count), 0)
                             FROM retry_plans)),
            (5::smallint, (SELECT count(*) FROM report_runs)),
            (6::smallint, (SELECT count(*) FROM executive_reports)),
            (7::smallint, (SELECT count(*) FROM delivery_attempts)),
            (8::smallint, (SELECT count(*) FROM delivery_attempts
                            WHERE NOT success)),
            (9::smallint, (SELECT count(*) FROM evidence_events)),
            (10::smallint, (SELECT count(*) FROM report_schedules)),
            (11::smallint, (SELECT count(*) FROM plan_routes))) v(counter, n)
     WHERE v.n <> 0
    UNION ALL
    SELECT v.counter, '-infinity'::timestamptz, r.provider, sum(v.n)
      FROM plan_routes r
      LEFT JOIN ack_current c
        ON c.plan_id = r.plan_id AND c.provider = r.provider
     CROSS JOIN LATERAL read_route_counters(r.severity, r.slo_breached,
                                            r.closure_state, r.category,
                                            r.failure_count) v
     WHERE c.acknowledgement_state IS NULL
        OR c.acknowledgement_state NOT IN ('resolved', 'dismissed')
     GROUP BY v.counter, r.provider HAVING sum(v.n) <> 0
    UNION ALL
    SELECT 25, '-infinity'::timestamptz, r.provider, count(*)
      FROM plan_routes r
     WHERE r.first_of_pair AND NOT EXISTS (
               SELECT 1 FROM ack_current c
                WHERE c.plan_id = r.plan_id AND c.provider = r.provider)
     GROUP BY r.provider
    UNION ALL
    SELECT 30, date_trunc('hour', acknowledged_at, 'UTC'), '', count(*)
      FROM acknowledgements GROUP BY 2
    UNION ALL
    SELECT 31, date_trunc('hour', created_at, 'UTC'), '', count(*)
      FROM delivery_attempts WHERE NOT success GROUP BY 2
    UNION ALL
    SELECT v.counter + g.add, m.bucket, m.provider, v.n
      FROM (VALUES ('minute', 0), ('hour', 10)) g(unit, add),
           LATERAL (SELECT date_trunc(g.unit, acknowledged_at, 'UTC') AS bucket,
                   provider, count(*) AS acks,
                   count(*) FILTER (WHERE acknowledgement_state
                                    IN ('resolved', 'dismissed')) AS closed,
                   max((extract(epoch FROM acknowledged_at) * 1000000)::bigint)
                       FILTER (WHERE acknowledgement_state
                               IN ('resolved', 'dismissed')) AS closed_at,
                   max(seq * 8 + read_ack_state_number(acknowledgement_state))
                       AS newest
              FROM acknowledgements GROUP BY 1, 2) m,
           LATERAL (VALUES (40::smallint, m.acks), (41::smallint, m.closed),
                           (45::smallint, m.closed_at),
                           (46::smallint, m.newest)) v(counter, n)
     WHERE v.n IS NOT NULL AND v.n <> 0
    UNION ALL
    SELECT v.counter + g.add, m.bucket, m.provider, v.n
      FROM (VALUES ('minute', 0), ('hour', 10)) g(unit, add),
           LATERAL (SELECT date_trunc(g.unit, created_at, 'UTC') AS bucket,
                   provider, count(*) AS runs,
                   count(*) FILTER (WHERE NOT success) AS failed,
                   max((extract(epoch FROM created_at) * 1000000)::bigint)
                       AS latest
              FROM delivery_attempts GROUP BY 1, 2) m,
           LATERAL (VALUES (42::smallint, m.runs), (43::smallint, m.failed),
                           (44::smallint, m.latest)) v(counter, n)
     WHERE v.n <> 0
$$;

CREATE FUNCTION read_fresh_open_routes()
RETURNS TABLE (plan_id text, "position" integer, provider text,
               started timestamptz, deadline timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT r.plan_id, r.position, r.provider,
           r.plan_generated_at - r.age_minutes * interval '1 minute',
           r.plan_generated_at
               + (r.plan_slo_minutes - r.age_minutes) * interval '1 minute'
      FROM plan_routes r
      LEFT JOIN ack_current c
        ON c.plan_id = r.plan_id AND c.provider = r.provider
     WHERE NOT r.slo_breached
       AND (c.acknowledgement_state IS NULL
            OR c.acknowledgement_state NOT IN ('resolved', 'dismissed'))
$$;

CREATE FUNCTION read_fresh_unacked_pairs()
RETURNS TABLE (plan_id text, provider text, sev smallint,
               started timestamptz, deadline timestamptz, slo integer)
LANGUAGE sql STABLE AS $$
    SELECT r.plan_id, r.provider,
           min(CASE r.severity WHEN 'critical' THEN 1 WHEN 'warning' THEN 2
               ELSE 3 END)::smallint,
           min(r.plan_generated_at - r.age_minutes * interval '1 minute'),
           min(CASE WHEN r.slo_breached THEN '-infinity'::timestamptz
               ELSE r.plan_generated_at + (r.plan_slo_minutes - r.age_minutes)
                    * interval '1 minute' END),
           max(r.plan_slo_minutes)
      FROM plan_routes r
     WHERE NOT EXISTS (SELECT 1 FROM ack_current c
                        WHERE c.plan_id = r.plan_id
                          AND c.provider = r.provider)
     GROUP BY r.plan_id, r.provider
$$;

-- The live counters: base + deltas, folded like read_projections_compact.
CREATE FUNCTION read_live_counts()
RETURNS TABLE (counter smallint, bucket timestamptz, provider text, n bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.counter, x.bucket, x.provider,
           CASE WHEN x.counter IN (44, 45, 46, 54, 55, 56) THEN max(x.n)
                ELSE sum(x.n) END
      FROM (SELECT c.counter, c.bucket, c.provider, c.n FROM read_counts c
            UNION ALL
            SELECT d.counter, d.bucket, d.provider, d.n
              FROM read_count_deltas d) x
     GROUP BY x.counter, x.bucket, x.provider
$$;

-- Where the projections differ from the tables, in this snapshot: no row
-- means they agree. Run it in one REPEATABLE READ transaction (or alone).
CREATE FUNCTION read_projections_diff()
RETURNS TABLE (what text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'counter', format('%s %s %s: live %s, fresh %s',
                             coalesce(l.counter, f.counter),
                             coalesce(l.bucket, f.bucket),
                             coalesce(l.provider, f.provider),
                             coalesce(l.n, 0), coalesce(f.n, 0))
      FROM (SELECT * FROM read_live_counts() WHERE n <> 0) l
      FULL JOIN read_fresh_counts() f
        ON f.counter = l.counter AND f.bucket = l.bucket
       AND f.provider = l.provider
     WHERE l.n IS DISTINCT FROM f.n
    UNION ALL
    SELECT 'open_route', format('%s %s', x.plan_id, x."position")
      FROM ((SELECT * FROM read_open_routes
             EXCEPT ALL SELECT * FROM read_fresh_open_routes())
            UNION ALL
            (SELECT * FROM read_fresh_open_routes()
             EXCEPT ALL SELECT * FROM read_open_routes)) x
    UNION ALL
    SELECT 'unacked_pair', format('%s %s', x.plan_id, x.provider)
      FROM ((SELECT * FROM read_unacked_pairs
             EXCEPT ALL SELECT * FROM read_fresh_unacked_pairs())
            UNION ALL
            (SELECT * FROM read_fresh_unacked_pairs()
             EXCEPT ALL SELECT * FROM read_unacked_pairs)) x
$$;

-- Recomputes every projection from the tables. Writers wait meanwhile
-- (SHARE locks), so the result is exact on a live store too.
CREATE FUNCTION read_projections_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE escalation_plans, plan_routes, acknowledgements, ack_current,
               delivery_attempts, retry_plans, report_runs, executive_reports,
               report_schedules, evidence_events IN SHARE MODE;
    LOCK TABLE read_counts, read_count_deltas, read_open_routes,
               read_unacked_pairs IN EXCLUSIVE MODE;
    DELETE FROM read_count_deltas;
    DELETE FROM read_counts;
    DELETE FROM read_open_routes;
    DELETE FROM read_unacked_pairs;
    INSERT INTO read_counts (counter, bucket, provider, n)
    SELECT counter, bucket, provider, n FROM read_fresh_counts();
    INSERT INTO read_open_routes SELECT * FROM read_fresh_open_routes();
    INSERT INTO read_unacked_pairs SELECT * FROM read_fresh_unacked_pairs();
END;
$$;

SELECT read_projections_rebuild();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cavra_app') THEN
        GRANT SELECT ON read_counts, read_count_deltas, read_open_routes,
              read_unacked_pairs TO cavra_app;
        -- Writers (their triggers) append deltas and keep the two sets;
        -- the sequencer folds deltas into the base.
        GRANT INSERT, DELETE ON read_count_deltas, read_open_routes,
              read_unacked_pairs TO cavra_app;
        GRANT UPDATE ON read_unacked_pairs TO cavra_app;
        GRANT INSERT, UPDATE ON read_counts TO cavra_app;
        REVOKE EXECUTE ON FUNCTION read_projections_rebuild() FROM PUBLIC;
    END IF;
END;
$$;
