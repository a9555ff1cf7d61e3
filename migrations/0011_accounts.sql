-- Accounts (三户, SPEC 16, first slice): customers, their accounts and sub-accounts, internal
-- transfers and freezes. Every account's money is ledger money: its cached balance row equals
-- the sum of the postings of its ledger accounts `acc_…:available` and `acc_…:frozen`.
-- The ledger's own table of accounts is `accounts` (codes); the customers' accounts are
-- `customer_accounts`.

-- A merchant's customers: its users (kind personal, named by the merchant's external_id) and
-- the merchant itself (kind merchant, one per merchant, no external_id).
CREATE TABLE customers (
    id          text PRIMARY KEY,              -- cus_…
    merchant_id text NOT NULL REFERENCES merchants (id),
    kind        text NOT NULL CHECK (kind IN ('personal', 'merchant')),
    external_id text,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'personal') = (external_id IS NOT NULL)),
    UNIQUE (merchant_id, external_id)
);
CREATE UNIQUE INDEX customers_one_merchant ON customers (merchant_id) WHERE kind = 'merchant';
CREATE INDEX customers_merchant_id ON customers (merchant_id, id);

-- A customer's accounts form a tree (parent_id; depth 0 is a top account). A personal account
-- (金账户) keeps its money in account_balances; the merchant's settlement account (kind
-- merchant, one per merchant) is the merchant's existing balance in merchant_balances and is
-- never duplicated here. One account per (customer, parent, purpose): opening it again is a
-- replay.
CREATE TABLE customer_accounts (
    id          text PRIMARY KEY,              -- acc_…
    merchant_id text NOT NULL REFERENCES merchants (id),
    customer_id text NOT NULL REFERENCES customers (id),
    parent_id   text REFERENCES customer_accounts (id),
    kind        text NOT NULL CHECK (kind IN ('personal', 'merchant')),
    purpose     text NOT NULL CHECK (length(purpose) BETWEEN 1 AND 64),
    currency    text NOT NULL,
    depth       integer NOT NULL CHECK (depth BETWEEN 0 AND 4),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((parent_id IS NULL) = (depth = 0)),
    CHECK (kind = 'personal' OR parent_id IS NULL),
    UNIQUE NULLS NOT DISTINCT (customer_id, parent_id, purpose)
);
CREATE UNIQUE INDEX customer_accounts_settlement ON customer_accounts (merchant_id)
    WHERE kind = 'merchant';
CREATE INDEX customer_accounts_merchant_id ON customer_accounts (merchant_id, id);
CREATE INDEX customer_accounts_customer ON customer_accounts (customer_id, id);
CREATE INDEX customer_accounts_parent ON customer_accounts (parent_id) WHERE parent_id IS NOT NULL;

-- Cached balances of personal accounts, one row each (a transfer updates two rows).
CREATE TABLE account_balances (
    account_id    text PRIMARY KEY REFERENCES customer_accounts (id),
    available_fen bigint NOT NULL DEFAULT 0 CHECK (available_fen >= 0),
    frozen_fen    bigint NOT NULL DEFAULT 0 CHECK (frozen_fen >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

-- Ledger accounts of a personal account name it (acc_…:available / acc_…:frozen).
ALTER TABLE accounts ADD COLUMN account_id text REFERENCES customer_accounts (id);
CREATE INDEX accounts_account_id ON accounts (account_id) WHERE account_id IS NOT NULL;

-- Internal transfers (个转个, 个转商, 商转个): instant, final when written.
CREATE TABLE transfers (
    id                text PRIMARY KEY,        -- tr_…
    merchant_id       text NOT NULL REFERENCES merchants (id),
    merchant_order_id text NOT NULL,
    request_hash      text NOT NULL,
    from_account      text NOT NULL REFERENCES customer_accounts (id),
    to_account        text NOT NULL REFERENCES customer_accounts (id),
    kind              text NOT NULL CHECK (kind IN ('personal_to_personal',
                          'personal_to_merchant', 'merchant_to_personal')),
    amount_fen        bigint NOT NULL CHECK (amount_fen BETWEEN 1 AND 10000000000000),
    currency          text NOT NULL,
    from_freeze       text,                    -- frz_… whose frozen money it consumed
    status            text NOT NULL DEFAULT 'completed' CHECK (status = 'completed'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (from_account <> to_account),
    UNIQUE (merchant_id, merchant_order_id)
);
CREATE INDEX transfers_merchant_id ON transfers (merchant_id, id);

-- Freezes (冻结): money moved from available to frozen; given back by unfreezes (released) or
-- consumed by claim transfers (transferred). Status per gateway/accounts/freeze_state.py.
CREATE TABLE freezes (
    id                text PRIMARY KEY,        -- frz_…
    merchant_id       text NOT NULL REFERENCES merchants (id),
    merchant_order_id text NOT NULL,
    request_hash      text NOT NULL,
    account_id        text NOT NULL REFERENCES customer_accounts (id),
    amount_fen        bigint NOT NULL CHECK (amount_fen BETWEEN 1 AND 10000000000000),
    released_fen      bigint NOT NULL DEFAULT 0 CHECK (released_fen >= 0),
    transferred_fen   bigint NOT NULL DEFAULT 0 CHECK (transferred_fen >= 0),
    currency          text NOT NULL,
    reason            text NOT NULL,
    status            text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'released', 'transferred')),
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (released_fen + transferred_fen <= amount_fen),
    CHECK ((status = 'active') = (released_fen + transferred_fen < amount_fen)),
    UNIQUE (merchant_id, merchant_order_id)
);
CREATE INDEX freezes_merchant_id ON freezes (merchant_id, id);
CREATE INDEX freezes_account ON freezes (account_id) WHERE status = 'active';

-- Every existing merchant is a customer with its settlement account (new merchants get both
-- at creation, gateway/merchants/repo.py). Ids here are derived from the merchant's id.
INSERT INTO customers (id, merchant_id, kind, name, created_at)
SELECT 'cus_' || substr(md5('cus:' || id), 1, 26), id, 'merchant', name, created_at
FROM merchants;
INSERT INTO customer_accounts (id, merchant_id, customer_id, kind, purpose, currency, depth,
                               created_at)
SELECT 'acc_' || substr(md5('acc:' || m.id), 1, 26), m.id, c.id, 'merchant', 'settlement',
       m.currency, 0, m.created_at
FROM merchants m JOIN customers c ON c.merchant_id = m.id AND c.kind = 'merchant';
