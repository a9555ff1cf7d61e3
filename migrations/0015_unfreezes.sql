-- Unfreezes (解冻, SPEC 16) are idempotent by merchant_order_id: each is a row written in the
-- transaction of its release postings, so a retry with the same key finds it and answers
-- again (`answer`: the freeze as that unfreeze left it) instead of releasing twice. The
-- unique key settles concurrent retries: one commits, the others find its row.
CREATE TABLE unfreezes (
    id                text PRIMARY KEY,        -- unf_…
    merchant_id       text NOT NULL REFERENCES merchants (id),
    merchant_order_id text NOT NULL,
    request_hash      text NOT NULL,           -- the body's fingerprint (fingerprint.py)
    freeze_id         text NOT NULL REFERENCES freezes (id),
    amount_fen        bigint NOT NULL CHECK (amount_fen > 0),
    answer            json NOT NULL,           -- json, not jsonb: the answer's text as sent
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, merchant_order_id)
);
