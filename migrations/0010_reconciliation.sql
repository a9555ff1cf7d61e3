-- Reconciliation (对账, SPEC 10): the bank's business date on each payout, the runs that
-- compared a bank's statement with the gateway's books, and the exceptions left to operators.

-- The bank's business date for the payout, from the first bank word that tells it (the ack,
-- a status answer or a callback); NULL until then. No index: a reconciliation scans once a
-- day, and an indexed column would cost every status change its in-place (HOT) update.
ALTER TABLE payouts ADD COLUMN bank_date date;

-- Operator adjustments made when resolving an exception are posted against this account.
INSERT INTO accounts (code, kind) VALUES ('platform:recon_adjustments', 'recon_adjustments');

CREATE TABLE recon_runs (
    id         text PRIMARY KEY,
    bank_id    text NOT NULL REFERENCES channels (id),
    date       date NOT NULL,
    apply      boolean NOT NULL,
    trigger    text NOT NULL CHECK (trigger IN ('manual', 'nightly')),
    summary    jsonb NOT NULL,
    items      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The nightly run happens once per bank and date (the worker checks a date's runs by date).
CREATE UNIQUE INDEX recon_runs_nightly ON recon_runs (date, bank_id) WHERE trigger = 'nightly';

CREATE TABLE recon_exceptions (
    id                  text PRIMARY KEY,
    run_id              text NOT NULL REFERENCES recon_runs (id),
    bank_id             text NOT NULL,
    date                date NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('status_mismatch', 'amount_mismatch',
                            'missing_at_gateway', 'missing_at_bank')),
    bank_ref            text,
    payout_id           text,
    gateway             jsonb,
    bank                jsonb,
    action              text NOT NULL,
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    note                text,
    adjustment_entry_id text REFERENCES journal_entries (id),
    resolved_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (bank_ref IS NOT NULL OR payout_id IS NOT NULL),
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL AND note IS NOT NULL))
);
-- One exception per difference: a re-run finds the one already there instead of adding one.
-- A difference is named by the bank's line (bank_ref) or, without one, by the payout.
CREATE INDEX recon_exceptions_key
    ON recon_exceptions (bank_id, kind, (coalesce(bank_ref, payout_id)));
CREATE UNIQUE INDEX recon_exceptions_open
    ON recon_exceptions (bank_id, kind, (coalesce(bank_ref, payout_id))) WHERE status = 'open';
CREATE INDEX recon_exceptions_status ON recon_exceptions (status, id);
