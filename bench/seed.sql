-- bench/seed.sql -- bulk test data for the CAVRA Recovery benchmarks.
--
--   psql "$CAVRA_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -v records=100000 \
--        -f bench/seed.sql
--
-- Inserts, in one transaction, :records (default 100000, minimum 8) of each
-- of the three upstream kinds, shaped as the services store them
-- (services/ack/ack_sql.c, services/retry/retry_sql.c, lib/cv_evidence.c):
--
--   escalation_plans   :records plans, 2 routes each (plan_routes), providers
--                      from slack/jira/pagerduty/webhook/teams; generated_at
--                      spread over the last 7 days (the newest ~12 h ago).
--   delivery_attempts  :records attempts, 2 per (plan, provider) pair, on
--                      both routes of every 4th plan (:records/2 pairs).
--                      Per pair (j mod 20): 0-9 a failure (503, 0, 429, 404
--                      or 500) then a success; 10-15 and 19 two successes;
--                      16 two 503s; 17 a success then a 429; 18 an
--                      unreachable (0) then a 404. So 15% of the pairs end in
--                      a failure streak: a retry plan over the whole store
--                      has :records * 0.075 decisions (7,500 at 100,000).
--   acknowledgements   :records acknowledgements over 0.75 * :records pairs
--                      spread over all plans: one pair in three gets two
--                      (`acknowledged`, then resolved/accepted/dismissed/
--                      escalated); all six states occur. ack_current holds
--                      each pair's latest one (highest seq), as
--                      ack_upsert_current keeps it.
--   evidence_events    one event per row above (kinds recovery_escalation_
--                      plan, connector_delivery, recovery_escalation_ack),
--                      record = the record (its one stored copy, migration
--                      0013; the tables keep indexed columns), in created_at
--                      order. None gets a leaf (evidence_leaves): the
--                      services' evidence sequencer sequences them
--                      (bench.sh times that).
--
-- Ids are '<prefix>' || lpad(to_hex(n), 16, '0') (the real ids are 16 hex
-- digits of a SHA-256). Every seeded row says 'bench-seed' in request_id
-- (plans also in generated_by; acknowledgements in their event), so
--   SELECT count(*) FROM evidence_events WHERE request_id = 'bench-seed'
-- counts them. Running the script again adds another :records of each, with
-- fresh ids (numbering continues after the seeded plans already there).
-- Nothing here can be deleted afterwards: evidence_events is append-only.

\set ON_ERROR_STOP on
\if :{?records}
\else
\set records 100000
\endif

SELECT (:records)::bigint >= 8 AS bench_records_ok \gset
\if :bench_records_ok
\else
\echo 'seed.sql: records must be at least 8'
\quit
\endif

BEGIN;

