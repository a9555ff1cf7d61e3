-- Risk rules on accept (SPEC 8, issue 6): daily budgets, payee blocklist, payee velocity.

-- What each merchant has used of its daily budget per business day (UTC+8, simulated time).
-- An accepted payout (its hold) counts; a failed or rejected one gives its budget back; a
-- returned one does not (it was paid out). Guarded by the merchant's balance-row lock.
CREATE TABLE merchant_daily_usage (
    merchant_id   text NOT NULL REFERENCES merchants (id),
    business_date date NOT NULL,
    amount_fen    bigint NOT NULL DEFAULT 0 CHECK (amount_fen >= 0),
    count         integer NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (merchant_id, business_date)
);

-- Payee accounts nobody may pay (managed at /admin/blocklist).
CREATE TABLE payee_blocklist (
    account_no text PRIMARY KEY,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Payouts accepted per payee account per hour of simulated time (fixed hourly windows).
-- Attempts count, whatever their outcome: velocity is about exposure, not success.
CREATE TABLE payee_velocity (
    account_no text NOT NULL,
    hour_start timestamptz NOT NULL,
    count      integer NOT NULL CHECK (count >= 0),
    PRIMARY KEY (account_no, hour_start)
);
