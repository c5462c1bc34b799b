-- 0006: lets the evidence sequencer find unchained events quickly.
CREATE INDEX evidence_events_unchained ON evidence_events (id)
    WHERE chain_seq IS NULL;
