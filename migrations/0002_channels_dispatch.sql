-- Bank channels (SPEC 9) and payout dispatch state (issue 4).

-- What the gateway knows about each bank channel: quota, cost, the time a payout normally
-- takes there, and its circuit breaker (shared by every worker, visible at /admin/channels).
CREATE TABLE channels (
    id                   text PRIMARY KEY,          -- bank id ('102', ...) or 'ibps'
    name                 text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('bank', 'interbank')),
    enabled              boolean NOT NULL DEFAULT true,
    tps                  integer NOT NULL CHECK (tps BETWEEN 1 AND 1000000),
    cost_fen             integer NOT NULL CHECK (cost_fen >= 0),
    expected_ms          integer NOT NULL CHECK (expected_ms > 0),  -- simulated time
    failure_threshold    integer NOT NULL DEFAULT 5 CHECK (failure_threshold >= 1),
    open_ms              integer NOT NULL DEFAULT 5000 CHECK (open_ms >= 0),  -- wall time
    breaker_state        text NOT NULL DEFAULT 'closed'
                             CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    consecutive_failures integer NOT NULL DEFAULT 0,
    opened_at            timestamptz,
    retry_at             timestamptz,   -- open until; then one probe (half-open)
    probe_until          timestamptz,   -- the half-open probe's lease
    successes            bigint NOT NULL DEFAULT 0,
    failures             bigint NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO channels (id, name, kind, tps, cost_fen, expected_ms) VALUES
    ('102', 'ICBC 中国工商银行', 'bank', 500, 150, 5000),
    ('103', 'ABC 中国农业银行', 'bank', 500, 150, 5000),
    ('104', 'BOC 中国银行', 'bank', 500, 150, 5000),
    ('105', 'CCB 中国建设银行', 'bank', 500, 150, 5000),
    ('308', 'CMB 招商银行', 'bank', 500, 120, 5000),
    ('ibps', 'IBPS 网上支付跨行清算系统', 'interbank', 1000, 300, 5000);

-- Dispatch: where a payout's submission to its bank stands (separate from the merchant-visible
-- status). queued -> sending -> acked | unknown -> done; a definitive refusal (busy,
-- maintenance) goes back to queued. A payout that reached `sending` is never sent again:
-- whatever happened after, it is queried.
ALTER TABLE payouts
    ADD COLUMN dispatch_state    text NOT NULL DEFAULT 'queued'
        CHECK (dispatch_state IN ('queued', 'sending', 'acked', 'unknown', 'done')),
    ADD COLUMN dispatch_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_dispatch_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN poll_at           timestamptz,
    ADD COLUMN poll_count        integer NOT NULL DEFAULT 0,
    ADD COLUMN submitted_at      timestamptz;

UPDATE payouts SET dispatch_state = 'done'
    WHERE status IN ('succeeded', 'failed', 'rejected', 'returned');

DROP INDEX payouts_to_dispatch;
CREATE INDEX payouts_to_dispatch ON payouts (next_dispatch_at)
    WHERE dispatch_state = 'queued' AND status IN ('accepted', 'processing');
CREATE INDEX payouts_to_poll ON payouts (poll_at)
    WHERE dispatch_state IN ('sending', 'acked', 'unknown');
CREATE INDEX payouts_bank_ref ON payouts (bank_id, id) WHERE bank_id IS NOT NULL;
