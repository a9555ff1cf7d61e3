-- B2B funding (SPEC 7, issue 5): the bank page, notification and clearing bookkeeping.
ALTER TABLE b2b_payments
    ADD COLUMN bank_page_url   text,
    ADD COLUMN clearing_cutoff text NOT NULL DEFAULT '17:00',
    ADD COLUMN notified_at     timestamptz,   -- simulated time
    ADD COLUMN cleared_at      timestamptz,   -- simulated time
    ADD COLUMN next_check_at   timestamptz,   -- wall time: the clearing worker's lease/backoff
    ADD COLUMN failure_code    text,
    ADD COLUMN failure_message text;

CREATE INDEX b2b_to_clear ON b2b_payments (expected_clear_at) WHERE status = 'notified';
