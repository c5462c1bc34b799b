-- 0013: every record is stored once, in its evidence event.
--
-- Until now a record lived in up to four places: its table row (record
-- jsonb), the row's metadata (jsonb that embeds the record again), a
-- report run's report metadata and executive_reports row (the report a
-- third and fourth time), and the evidence event (the record once more).
-- The evidence event is the audit trail and must keep the public-safe
-- record (its Merkle leaf covers it), so it is the one copy. The domain
-- tables keep only the columns their constraints and queries use; a row's
-- record is its event: evidence_events (kind, record_id), which is unique
-- (evidence_events_record). Replies, metadata and history items are
-- rendered from that one copy by the services.
--
-- Old rows stay readable: every record these tables hold was appended to
-- the evidence stream in the same transaction, with the same JSON. The
-- check below refuses to drop a column while a row lacks its event, so
-- nothing is lost. Records stored before the schema_version /
-- executive_report_id rename keep their old key names in the evidence
-- (events are never rewritten); readers rename them when they load a
-- record (cv_record_load).
DO $$
DECLARE
    missing bigint;
BEGIN
    SELECT (SELECT count(*) FROM escalation_plans t WHERE NOT EXISTS (
                SELECT 1 FROM evidence_events e
                 WHERE e.kind = 'recovery_escalation_plan'
                   AND e.record_id = t.plan_id))
         + (SELECT count(*) FROM acknowledgements t WHERE NOT EXISTS (
                SELECT 1 FROM evidence_events e
                 WHERE e.kind = 'recovery_escalation_ack'
                   AND e.record_id = t.acknowledgement_id))
         + (SELECT count(*) FROM delivery_attempts t WHERE NOT EXISTS (
                SELECT 1 FROM evidence_events e
                 WHERE e.kind = 'connector_delivery'
                   AND e.record_id = t.delivery_id))
         + (SELECT count(*) FROM retry_plans t WHERE NOT EXISTS (
                SELECT 1 FROM evidence_events e
                 WHERE e.kind = 'recovery_escalation_retry_plan'
                   AND e.record_id = t.retry_plan_id))
         + (SELECT count(*) FROM report_runs t WHERE NOT EXISTS (
                SELECT 1 FROM evidence_events e
                 WHERE e.kind = 'executive_report_schedule_run'
                   AND e.record_id = t.run_id))
      INTO missing;
    IF missing > 0 THEN
        RAISE EXCEPTION '0013: % stored records have no evidence event; '
                        'not dropping their only copy', missing;
    END IF;
END;
$$;

ALTER TABLE escalation_plans DROP COLUMN record, DROP COLUMN metadata;

-- Acknowledgements are the most numerous records: their rows keep only
-- what the report, trace and dashboard queries read. Who acknowledged and
-- the request id are the event's actor and request_id. The pair index is
-- the primary key (the latest acknowledgement of a pair is one probe);
-- acknowledgement_id stays as the event's record_id, unique through the
-- event's (kind, record_id) index, written in the same transaction. The
-- time index is a BRIN: acknowledged_at grows with insertion order, and
-- window counts need ranges of pages, not one entry per row.
ALTER TABLE acknowledgements DROP CONSTRAINT acknowledgements_pkey;
ALTER TABLE acknowledgements DROP CONSTRAINT acknowledgements_seq_key;
DROP INDEX acknowledgements_pair;
DROP INDEX acknowledgements_time;
ALTER TABLE acknowledgements
    DROP COLUMN record, DROP COLUMN metadata, DROP COLUMN acknowledged_by,
    DROP COLUMN request_id;
ALTER TABLE acknowledgements
    ADD CONSTRAINT acknowledgements_pkey PRIMARY KEY (plan_id, provider, seq);
CREATE INDEX acknowledgements_time ON acknowledgements
    USING brin (acknowledged_at);
ALTER TABLE delivery_attempts DROP COLUMN record;
ALTER TABLE retry_plans DROP COLUMN record, DROP COLUMN metadata;
ALTER TABLE report_runs
    DROP COLUMN record, DROP COLUMN metadata, DROP COLUMN report_metadata;
ALTER TABLE executive_reports DROP COLUMN record;

-- The latest executive report and the run history read runs newest first.
CREATE INDEX report_runs_schedule_seq ON report_runs (schedule_id, seq DESC);

-- Give the space of the dropped columns back now (DROP COLUMN alone only
-- hides them): rewrite each table once, in its primary key's order.
CLUSTER escalation_plans USING escalation_plans_pkey;
CLUSTER acknowledgements USING acknowledgements_pkey;
CLUSTER delivery_attempts USING delivery_attempts_pkey;
CLUSTER retry_plans USING retry_plans_pkey;
CLUSTER report_runs USING report_runs_pkey;
CLUSTER executive_reports USING executive_reports_pkey;