-- RFC 3339 UTC with microseconds, as cv_time_format writes it.
CREATE FUNCTION pg_temp.bench_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
CREATE FUNCTION pg_temp.bench_id(prefix text, n bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT prefix || lpad(to_hex(n), 16, '0')
$$;

-- Numbering continues after an earlier seed (same count of each kind).
CREATE TEMP TABLE bench_param ON COMMIT DROP AS
SELECT (:records)::bigint AS total,
       (SELECT count(*) FROM escalation_plans
         WHERE generated_by = 'bench-seed') AS base,
       now() - interval '7 days' AS t_start,
       interval '156 hours' / (:records)::bigint AS step;

-- Routes: o is the order the client sent them in, position the order the
-- plan stores them in (critical first, failure_count desc, age desc).
CREATE TEMP TABLE bench_routes ON COMMIT DROP AS
WITH raw AS (
    SELECT n, o,
           (ARRAY['slack', 'jira', 'pagerduty', 'webhook', 'teams'])
               [1 + CASE WHEN o = 0 THEN n % 5
                         ELSE (n % 5 + 1 + (n / 5) % 4) % 5 END] AS provider,
           CASE WHEN o = 0 THEN
                    CASE WHEN n % 10 < 2 THEN 'critical'
                         WHEN n % 10 < 8 THEN 'warning' ELSE 'info' END
                ELSE CASE WHEN n % 7 = 0 THEN 'critical'
                          WHEN n % 7 < 5 THEN 'warning' ELSE 'info' END
           END AS severity,
           CASE WHEN (n + o) % 3 = 0 THEN 'retry-execution'
                ELSE 'connector-recovery' END AS category,
           (ARRAY['open', 'open', 'open', 'review_required', 'mitigated',
                  'resolved'])[1 + (n + o) % 6] AS closure_state,
           ((n * 7 + o * 13) % 600)::bigint AS age_minutes,
           ((n + o) % 5)::bigint AS failure_count,
           (o = 0 AND n % 11 = 0) AS slo_breached
      FROM generate_series(1::bigint, (:records)::bigint) AS n,
           generate_series(0, 1) AS o
)
SELECT n, o, provider, severity, category, closure_state, age_minutes,
       failure_count, slo_breached,
       (row_number() OVER (PARTITION BY n
            ORDER BY (severity = 'critical') DESC, failure_count DESC,
                     age_minutes DESC, o) - 1)::int AS position,
       jsonb_build_object(
           'provider', provider,
           'category', category,
           'severity', severity,
           'reason', CASE WHEN severity = 'critical'
                          THEN 'webhook connector failed after rollback' END,
           'recommended_action', CASE WHEN n % 2 = 1
                          THEN 'retry the delivery after rollback verification'
                          END,
           'playbook_id', CASE WHEN n % 3 = 0 THEN 'pb-' || (n % 40) END,
           'closure_state', closure_state,
           'age_minutes', age_minutes,
           'failure_count', failure_count,
           'slo_status', CASE WHEN slo_breached THEN 'breached'
                              ELSE 'within_slo' END,
           'slo_breached', slo_breached) AS route
  FROM raw;

CREATE TEMP TABLE bench_plans ON COMMIT DROP AS
WITH agg AS (
    SELECT r.n,
           pg_temp.bench_id('gordackrecoveryesc-', bp.base + r.n) AS plan_id,
           bp.t_start + (r.n - 1) * bp.step AS generated_at,
           count(*) FILTER (WHERE r.severity = 'critical') AS critical,
           count(*) FILTER (WHERE r.slo_breached) AS breached,
           coalesce(sum(r.failure_count)
                    FILTER (WHERE r.category = 'retry-execution'), 0)
               AS failed,
           count(*) FILTER (WHERE r.closure_state NOT IN
                            ('resolved', 'mitigated')) AS open,
           array_agg(DISTINCT r.provider ORDER BY r.provider) AS providers,
           jsonb_agg(r.route ORDER BY r.position) AS routes
      FROM bench_routes r CROSS JOIN bench_param bp
     GROUP BY r.n, bp.base, bp.t_start, bp.step
)
SELECT a.*,
       CASE WHEN critical > 0 OR breached > 0 THEN 'critical'
            ELSE 'warning' END AS alert_level,
       jsonb_build_object(
           'schema_version', 'cavra.go-backend-pilot.rollback-drill-acknowledgement-'
                     'audit-delivery-recovery-escalation-plan.v1',
           'product', 'CAVRA',
           'plan_id', plan_id,
           'generated_at', pg_temp.bench_ts(generated_at),
           'generated_by', 'bench-seed',
           'alert_level', CASE WHEN critical > 0 OR breached > 0
                               THEN 'critical' ELSE 'warning' END,
           'recovery_slo_minutes', 240,
           'escalation_count', 2,
           'critical_escalation_count', critical,
           'slo_breached_count', breached,
           'failed_execution_count', failed,
           'open_recovery_count', open,
           'provider_count', cardinality(providers),
           'selected_providers', to_jsonb(providers),
           'escalation_routes', routes,
           'executive_summary', jsonb_build_object(
               'status', CASE WHEN critical > 0 OR breached > 0
                              THEN 'critical' ELSE 'warning' END,
               'tracked_provider_count', cardinality(providers),
               'failed_execution_count', failed,
               'open_recovery_count', open,
               'slo_breached_count', breached),
           'controls', jsonb_build_array(
               'public-safe metadata only: no connector credentials, private '
               'endpoints, ticket payloads or customer incident text',
               'free text is scanned and secrets are redacted before storage',
               'every stored record appends one event to the append-only '
               'evidence stream',
               'each selected provider must acknowledge the escalation'),
           'redaction_count', 0) AS record
  FROM agg a;

INSERT INTO escalation_plans (plan_id, generated_at, generated_by,
    alert_level, recovery_slo_minutes, escalation_count,
    critical_escalation_count, slo_breached_count, failed_execution_count,
    open_recovery_count, providers, request_id)
SELECT plan_id, generated_at, 'bench-seed', alert_level, 240, 2, critical,
       breached, failed, open, providers, 'bench-seed'
  FROM bench_plans
 ORDER BY n;

INSERT INTO plan_routes (plan_id, position, provider, category, severity,
    closure_state, age_minutes, failure_count, slo_breached)
SELECT p.plan_id, r.position, r.provider, r.category, r.severity,
       r.closure_state, r.age_minutes, r.failure_count, r.slo_breached
  FROM bench_routes r JOIN bench_plans p USING (n)
 ORDER BY r.n, r.position;

-- Delivery attempts: i = 0..records-1, pair j = i / 2, attempt a = i % 2
-- on route o = j % 2 of plan n = (j / 2) * 4 + 1.
CREATE TEMP TABLE bench_deliveries ON COMMIT DROP AS
WITH raw AS (
    SELECT i, i / 2 AS j, i % 2 AS a,
           least((i / 4) * 4 + 1, (:records)::bigint) AS n,
           (i / 2) % 2 AS o
      FROM generate_series(0::bigint, (:records)::bigint - 1) AS i
), outcome AS (
    SELECT raw.*,
           CASE WHEN j % 20 < 10 THEN a = 1
                WHEN j % 20 = 16 OR j % 20 = 18 THEN false
                WHEN j % 20 = 17 THEN a = 0
                ELSE true END AS success,
           CASE WHEN j % 20 < 10 AND a = 0
                THEN (ARRAY[503, 0, 429, 404, 500])[1 + (j / 20) % 5]
                WHEN j % 20 = 16 THEN 503
                WHEN j % 20 = 17 AND a = 1 THEN 429
                WHEN j % 20 = 18 THEN CASE WHEN a = 0 THEN 0 ELSE 404 END
                ELSE 200 END AS status_code
      FROM raw
), timed AS (
    SELECT o2.*, p.plan_id, r.provider,
           p.generated_at + interval '5 minutes'
               + a * interval '15 minutes' AS t,
           i % 3 <> 0 AS has_times
      FROM outcome o2
      JOIN bench_plans p ON p.n = o2.n
      JOIN bench_routes r ON r.n = o2.n AND r.o = o2.o
)
SELECT t1.*,
       pg_temp.bench_id('rcd-', bp.base + i + 1) AS delivery_id,
       CASE WHEN success THEN 1 ELSE 1 + j % 3 END AS attempt_count,
       CASE WHEN has_times THEN t - interval '2 seconds' END AS started_at,
       CASE WHEN has_times THEN t END AS completed_at,
       t + interval '1 second' AS created_at,
       CASE WHEN has_times THEN t ELSE t + interval '1 second' END
           AS attempt_at,
       CASE WHEN success THEN NULL
            WHEN status_code = 0 THEN 'connection refused'
            WHEN status_code = 404 THEN 'not found'
            WHEN status_code = 429 THEN 'rate limited'
            WHEN status_code = 500 THEN 'internal server error'
            ELSE 'service unavailable' END AS error
  FROM timed t1 CROSS JOIN bench_param bp;

-- A record is stored once, in its evidence event (migration 0013).
CREATE TEMP TABLE bench_delivery_records ON COMMIT DROP AS
SELECT d.*,
       jsonb_build_object(
           'schema_version', 'cavra.go-backend-pilot.rollback-drill-acknowledgement-'
                     'audit-delivery-connector-delivery.v1',
           'delivery_id', delivery_id,
           'plan_id', plan_id,
           'provider', provider,
           'delivery_success', success,
           'status_codes', jsonb_build_array(status_code),
           'attempt_count', attempt_count,
           'started_at', pg_temp.bench_ts(started_at),
           'completed_at', pg_temp.bench_ts(completed_at),
           'created_at', pg_temp.bench_ts(created_at),
           'error', error,
           'connector_delivery_source', 'go_backend_rollback_drill_'
               'acknowledgement_audit_recovery_escalation',
           'metadata_kind', 'release-connector-delivery',
           'redaction_count', 0) AS record
  FROM bench_deliveries d;

INSERT INTO delivery_attempts (delivery_id, plan_id, provider, success,
    status_code, attempt_count, started_at, completed_at, attempt_at,
    created_at, request_id)
SELECT delivery_id, plan_id, provider, success, status_code, attempt_count,
       started_at, completed_at, attempt_at, created_at, 'bench-seed'
  FROM bench_delivery_records
 ORDER BY created_at, i;

-- Acknowledgements: k = 0..records-1 on pair j = (k / 4) * 3 +
-- least(k % 4, 2) (so k % 4 = 3 acknowledges the pair of k % 4 = 2 again,
-- later), route o = j % 2 of plan n = (j / 2) * 8 / 3 + 1.
CREATE TEMP TABLE bench_acks ON COMMIT DROP AS
WITH raw AS (
    SELECT k, (k / 4) * 3 + least(k % 4, 2) AS j
      FROM generate_series(0::bigint, (:records)::bigint - 1) AS k
), placed AS (
    SELECT raw.*, least((j / 2) * 8 / 3 + 1, (:records)::bigint) AS n,
           j % 2 AS o,
           CASE WHEN k % 4 < 2
                THEN (ARRAY['acknowledged', 'accepted', 'deferred',
                            'escalated', 'resolved', 'dismissed'])
                         [1 + ((k / 4) * 2 + k % 4) % 6]
                WHEN k % 4 = 2 THEN 'acknowledged'
                ELSE (ARRAY['resolved', 'accepted', 'dismissed',
                            'escalated'])[1 + (j / 3) % 4] END AS state
      FROM raw
)
SELECT pl.*, p.plan_id, r.provider,
       pg_temp.bench_id('gordackrecoveryescack-', bp.base + k + 1)
           AS acknowledgement_id,
       p.generated_at + interval '30 minutes'
           + (k % 4) * interval '15 minutes' AS acknowledged_at
  FROM placed pl
  JOIN bench_plans p ON p.n = pl.n
  JOIN bench_routes r ON r.n = pl.n AND r.o = pl.o
  CROSS JOIN bench_param bp;

CREATE TEMP TABLE bench_ack_records ON COMMIT DROP AS
SELECT a.*,
       jsonb_build_object(
           'schema_version', 'cavra.go-backend-pilot.rollback-drill-acknowledgement-'
                     'audit-delivery-recovery-escalation-ack.v1',
           'product', 'CAVRA',
           'acknowledgement_id', acknowledgement_id,
           'plan_id', plan_id,
           'provider', provider,
           'acknowledged_by', 'bench-seed',
           'acknowledgement_state', state,
           'acknowledged_at', pg_temp.bench_ts(acknowledged_at),
           'external_ref', 'CHG-' || (10000 + k % 9000),
           'notes', 'bench seed acknowledgement',
           'escalation_reason', CASE WHEN state = 'escalated'
                                     THEN 'needs the platform owner' END,
           'redaction_count', 0) AS record
  FROM bench_acks a;

INSERT INTO acknowledgements (acknowledgement_id, plan_id, provider,
    acknowledgement_state, acknowledged_at)
SELECT acknowledgement_id, plan_id, provider, state, acknowledged_at
  FROM bench_ack_records
 ORDER BY acknowledged_at, k;

-- The latest acknowledgement of each seeded pair (ack_upsert_current).
INSERT INTO ack_current (plan_id, provider, acknowledgement_id,
    acknowledgement_state, seq)
SELECT DISTINCT ON (a.plan_id, a.provider)
       a.plan_id, a.provider, a.acknowledgement_id, a.acknowledgement_state,
       a.seq
  FROM acknowledgements a JOIN bench_acks b USING (acknowledgement_id)
 ORDER BY a.plan_id, a.provider, a.seq DESC
ON CONFLICT (plan_id, provider) DO UPDATE SET
    acknowledgement_id = EXCLUDED.acknowledgement_id,
    acknowledgement_state = EXCLUDED.acknowledgement_state,
    seq = EXCLUDED.seq
  WHERE ack_current.seq < EXCLUDED.seq;

-- One evidence event per record, in created_at order (as cv_evidence_append
-- would have appended them: plan actor = generated_by, delivery actor =
-- none in sandbox mode, acknowledgement actor = acknowledged_by).
INSERT INTO evidence_events (kind, record_id, plan_id, provider, actor,
    request_id, created_at, record)
SELECT kind, record_id, plan_id, provider, actor, 'bench-seed', created_at,
       record
  FROM (SELECT 'recovery_escalation_plan' AS kind, plan_id AS record_id,
               plan_id, NULL::text AS provider, 'bench-seed' AS actor,
               generated_at AS created_at, record
          FROM bench_plans
        UNION ALL
        SELECT 'connector_delivery', delivery_id, plan_id, provider,
               NULL, created_at, record
          FROM bench_delivery_records
        UNION ALL
        SELECT 'recovery_escalation_ack', acknowledgement_id, plan_id,
               provider, 'bench-seed', acknowledged_at, record
          FROM bench_ack_records) ev
 ORDER BY created_at, kind, record_id;

COMMIT;

SELECT (SELECT count(*) FROM escalation_plans
         WHERE generated_by = 'bench-seed') AS seeded_plans,
       (SELECT count(*) FROM delivery_attempts
         WHERE request_id = 'bench-seed') AS seeded_deliveries,
       (SELECT count(*) FROM evidence_events
         WHERE kind = 'recovery_escalation_ack'
           AND request_id = 'bench-seed') AS seeded_acks,
       (SELECT count(*) FROM evidence_events
         WHERE request_id = 'bench-seed') AS seeded_events;
