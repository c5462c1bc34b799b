-- 0015: the append-only guard of evidence_events (0001) no longer runs a
-- PL/pgSQL call per event the sequencer sequences.
--
-- The one trigger fired on every UPDATE and compared every column of the
-- old and new row, the record (jsonb, usually compressed or in TOAST)
-- included: for the sequencer's UPDATE of chain_seq that was a function
-- call, two detoasts and a jsonb comparison per event, about a tenth of
-- the sequencer's database time. The same rules now hang on the columns an
-- UPDATE names (a trigger "UPDATE OF c" fires when c is a target of the
-- UPDATE, whatever the value):
--  - evidence_events_append_only (same name, so a maintainer who disables
--    it to repair a record still can): DELETE, or an UPDATE naming any
--    column of the event, runs the unchanged evidence_events_guard
--    (refused unless it changes nothing of the event and the event is not
--    sequenced yet);
--  - evidence_events_chain_once: an UPDATE naming only chain columns is
--    refused when the event already has its position (the WHEN clause is
--    evaluated without calling any function; the sequencer's UPDATE of
--    unsequenced events never fires it).
-- Together they name every column of the table, so every UPDATE meets at
-- least one; a column added later must be added to one of them.
DROP TRIGGER evidence_events_append_only ON evidence_events;
CREATE TRIGGER evidence_events_append_only
    BEFORE UPDATE OF id, kind, record_id, plan_id, provider, actor,
                     request_id, created_at, record, principal
        OR DELETE ON evidence_events
    FOR EACH ROW EXECUTE FUNCTION evidence_events_guard();
CREATE TRIGGER evidence_events_chain_once
    BEFORE UPDATE OF chain_seq, prev_hash, hash ON evidence_events
    FOR EACH ROW WHEN (OLD.chain_seq IS NOT NULL)
    EXECUTE FUNCTION evidence_events_guard();
