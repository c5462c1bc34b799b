-- 0001: the evidence stream, escalation plans and acknowledgements.
--
-- Every table keeps indexed columns for the queries the services run plus
-- the full public-safe record as jsonb, exactly as it was returned.

CREATE TABLE evidence_events (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL,
    record_id   text        NOT NULL,
    plan_id     text,
    provider    text,
    actor       text,
    request_id  text,
    created_at  timestamptz NOT NULL,
    record      jsonb       NOT NULL,
    -- Filled once by the evidence sequencer (hash chain); request
    -- transactions never touch them, so they never serialise on a lock.
    chain_seq   bigint UNIQUE,
    prev_hash   bytea,
    hash        bytea
);
CREATE UNIQUE INDEX evidence_events_record ON evidence_events (kind, record_id);
CREATE INDEX evidence_events_plan ON evidence_events (plan_id, id);
CREATE INDEX evidence_events_kind ON evidence_events (kind, id);
CREATE INDEX evidence_events_provider ON evidence_events (provider, id);

-- Append-only: no DELETE; UPDATE only to set the chain columns once.
CREATE FUNCTION evidence_events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'evidence_events is append-only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.chain_seq IS NOT NULL
       OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.record_id IS DISTINCT FROM OLD.record_id
       OR NEW.plan_id IS DISTINCT FROM OLD.plan_id
       OR NEW.provider IS DISTINCT FROM OLD.provider
       OR NEW.actor IS DISTINCT FROM OLD.actor
       OR NEW.request_id IS DISTINCT FROM OLD.request_id
       OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR NEW.record IS DISTINCT FROM OLD.record THEN
        RAISE EXCEPTION 'evidence_events is append-only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER evidence_events_append_only
    BEFORE UPDATE OR DELETE ON evidence_events
    FOR EACH ROW EXECUTE FUNCTION evidence_events_guard();
CREATE FUNCTION evidence_events_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence_events is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER evidence_events_no_truncate
    BEFORE TRUNCATE ON evidence_events
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_events_no_truncate();

CREATE TABLE escalation_plans (
    plan_id                   text PRIMARY KEY,
    seq                       bigserial NOT NULL UNIQUE,
    generated_at              timestamptz NOT NULL,
    generated_by              text NOT NULL,
    alert_level               text NOT NULL,
    recovery_slo_minutes      integer NOT NULL,
    escalation_count          integer NOT NULL,
    critical_escalation_count integer NOT NULL,
    slo_breached_count        integer NOT NULL,
    failed_execution_count    bigint NOT NULL,
    open_recovery_count       integer NOT NULL,
    providers                 text[] NOT NULL,
    request_id                text,
    record                    jsonb NOT NULL,
    metadata                  jsonb NOT NULL
);
CREATE INDEX escalation_plans_generated ON escalation_plans (generated_at);

-- One row per route, for per-provider reporting without unpacking jsonb.
CREATE TABLE plan_routes (
    plan_id       text NOT NULL REFERENCES escalation_plans (plan_id),
    position      integer NOT NULL,
    provider      text NOT NULL,
    category      text NOT NULL,
    severity      text NOT NULL,
    closure_state text NOT NULL,
    age_minutes   bigint NOT NULL,
    failure_count bigint NOT NULL,
    slo_breached  boolean NOT NULL,
    PRIMARY KEY (plan_id, position)
);
CREATE INDEX plan_routes_provider ON plan_routes (provider);

CREATE TABLE acknowledgements (
    acknowledgement_id    text PRIMARY KEY,
    seq                   bigserial NOT NULL UNIQUE,
    plan_id               text NOT NULL REFERENCES escalation_plans (plan_id),
    provider              text NOT NULL,
    acknowledged_by       text NOT NULL,
    acknowledgement_state text NOT NULL,
    acknowledged_at       timestamptz NOT NULL,
    request_id            text,
    record                jsonb NOT NULL,
    metadata              jsonb NOT NULL
);
CREATE INDEX acknowledgements_pair ON acknowledgements (plan_id, provider, seq DESC);
CREATE INDEX acknowledgements_time ON acknowledgements (acknowledged_at);

-- The current review state of each (plan, provider): the latest ack.
-- Upserted in the acknowledging transaction; only a later seq wins.
CREATE TABLE ack_current (
    plan_id               text NOT NULL,
    provider              text NOT NULL,
    acknowledgement_id    text NOT NULL,
    acknowledgement_state text NOT NULL,
    seq                   bigint NOT NULL,
    PRIMARY KEY (plan_id, provider)
);
