-- 0008: lets readers page the stream without skipping late commits.
--
-- Event ids come from a sequence, so a transaction can commit id 10 after
-- another committed id 11 and a reader paged past 11. Each event now
-- records the transaction that wrote it; stream pages only show events of
-- transactions older than every transaction still running (the snapshot's
-- xmin), so everything below a page's cursor is final when it is read.
ALTER TABLE evidence_events
    ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
