-- 0005: stored replies of calls made with an Idempotency-Key (docs/api.md).
-- Scoped by the verified actor (or '' in sandbox mode) and the RPC method.
CREATE TABLE idempotency_keys (
    scope           text NOT NULL,
    method          text NOT NULL,
    idempotency_key text NOT NULL,
    request_sha256  text NOT NULL,
    reply           bytea NOT NULL,
    existing        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, method, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
