-- 0010: evidence says who and through what. `actor` is the person (or
-- principal) the record was made for; `principal` is the RPC caller whose
-- signed envelope carried the call (e.g. actor alice via gateway). Events
-- stored before this migration have no principal (NULL), and the chain's
-- canonical form leaves the key out for them, so their hashes still hold.
ALTER TABLE evidence_events ADD COLUMN IF NOT EXISTS principal text;
