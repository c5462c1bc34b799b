-- 0003: retry planning. The latest successful delivery of a (plan,
-- provider) pair is one probe of this partial index, so a retry plan
-- reads only each pair's current failure streak (retry_sql.c).
CREATE INDEX delivery_attempts_pair_success
    ON delivery_attempts (plan_id, provider, attempt_at DESC, seq DESC)
    WHERE success;
