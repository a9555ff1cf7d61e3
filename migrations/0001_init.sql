-- Paygate schema: merchants, double-entry ledger, payouts, B2B payments, outbox, clock.
-- Amounts are bigint minor units (fen). Never edit once landed: add a new numbered file.

CREATE TABLE merchants (
    id                   text PRIMARY KEY,
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret               text NOT NULL,
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    funding_mode         text NOT NULL CHECK (funding_mode IN ('prefunded', 'advance')),
    currency             text NOT NULL DEFAULT 'CNY',
    advance_limit_fen    bigint NOT NULL DEFAULT 0 CHECK (advance_limit_fen >= 0),
    fee_fixed_fen        bigint NOT NULL DEFAULT 0 CHECK (fee_fixed_fen >= 0),
    fee_bps              integer NOT NULL DEFAULT 0 CHECK (fee_bps BETWEEN 0 AND 10000),
    max_amount_fen       bigint NOT NULL CHECK (max_amount_fen > 0),
    daily_amount_fen     bigint NOT NULL CHECK (daily_amount_fen > 0),
    daily_count          integer NOT NULL CHECK (daily_count > 0),
    rate_limit_rps       integer NOT NULL CHECK (rate_limit_rps > 0),
    rate_limit_burst     integer NOT NULL CHECK (rate_limit_burst > 0),
    review_threshold_fen bigint CHECK (review_threshold_fen IS NULL OR review_threshold_fen > 0),
    notify_url           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Ledger accounts. Merchant accounts: <merchant>:available|held|pending_in|advance.
-- Platform accounts: platform:fee_income, platform:deposits, platform:b2b_in_transit,
-- platform:reserve:<bank>. Sign convention: a positive posting credits the account, so
-- merchant (liability) balances are >= 0 and the advance receivable runs negative.
CREATE TABLE accounts (
    code        text PRIMARY KEY,
    merchant_id text REFERENCES merchants (id),
    kind        text NOT NULL,
    bank_id     text,
    currency    text NOT NULL DEFAULT 'CNY',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_merchant ON accounts (merchant_id) WHERE merchant_id IS NOT NULL;

-- Cached merchant balances: one row per merchant so an accept updates one row. The ledger
-- check proves each column equals the sum of the postings of its account.
CREATE TABLE merchant_balances (
    merchant_id      text PRIMARY KEY REFERENCES merchants (id),
    currency         text NOT NULL DEFAULT 'CNY',
    available_fen    bigint NOT NULL DEFAULT 0 CHECK (available_fen >= 0),
    held_fen         bigint NOT NULL DEFAULT 0 CHECK (held_fen >= 0),
    pending_in_fen   bigint NOT NULL DEFAULT 0 CHECK (pending_in_fen >= 0),
    advance_used_fen bigint NOT NULL DEFAULT 0 CHECK (advance_used_fen >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The platform-wide cap on fronted money (垫资 pool). used_fen = sum of advance_used.
CREATE TABLE advance_pool (
    id       integer PRIMARY KEY CHECK (id = 1),
    cap_fen  bigint NOT NULL CHECK (cap_fen >= 0),
    used_fen bigint NOT NULL DEFAULT 0 CHECK (used_fen >= 0 AND used_fen <= cap_fen)
);

CREATE TABLE journal_entries (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    ref_id      text,
    merchant_id text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_ref ON journal_entries (ref_id);

CREATE TABLE postings (
    id          bigserial PRIMARY KEY,
    entry_id    text NOT NULL REFERENCES journal_entries (id),
    account     text NOT NULL REFERENCES accounts (code),
    merchant_id text,
    amount_fen  bigint NOT NULL CHECK (amount_fen <> 0),
    currency    text NOT NULL DEFAULT 'CNY',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX postings_entry ON postings (entry_id);
CREATE INDEX postings_account ON postings (account);
CREATE INDEX postings_merchant ON postings (merchant_id, id) WHERE merchant_id IS NOT NULL;

CREATE TABLE payouts (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants (id),
    merchant_order_id   text NOT NULL,
    request_hash        text NOT NULL,
    amount_fen          bigint NOT NULL CHECK (amount_fen BETWEEN 1 AND 10000000000000),
    fee_fen             bigint NOT NULL CHECK (fee_fen >= 0),
    currency            text NOT NULL,
    status              text NOT NULL CHECK (status IN ('review_pending', 'accepted', 'processing',
                            'succeeded', 'failed', 'rejected', 'returned')),
    version             integer NOT NULL DEFAULT 1,
    payee               jsonb NOT NULL,
    purpose             text,
    metadata            jsonb,
    funding_balance_fen bigint NOT NULL CHECK (funding_balance_fen >= 0),
    funding_advance_fen bigint NOT NULL CHECK (funding_advance_fen >= 0),
    bank_id             text,
    bank_ref            text,
    failure_code        text,
    failure_message     text,
    business_date       date NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (funding_balance_fen + funding_advance_fen = amount_fen + fee_fen),
    UNIQUE (merchant_id, merchant_order_id)
);
CREATE INDEX payouts_merchant_id ON payouts (merchant_id, id);
CREATE INDEX payouts_merchant_status ON payouts (merchant_id, status, id);
CREATE INDEX payouts_review ON payouts (id) WHERE status = 'review_pending';
CREATE INDEX payouts_to_dispatch ON payouts (id) WHERE status = 'accepted';

CREATE TABLE b2b_payments (
    id                 text PRIMARY KEY,
    merchant_id        text NOT NULL REFERENCES merchants (id),
    merchant_order_id  text NOT NULL,
    request_hash       text NOT NULL,
    amount_fen         bigint NOT NULL CHECK (amount_fen BETWEEN 1 AND 10000000000000),
    currency           text NOT NULL,
    payer_bank         text NOT NULL,
    payer_account_name text,
    status             text NOT NULL CHECK (status IN ('pending', 'notified', 'cleared',
                           'failed', 'reversed')),
    version            integer NOT NULL DEFAULT 1,
    clearing           text NOT NULL CHECK (clearing IN ('realtime', 't+1')),
    expected_clear_at  timestamptz,
    bank_ref           text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, merchant_order_id)
);
CREATE INDEX b2b_merchant_id ON b2b_payments (merchant_id, id);

-- Transactional outbox: one row per merchant-visible state change, written in the same
-- transaction as the change. sequence is the object's version after the change.
CREATE TABLE outbox_events (
    id              text PRIMARY KEY,
    merchant_id     text NOT NULL,
    type            text NOT NULL,
    object_id       text NOT NULL,
    sequence        integer NOT NULL,
    data            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivery_status text NOT NULL DEFAULT 'pending'
                        CHECK (delivery_status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (object_id, sequence)
);
CREATE INDEX outbox_merchant ON outbox_events (merchant_id, id);
CREATE INDEX outbox_due ON outbox_events (next_attempt_at) WHERE delivery_status = 'pending';

-- The simulated clock's anchor (SPEC 12), shared by every process.
CREATE TABLE sim_clock (
    id     integer PRIMARY KEY CHECK (id = 1),
    wall_s double precision NOT NULL,
    sim_s  double precision NOT NULL,
    scale  double precision NOT NULL CHECK (scale > 0)
);

INSERT INTO accounts (code, kind) VALUES
    ('platform:fee_income', 'fee_income'),
    ('platform:deposits', 'deposits'),
    ('platform:b2b_in_transit', 'b2b_in_transit');

-- Operator credits (manual deposits), idempotent on (merchant, reference).
CREATE TABLE credits (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    reference   text NOT NULL,
    amount_fen  bigint NOT NULL CHECK (amount_fen BETWEEN 1 AND 10000000000000),
    currency    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, reference)
);

-- The advance pool starts with a cap of 10,000,000,000.00 CNY; `paygate up` may set another.
INSERT INTO advance_pool (id, cap_fen) VALUES (1, 1000000000000);
