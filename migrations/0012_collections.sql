-- Collections (代收, SPEC 16): a debit of a payer's bank card into an account, through the
-- simulated banks like a payout (submitted, acked, queried when silent, never resent), and
-- with `advance_on_failure` (还款划扣 with 公司垫付) a failed debit fronted from the merchant's
-- advance line, repaid first by the next successful collection from the same payer.

CREATE TABLE collections (
    id                 text PRIMARY KEY,       -- col_…
    merchant_id        text NOT NULL REFERENCES merchants (id),
    merchant_order_id  text NOT NULL,
    request_hash       text NOT NULL,
    account_id         text NOT NULL REFERENCES customer_accounts (id),
    amount_fen         bigint NOT NULL CHECK (amount_fen BETWEEN 1 AND 10000000000000),
    currency           text NOT NULL,
    payer              jsonb NOT NULL,
    payer_account_no   text NOT NULL,          -- payer->>'account_no': whose advance it repays
    advance_on_failure boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'succeeded', 'failed')),
    version            integer NOT NULL DEFAULT 1,
    bank_id            text,
    bank_ref           text,
    failure_code       text,
    failure_message    text,
    advanced_fen       bigint NOT NULL DEFAULT 0 CHECK (advanced_fen >= 0),  -- fronted on failure
    repaid_fen         bigint NOT NULL DEFAULT 0 CHECK (repaid_fen >= 0),    -- of earlier advances
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (advanced_fen = 0 OR (status = 'failed' AND advance_on_failure
                                AND advanced_fen = amount_fen)),
    CHECK (repaid_fen <= amount_fen AND (repaid_fen = 0 OR status = 'succeeded')),
    UNIQUE (merchant_id, merchant_order_id)
) WITH (fillfactor = 70);
CREATE INDEX collections_merchant_id ON collections (merchant_id, id);

-- The open collections and where each stands with its bank: the same states and columns as
-- payout_queue (migration 0008), so one dispatcher and one poller serve both.
CREATE TABLE collection_queue (
    collection_id text PRIMARY KEY,
    state         text NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'sending', 'acked', 'unknown')),
    attempts      integer NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL DEFAULT now(),
    poll_at       timestamptz,
    poll_count    integer NOT NULL DEFAULT 0,
    submitted_at  timestamptz
);
ALTER TABLE collection_queue SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX collection_queue_due ON collection_queue (next_at) WHERE state = 'queued';
CREATE INDEX collection_queue_poll ON collection_queue (poll_at)
    WHERE state IN ('sending', 'acked', 'unknown');

-- What the company fronted for one payer of one merchant and is still owed (公司垫付).
CREATE TABLE collection_advances (
    merchant_id      text NOT NULL REFERENCES merchants (id),
    payer_account_no text NOT NULL,
    outstanding_fen  bigint NOT NULL CHECK (outstanding_fen >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, payer_account_no)
);

-- Withdrawals (提现, SPEC 16): a payout drawn from a personal account (个转商 + 代付 in one).
-- The account's money moves to the merchant's available in the accept transaction; a failed,
-- rejected or returned withdrawal gives it back to the account.
ALTER TABLE payouts ADD COLUMN account_id text REFERENCES customer_accounts (id);
