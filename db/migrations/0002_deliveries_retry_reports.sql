-- 0002: delivery attempts, retry plans, report schedules, runs and
-- executive reports.

CREATE TABLE delivery_attempts (
    delivery_id   text PRIMARY KEY,
    seq           bigserial NOT NULL UNIQUE,
    plan_id       text NOT NULL REFERENCES escalation_plans (plan_id),
    provider      text NOT NULL,
    success       boolean NOT NULL,
    status_code   integer,
    attempt_count integer NOT NULL,
    started_at    timestamptz,
    completed_at  timestamptz,
    -- completed_at, else started_at, else created_at: the attempt's time
    -- for retry ordering (ties broken by seq).
    attempt_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    request_id    text,
    record        jsonb NOT NULL
);
CREATE INDEX delivery_attempts_pair
    ON delivery_attempts (plan_id, provider, attempt_at DESC, seq DESC);
CREATE INDEX delivery_attempts_created ON delivery_attempts (created_at);
CREATE INDEX delivery_attempts_failed
    ON delivery_attempts (created_at) WHERE NOT success;

CREATE TABLE retry_plans (
    retry_plan_id    text PRIMARY KEY,
    seq              bigserial NOT NULL UNIQUE,
    generated_at     timestamptz NOT NULL,
    generated_by     text NOT NULL,
    plan_id          text,
    alert_level      text NOT NULL,
    decision_count   integer NOT NULL,
    retryable_count  integer NOT NULL,
    waiting_count    integer NOT NULL,
    suppressed_count integer NOT NULL,
    request_id       text,
    record           jsonb NOT NULL,
    metadata         jsonb NOT NULL
);
CREATE INDEX retry_plans_generated ON retry_plans (generated_at);

-- One row per decision, so the trace finds the retry plans naming a plan.
CREATE TABLE retry_decisions (
    retry_plan_id text NOT NULL REFERENCES retry_plans (retry_plan_id),
    plan_id       text NOT NULL,
    provider      text NOT NULL,
    action        text NOT NULL,
    PRIMARY KEY (retry_plan_id, plan_id, provider)
);
CREATE INDEX retry_decisions_plan ON retry_decisions (plan_id);

CREATE TABLE report_schedules (
    schedule_id          text PRIMARY KEY,
    interval_minutes     integer NOT NULL,
    cadence              text NOT NULL,
    enabled              boolean NOT NULL,
    recovery_slo_minutes integer NOT NULL,
    generated_by         text NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

-- Exactly one run per (schedule, window): the unique constraint is what
-- makes concurrent callers and replicas agree.
CREATE TABLE report_runs (
    run_id          text PRIMARY KEY,
    seq             bigserial NOT NULL UNIQUE,
    schedule_id     text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    generated_at    timestamptz NOT NULL,
    generated_by    text NOT NULL,
    alert_level     text NOT NULL,
    request_id      text,
    record          jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    report_metadata jsonb NOT NULL,
    UNIQUE (schedule_id, window_start)
);
CREATE INDEX report_runs_generated ON report_runs (generated_at);

CREATE TABLE executive_reports (
    report_id    text PRIMARY KEY,
    run_id       text NOT NULL UNIQUE REFERENCES report_runs (run_id),
    generated_at timestamptz NOT NULL,
    record       jsonb NOT NULL
);

-- The plans a run's report counted (open at generation time or active in
-- the window), so the trace finds the runs that counted a plan.
CREATE TABLE report_run_plans (
    run_id  text NOT NULL REFERENCES report_runs (run_id),
    plan_id text NOT NULL,
    PRIMARY KEY (run_id, plan_id)
);
CREATE INDEX report_run_plans_plan ON report_run_plans (plan_id);
