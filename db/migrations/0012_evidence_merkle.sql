-- 0012: the evidence stream becomes the leaves of an RFC 6962 Merkle tree
-- (docs/evidence.md), stored as C2SP tlog-tiles, with a cache of signed checkpoints.
--
-- One source of truth:
--  - evidence_events.chain_seq is the leaf position (leaf index =
--    chain_seq - 1), given once by the sequencer in id order, as before;
--  - evidence_tiles holds the tree: the tile at (level, idx) holds the
--    hashes of tree level 8 * level, nodes idx * 256 .. idx * 256 + 255
--    (a partial tile holds fewer; its width is length(hashes) / 32). Level
--    0 tiles are the leaf hashes. Any node of the tree is one tile row
--    plus at most 255 hashes of work (cv_tile_locate), so a proof or a
--    root reads O(log n) rows, in one query;
--  - the tree size is the number of leaf hashes in the level 0 tiles.
-- The old linear chain (prev_hash, hash) stays on the rows that have it,
-- for history only: nothing reads it any more, and the sequencer no
-- longer writes it (the app role loses UPDATE on those columns). Events
-- chained before this migration become leaves in chain_seq order the
-- first time the sequencer runs (cv_chain.h).
--
-- evidence_checkpoints caches the checkpoints the signer has witnessed:
-- the anchor is the witness log outside PostgreSQL (CAVRA_WITNESS_DIR);
-- this table only serves them (GET /runtime/evidence/checkpoint, proofs
-- against an older size) and is checked against the witness by verify.

-- An inclusion proof finds its event by record id alone (the unique index
-- leads with kind).
CREATE INDEX evidence_events_record_id ON evidence_events (record_id);

CREATE TABLE evidence_tiles (
    level  integer NOT NULL CHECK (level >= 0 AND level < 8),
    idx    bigint  NOT NULL CHECK (idx >= 0),
    hashes bytea   NOT NULL CHECK (length(hashes) BETWEEN 32 AND 8192
                                   AND length(hashes) % 32 = 0),
    PRIMARY KEY (level, idx)
);

-- Tiles only grow: no DELETE or TRUNCATE, and an UPDATE may only append
-- hashes to a partial tile (a full tile, 256 hashes, never changes). The
-- sequencer extends the rightmost partial tile of each level this way.
CREATE FUNCTION evidence_tiles_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR NEW.level IS DISTINCT FROM OLD.level
       OR NEW.idx IS DISTINCT FROM OLD.idx
       OR length(OLD.hashes) >= 8192
       OR length(NEW.hashes) <= length(OLD.hashes)
       OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes))
          IS DISTINCT FROM OLD.hashes THEN
        RAISE EXCEPTION 'evidence_tiles is append-only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER evidence_tiles_append_only
    BEFORE UPDATE OR DELETE ON evidence_tiles
    FOR EACH ROW EXECUTE FUNCTION evidence_tiles_guard();
CREATE FUNCTION evidence_tiles_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence_tiles is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER evidence_tiles_no_truncate
    BEFORE TRUNCATE ON evidence_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_tiles_no_truncate();

CREATE TABLE evidence_checkpoints (
    id        bigserial   PRIMARY KEY,
    tree_size bigint      NOT NULL CHECK (tree_size >= 0),
    root      bytea       NOT NULL CHECK (length(root) = 32),
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evidence_checkpoints_size ON evidence_checkpoints (tree_size, id);

CREATE FUNCTION evidence_checkpoints_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence_checkpoints is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER evidence_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON evidence_checkpoints
    FOR EACH ROW EXECUTE FUNCTION evidence_checkpoints_guard();
CREATE TRIGGER evidence_checkpoints_no_truncate
    BEFORE TRUNCATE ON evidence_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_checkpoints_guard();

-- The app role (0009): SELECT and INSERT on both tables (the default
-- privileges already grant them; said again so the grant does not depend
-- on who created the tables), UPDATE of evidence_tiles.hashes only (the
-- trigger above lets it append to partial tiles, nothing else), and no
-- longer UPDATE of the old chain columns: the sequencer sets chain_seq
-- only.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cavra_app') THEN
        GRANT SELECT, INSERT ON evidence_tiles, evidence_checkpoints
            TO cavra_app;
        GRANT USAGE, SELECT ON SEQUENCE evidence_checkpoints_id_seq
            TO cavra_app;
        GRANT UPDATE (hashes) ON evidence_tiles TO cavra_app;
        REVOKE UPDATE (prev_hash, hash) ON evidence_events FROM cavra_app;
    END IF;
END;
$$;
