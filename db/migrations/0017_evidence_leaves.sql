-- 0017: leaf positions move out of evidence_events into the insert-only
-- table evidence_leaves, so no event is ever UPDATEd (docs/evidence.md).
--
-- Until now the sequencer gave each event its position with
-- UPDATE evidence_events SET chain_seq: chain_seq is indexed, so every
-- event was written twice (a second heap tuple and a new entry in each of
-- the table's eight indexes, then vacuum work for the dead one). Now:
--  - evidence_leaves(seq, event_id) says which event is leaf seq (leaf
--    index seq - 1). The sequencer only INSERTs it: one small tuple and
--    two index entries per event. Rows never change (no UPDATE, DELETE or
--    TRUNCATE, for anybody: the triggers below), and each INSERT
--    statement must continue the positions, max + 1 upwards, without a
--    hole (one statement-level check per batch).
--  - id_floor is the sequencer's note of where its search for new events
--    may start: every event with id <= id_floor had a leaf, or never
--    committed, when the leaf was written. It is a hint only (verification
--    ignores it and counts unsequenced events over the whole table); how
--    the sequencer keeps it safe is in lib/cv_chain.h.
--  - No event is there without its event (event_id is unique), but there
--    is no foreign key: an RI check per leaf would be a query and a row
--    lock (a write to the event's heap page) per event, and events cannot
--    be deleted anyway; a leaf whose event is gone shows as a missing
--    position in verification.
--  - evidence_events.chain_seq stays as a column, for history (it is what
--    older exports, checkpoints and tickets refer to; the copy below keeps
--    every value), but nothing writes or reads it any more: its unique
--    index and the partial index of unsequenced events (0006) go, so an
--    INSERT maintains two indexes fewer.
--  - evidence_events is now append-only without exception: the app role
--    loses UPDATE entirely, and the guard refuses every UPDATE (one row
--    trigger again, as in 0001: nobody UPDATEs, so it never runs in the
--    normal course).
--  - Event ids come from evidence_next_id(), which gives the inserting
--    transaction its transaction id before it takes the next id: the
--    sequencer's search relies on that order (lib/cv_chain.h), and on the
--    sequence handing out ids one at a time (CACHE 1).

-- No writer may be half way through an event while the positions move.
LOCK TABLE evidence_events IN SHARE MODE;

CREATE TABLE evidence_leaves (
    seq      bigint PRIMARY KEY CHECK (seq > 0),
    event_id bigint NOT NULL UNIQUE,
    id_floor bigint NOT NULL DEFAULT 0
);

-- Every event that has a position keeps it. The floor of the last leaf:
-- every event below the first unsequenced one has a leaf, and no writer
-- is in flight (the lock above).
INSERT INTO evidence_leaves (seq, event_id)
SELECT chain_seq, id FROM evidence_events WHERE chain_seq IS NOT NULL;
UPDATE evidence_leaves SET id_floor = coalesce(
    (SELECT min(e.id) - 1 FROM evidence_events e WHERE e.chain_seq IS NULL),
    (SELECT max(id) FROM evidence_events), 0)
WHERE seq = (SELECT max(seq) FROM evidence_leaves);

-- One refusal for every table that only ever grows by INSERT (leaves
-- and, below, events), as a row and as a TRUNCATE trigger.
CREATE FUNCTION evidence_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER evidence_leaves_append_only
    BEFORE UPDATE OR DELETE ON evidence_leaves
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER evidence_leaves_no_truncate
    BEFORE TRUNCATE ON evidence_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();

-- The positions an INSERT adds continue the log: n rows, seq from the old
-- maximum + 1 to the old maximum + n (seq is the primary key, so n rows
-- between those bounds are each of them once). One call per statement,
-- i.e. per sequencer batch.
CREATE FUNCTION evidence_leaves_contiguous() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint;
    hi bigint;
    n  bigint;
BEGIN
    SELECT min(seq), max(seq), count(*) INTO lo, hi, n FROM new_leaves;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF hi - lo + 1 <> n
       OR EXISTS (SELECT 1 FROM evidence_leaves WHERE seq > hi)
       OR (lo > 1 AND NOT EXISTS (SELECT 1 FROM evidence_leaves
                                  WHERE seq = lo - 1)) THEN
        RAISE EXCEPTION 'evidence_leaves must continue the log without a gap'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER evidence_leaves_contiguous
    AFTER INSERT ON evidence_leaves
    REFERENCING NEW TABLE AS new_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_leaves_contiguous();

-- The events that have no leaf yet (for operators, benchmarks and tests;
-- a scan of the whole table, which the sequencer never makes).
CREATE VIEW evidence_unsequenced AS
SELECT e.* FROM evidence_events e
WHERE NOT EXISTS (SELECT 1 FROM evidence_leaves l WHERE l.event_id = e.id);

-- evidence_events: nobody updates it any more.
ALTER TABLE evidence_events DROP CONSTRAINT evidence_events_chain_seq_key;
DROP INDEX evidence_events_unchained;
DROP TRIGGER evidence_events_chain_once ON evidence_events;
DROP TRIGGER evidence_events_append_only ON evidence_events;
-- Its function allowed setting the chain columns once; nothing may now.
DROP FUNCTION evidence_events_guard();
CREATE TRIGGER evidence_events_append_only
    BEFORE UPDATE OR DELETE ON evidence_events
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();

-- The transaction id first, then the event id (see lib/cv_chain.h: a
-- transaction holding an id below what the sequencer read from the
-- sequence then has a transaction id below the sequencer's own). The
-- function is inlined into the INSERT; pg_current_xact_id() only assigns
-- the id the row's INSERT would assign a moment later.
CREATE FUNCTION evidence_next_id() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN pg_current_xact_id() IS NOT NULL
                THEN nextval('evidence_events_id_seq') END
$$;
ALTER SEQUENCE evidence_events_id_seq CACHE 1;
ALTER TABLE evidence_events ALTER COLUMN id SET DEFAULT evidence_next_id();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cavra_app') THEN
        GRANT SELECT, INSERT ON evidence_leaves TO cavra_app;
        GRANT SELECT ON evidence_unsequenced TO cavra_app;
        REVOKE UPDATE ON evidence_events FROM cavra_app;
        REVOKE UPDATE (chain_seq, prev_hash, hash) ON evidence_events
            FROM cavra_app;
    END IF;
END;
$$;
